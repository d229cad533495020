import { sql, type Kysely } from "kysely";
import type { Database, NewRow, Row } from "./database.js";
import { pageOf, type Page, type PageOf } from "./paging.js";

export type EntityRow = Row<"entities">;
export type EntityMemberRow = Row<"entity_members">;

export class EntitiesRepo {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(row: NewRow<"entities">): Promise<EntityRow> {
    return this.db.insertInto("entities").values(row).returningAll().executeTakeFirstOrThrow();
  }

  async get(id: string): Promise<EntityRow | undefined> {
    return this.db.selectFrom("entities").selectAll().where("id", "=", id).executeTakeFirst();
  }

  async list(organizationId: string, page: Page): Promise<PageOf<EntityRow & { member_count: number }>> {
    let q = this.db
      .selectFrom("entities as e")
      .selectAll("e")
      .select((eb) =>
        eb
          .selectFrom("entity_members as m")
          .select(sql<number>`count(*)::int`.as("n"))
          .whereRef("m.entity_id", "=", "e.id")
          .as("member_count"),
      )
      .$narrowType<{ member_count: number }>()
      .where("e.organization_id", "=", organizationId)
      .orderBy("e.id")
      .limit(page.limit + 1);
    if (page.after !== undefined) q = q.where("e.id", ">", page.after);
    return pageOf(await q.execute(), page.limit, (e) => e.id);
  }

  async addMember(entityId: string, userId: string): Promise<EntityMemberRow | undefined> {
    return this.db
      .insertInto("entity_members")
      .values({ entity_id: entityId, user_id: userId })
      .onConflict((oc) => oc.doNothing())
      .returningAll()
      .executeTakeFirst();
  }

  async removeMember(entityId: string, userId: string): Promise<EntityMemberRow | undefined> {
    return this.db
      .deleteFrom("entity_members")
      .where("entity_id", "=", entityId)
      .where("user_id", "=", userId)
      .returningAll()
      .executeTakeFirst();
  }

  async isMember(entityId: string, userId: string): Promise<boolean> {
    const row = await this.db
      .selectFrom("entity_members")
      .select("user_id")
      .where("entity_id", "=", entityId)
      .where("user_id", "=", userId)
      .executeTakeFirst();
    return row !== undefined;
  }

  async listMembers(entityId: string, page: Page) {
    let q = this.db
      .selectFrom("entity_members as m")
      .innerJoin("users as u", "u.id", "m.user_id")
      .selectAll("u")
      .where("m.entity_id", "=", entityId)
      .orderBy("u.id")
      .limit(page.limit + 1);
    if (page.after !== undefined) q = q.where("u.id", ">", page.after);
    return pageOf(await q.execute(), page.limit, (u) => u.id);
  }
}
