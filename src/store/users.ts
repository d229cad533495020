import type { Kysely } from "kysely";
import type { Database, NewRow, Row } from "./database.js";
import { likePattern, pageOf, type Page, type PageOf } from "./paging.js";

export type UserRow = Row<"users">;

export class UsersRepo {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(row: NewRow<"users">): Promise<UserRow> {
    return this.db.insertInto("users").values(row).returningAll().executeTakeFirstOrThrow();
  }

  async get(id: string): Promise<UserRow | undefined> {
    return this.db.selectFrom("users").selectAll().where("id", "=", id).executeTakeFirst();
  }

  async getByEmail(email: string): Promise<UserRow | undefined> {
    return this.db.selectFrom("users").selectAll().where("email", "=", email).executeTakeFirst();
  }

  async getMany(ids: readonly string[]): Promise<UserRow[]> {
    if (ids.length === 0) return [];
    return this.db.selectFrom("users").selectAll().where("id", "in", ids).execute();
  }

  async list(query: string, page: Page): Promise<PageOf<UserRow>> {
    let q = this.db.selectFrom("users").selectAll().orderBy("id").limit(page.limit + 1);
    if (page.after !== undefined) q = q.where("id", ">", page.after);
    if (query) {
      const pattern = likePattern(query);
      q = q.where((eb) => eb.or([eb("display_name", "ilike", pattern), eb("email", "ilike", pattern)]));
    }
    return pageOf(await q.execute(), page.limit, (u) => u.id);
  }

  async listPlatformAdmins(): Promise<string[]> {
    const rows = await this.db.selectFrom("platform_admins").select("user_id").orderBy("user_id").execute();
    return rows.map((r) => r.user_id);
  }

  async addPlatformAdmin(userId: string): Promise<Row<"platform_admins"> | undefined> {
    return this.db
      .insertInto("platform_admins")
      .values({ user_id: userId })
      .onConflict((oc) => oc.doNothing())
      .returningAll()
      .executeTakeFirst();
  }

  async removePlatformAdmin(userId: string): Promise<Row<"platform_admins"> | undefined> {
    return this.db.deleteFrom("platform_admins").where("user_id", "=", userId).returningAll().executeTakeFirst();
  }
}
