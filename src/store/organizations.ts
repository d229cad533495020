import { sql, type Kysely } from "kysely";
import type { Database, NewRow, Row } from "./database.js";
import { likePattern, pageOf, type Page, type PageOf } from "./paging.js";

export type OrganizationRow = Row<"organizations">;
export type OrganizationMemberRow = Row<"organization_members">;
export type OrganizationWithCount = OrganizationRow & { member_count: number };

export class OrganizationsRepo {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(row: NewRow<"organizations">): Promise<OrganizationRow> {
    return this.db.insertInto("organizations").values(row).returningAll().executeTakeFirstOrThrow();
  }

  async get(id: string): Promise<OrganizationRow | undefined> {
    return this.db.selectFrom("organizations").selectAll().where("id", "=", id).executeTakeFirst();
  }

  /** Locks the row for the rest of the transaction. */
  async getForUpdate(id: string): Promise<OrganizationRow | undefined> {
    return this.db.selectFrom("organizations").selectAll().where("id", "=", id).forUpdate().executeTakeFirst();
  }

  async getWithCount(id: string): Promise<OrganizationWithCount | undefined> {
    return this.withCounts().where("o.id", "=", id).executeTakeFirst();
  }

  async list(filter: { query: string; channelPartnersOnly: boolean }, page: Page): Promise<PageOf<OrganizationWithCount>> {
    let q = this.withCounts().orderBy("o.id").limit(page.limit + 1);
    if (page.after !== undefined) q = q.where("o.id", ">", page.after);
    if (filter.query) q = q.where("o.name", "ilike", likePattern(filter.query));
    if (filter.channelPartnersOnly) q = q.where("o.channel_partner", "=", true);
    return pageOf(await q.execute(), page.limit, (o) => o.id);
  }

  async setChannelPartner(id: string, channelPartner: boolean): Promise<OrganizationRow | undefined> {
    return this.db
      .updateTable("organizations")
      .set({ channel_partner: channelPartner })
      .where("id", "=", id)
      .returningAll()
      .executeTakeFirst();
  }

  async getMember(organizationId: string, userId: string): Promise<OrganizationMemberRow | undefined> {
    return this.db
      .selectFrom("organization_members")
      .selectAll()
      .where("organization_id", "=", organizationId)
      .where("user_id", "=", userId)
      .executeTakeFirst();
  }

  /**
   * Inserts or updates the membership; returns the row before (if any) and
   * after. Insert-or-nothing first, then lock and update: a concurrent
   * insert is waited for and seen, so `before` is never wrongly empty.
   */
  async upsertMember(
    organizationId: string,
    userId: string,
    admin: boolean,
  ): Promise<{ before: OrganizationMemberRow | undefined; after: OrganizationMemberRow }> {
    const inserted = await this.db
      .insertInto("organization_members")
      .values({ organization_id: organizationId, user_id: userId, admin })
      .onConflict((oc) => oc.columns(["organization_id", "user_id"]).doNothing())
      .returningAll()
      .executeTakeFirst();
    if (inserted) return { before: undefined, after: inserted };
    const before = await this.db
      .selectFrom("organization_members")
      .selectAll()
      .where("organization_id", "=", organizationId)
      .where("user_id", "=", userId)
      .forUpdate()
      .executeTakeFirstOrThrow();
    const after = await this.db
      .updateTable("organization_members")
      .set({ admin })
      .where("organization_id", "=", organizationId)
      .where("user_id", "=", userId)
      .returningAll()
      .executeTakeFirstOrThrow();
    return { before, after };
  }

  async removeMember(organizationId: string, userId: string): Promise<OrganizationMemberRow | undefined> {
    return this.db
      .deleteFrom("organization_members")
      .where("organization_id", "=", organizationId)
      .where("user_id", "=", userId)
      .returningAll()
      .executeTakeFirst();
  }

  async listMembers(organizationId: string, page: Page): Promise<PageOf<OrganizationMemberRow & { email: string; display_name: string; user_created_at: Date }>> {
    let q = this.db
      .selectFrom("organization_members as m")
      .innerJoin("users as u", "u.id", "m.user_id")
      .selectAll("m")
      .select(["u.email", "u.display_name", "u.created_at as user_created_at"])
      .where("m.organization_id", "=", organizationId)
      .orderBy("m.user_id")
      .limit(page.limit + 1);
    if (page.after !== undefined) q = q.where("m.user_id", ">", page.after);
    return pageOf(await q.execute(), page.limit, (m) => m.user_id);
  }

  async adminIds(organizationId: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom("organization_members")
      .select("user_id")
      .where("organization_id", "=", organizationId)
      .where("admin", "=", true)
      .orderBy("user_id")
      .execute();
    return rows.map((r) => r.user_id);
  }

  async adminCount(organizationId: string, excludingUserId: string): Promise<number> {
    const row = await this.db
      .selectFrom("organization_members")
      .select(sql<number>`count(*)::int`.as("n"))
      .where("organization_id", "=", organizationId)
      .where("admin", "=", true)
      .where("user_id", "!=", excludingUserId)
      .executeTakeFirstOrThrow();
    return row.n;
  }

  /** Organizations the user belongs to. */
  async organizationsOf(userId: string): Promise<OrganizationMemberRow[]> {
    return this.db.selectFrom("organization_members").selectAll().where("user_id", "=", userId).execute();
  }

  private withCounts() {
    return this.db
      .selectFrom("organizations as o")
      .selectAll("o")
      .select((eb) =>
        eb
          .selectFrom("organization_members as m")
          .select(sql<number>`count(*)::int`.as("n"))
          .whereRef("m.organization_id", "=", "o.id")
          .as("member_count"),
      )
      .$narrowType<{ member_count: number }>();
  }
}
