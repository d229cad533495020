import { sql, type Kysely, type RawBuilder } from "kysely";
import type { Database, NewRow, Row } from "./database.js";
import { pageOf, type Page, type PageOf } from "./paging.js";

export type GroupRow = Row<"groups">;
export type GroupMemberRow = Row<"group_members">;
export type GroupClosureRow = Row<"group_closure">;

/** What a refresh of the closure changed. */
export interface ClosureChange {
  readonly added: GroupClosureRow[];
  readonly removed: GroupClosureRow[];
}

/**
 * Closure refreshes within one organization (groups nest only within theirs):
 * taken exclusively by whatever changes the nesting, shared by a change of
 * one user's memberships.
 */
const CLOSURE_LOCK = 0x5347_0003;
/** One user's memberships, under the organization's lock held shared: that user's refreshes serialize, other users' do not wait. */
const CLOSURE_USER_LOCK = 0x5347_0004;

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
   * Serializes membership changes of one organization's groups until the
   * transaction ends (groups nest only within their organization): a
   * nesting's cycle check and the closure refreshes see every change
   * committed before them. Taking it again in the same transaction is free.
   */
  async lockMemberships(organizationId: string): Promise<void> {
    await sql`select pg_advisory_xact_lock(${CLOSURE_LOCK}, hashtext(${organizationId}))`.execute(this.db);
  }

  /**
   * Brings group_closure to what group_members implies for these groups and
   * every group above them, after a membership change; returns the rows it
   * added and removed (the relationships to touch and delete). With `userId`
   * only that user's rows are recomputed: adding or removing a user changes
   * nothing else, and a group of many users costs no more than a small one.
   *
   * Refreshes that could each miss the other's edge serialize on advisory
   * locks taken before anything is read, so each sees every membership
   * change committed before it (read committed: every statement takes a new
   * snapshot). A refresh of the whole groups (a nesting changed) takes its
   * organizations' lock exclusively; a refresh of one user's rows takes it
   * shared plus that user's lock, so changes of different users in one
   * organization do not wait for each other. A transaction must not refresh
   * whole groups after one user's rows (that would upgrade a shared lock
   * others may hold while they wait for ours).
   */
  async refreshClosure(groupIds: readonly string[], userId?: string): Promise<ClosureChange> {
    if (groupIds.length === 0) return { added: [], removed: [] };
    // The groups' organizations, locked in id order (one statement; the same lock lockMemberships takes).
    const lock = userId === undefined ? sql`pg_advisory_xact_lock` : sql`pg_advisory_xact_lock_shared`;
    await sql`
      select ${lock}(${CLOSURE_LOCK}, hashtext(o.organization_id))
      from (select distinct organization_id from groups where id = any(${groupIds as string[]}::text[]) order by organization_id) o
    `.execute(this.db);
    if (userId !== undefined) await sql`select pg_advisory_xact_lock(${CLOSURE_USER_LOCK}, hashtext(${userId}))`.execute(this.db);
    const onlyUser = userId ?? null;
    const result = await sql<GroupClosureRow & { change: "added" | "removed" }>`
      with recursive
      up(id) as (
        select id from groups where id = any(${groupIds as string[]}::text[])
        union
        select gm.group_id from group_members gm join up on gm.member_group_id = up.id
      ),
      down(top, grp) as (
        select id, id from up
        union
        select down.top, gm.member_group_id from group_members gm join down on gm.group_id = down.grp where gm.member_group_id is not null
      ),
      desired(group_id, user_id, member_group_id) as (
        select distinct down.top, gm.user_id, null::text
        from down join group_members gm on gm.group_id = down.grp and gm.user_id is not null
        where ${onlyUser}::text is null or gm.user_id = ${onlyUser}::text
        union
        select top, null::text, grp from down where grp <> top and ${onlyUser}::text is null
      ),
      removed as (
        delete from group_closure c
        where c.group_id in (select id from up)
          and (${onlyUser}::text is null or c.user_id = ${onlyUser}::text)
          and not exists (
            select 1 from desired d
            where d.group_id = c.group_id and d.user_id is not distinct from c.user_id and d.member_group_id is not distinct from c.member_group_id
          )
        returning c.group_id, c.user_id, c.member_group_id
      ),
      added as (
        insert into group_closure (group_id, user_id, member_group_id)
        select d.group_id, d.user_id, d.member_group_id from desired d
        where not exists (
          select 1 from group_closure c
          where c.group_id = d.group_id and c.user_id is not distinct from d.user_id and c.member_group_id is not distinct from d.member_group_id
        )
        returning group_id, user_id, member_group_id
      )
      select 'removed' as change, * from removed
      union all
      select 'added' as change, * from added
    `.execute(this.db);
    const row = (r: GroupClosureRow): GroupClosureRow => ({ group_id: r.group_id, user_id: r.user_id, member_group_id: r.member_group_id });
    return {
      added: result.rows.filter((r) => r.change === "added").map(row),
      removed: result.rows.filter((r) => r.change === "removed").map(row),
    };
  }

  /**
   * The path from a group down to one of its members through nested groups:
   * the group, each group nested in the one before, and last the group the
   * member belongs to directly; undefined when it is not a member at all.
   * The shortest such path (ExplainPermission names it).
   */
  async pathToMember(groupId: string, member: GroupMember): Promise<string[] | undefined> {
    const direct = "userId" in member ? sql`gm.user_id = ${member.userId}` : sql`gm.member_group_id = ${member.groupId}`;
    const result = await sql<{ path: string[] }>`
      with recursive down(grp, path) as (
        select ${groupId}::text, array[${groupId}::text]
        union all
        select gm.member_group_id, down.path || gm.member_group_id
        from group_members gm join down on gm.group_id = down.grp
        where gm.member_group_id is not null and not gm.member_group_id = any(down.path) and cardinality(down.path) < 64
      )
      select down.path from down
      where exists (select 1 from group_members gm where gm.group_id = down.grp and ${direct})
      order by cardinality(down.path), down.path
      limit 1
    `.execute(this.db);
    return result.rows[0]?.path;
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
