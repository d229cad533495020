import { sql, type Kysely, type RawBuilder } from "kysely";
import type { Database, NewRow, Row } from "./database.js";
import { pageOf, type Page, type PageOf } from "./paging.js";

export type GroupRow = Row<"groups">;
export type GroupMemberRow = Row<"group_members">;

/** A direct member of a group: a user or a nested group. */
export type GroupMember = { readonly userId: string } | { readonly groupId: string };

export class GroupsRepo {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(row: NewRow<"groups">): Promise<GroupRow> {
    return this.db.insertInto("groups").values(row).returningAll().executeTakeFirstOrThrow();
  }

  async get(id: string): Promise<GroupRow | undefined> {
    return this.db.selectFrom("groups").selectAll().where("id", "=", id).executeTakeFirst();
  }

  async getMany(ids: readonly string[]): Promise<GroupRow[]> {
    if (ids.length === 0) return [];
    return this.db.selectFrom("groups").selectAll().where("id", "in", ids).execute();
  }

  async list(organizationId: string, page: Page): Promise<PageOf<GroupRow>> {
    let q = this.db
      .selectFrom("groups")
      .selectAll()
      .where("organization_id", "=", organizationId)
      .orderBy("id")
      .limit(page.limit + 1);
    if (page.after !== undefined) q = q.where("id", ">", page.after);
    return pageOf(await q.execute(), page.limit, (g) => g.id);
  }

  /** Adds the member; undefined when it already was one. */
  async addMember(groupId: string, member: GroupMember): Promise<GroupMemberRow | undefined> {
    return this.db
      .insertInto("group_members")
      .values({
        group_id: groupId,
        user_id: "userId" in member ? member.userId : null,
        member_group_id: "groupId" in member ? member.groupId : null,
      })
      .onConflict((oc) => oc.doNothing())
      .returningAll()
      .executeTakeFirst();
  }

  async removeMember(groupId: string, member: GroupMember): Promise<GroupMemberRow | undefined> {
    let q = this.db.deleteFrom("group_members").where("group_id", "=", groupId);
    q = "userId" in member ? q.where("user_id", "=", member.userId) : q.where("member_group_id", "=", member.groupId);
    return q.returningAll().executeTakeFirst();
  }

  async listMembers(groupId: string): Promise<GroupMemberRow[]> {
    return this.db.selectFrom("group_members").selectAll().where("group_id", "=", groupId).orderBy("id").execute();
  }

  /**
   * Every group that `groupId` is nested in, transitively (its ancestors in
   * the membership graph). Used to refuse a nesting that would make a cycle.
   */
  containingGroups(groupId: string): Promise<string[]> {
    return this.#groupsAbove(sql`member_group_id = ${groupId}`);
  }

  /** Groups the user belongs to, directly or through nesting. */
  groupsOfUser(userId: string): Promise<string[]> {
    return this.#groupsAbove(sql`user_id = ${userId}`);
  }

  /** The groups whose direct member rows match, and every group above those. */
  async #groupsAbove(directMember: RawBuilder<unknown>): Promise<string[]> {
    const result = await sql<{ id: string }>`
      with recursive up(id) as (
        select group_id from group_members where ${directMember}
        union
        select gm.group_id from group_members gm join up on gm.member_group_id = up.id
      )
      select id from up
    `.execute(this.db);
    return result.rows.map((r) => r.id);
  }
}
