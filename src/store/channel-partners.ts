import { sql, type Kysely } from "kysely";
import type { Database, NewRow, Row } from "./database.js";
import { likePattern, pageOf, type Page, type PageOf } from "./paging.js";

export type ChannelPartnershipRow = Row<"channel_partnerships">;
export type ChannelPartnerUserRow = Row<"channel_partner_users">;

/** A row of the Partners table [004]: a partner organization and how many of its users were added (R21). */
export interface ChannelPartnerSummary {
  readonly partnership: ChannelPartnershipRow;
  readonly partner_name: string;
  /** The partner organization's classification now: without it, its added users see nothing (R22). */
  readonly channel_partner: boolean;
  readonly added_users: number;
}

/** A user of the partner organization, and whether the customer added them (the "Edit partner access" checkboxes). */
export interface PartnerOrgUser {
  readonly id: string;
  readonly email: string;
  readonly display_name: string;
  readonly selected: boolean;
}

export class ChannelPartnersRepo {
  constructor(private readonly db: Kysely<Database>) {}

  async find(customerId: string, partnerId: string, lock = false): Promise<ChannelPartnershipRow | undefined> {
    const q = this.db
      .selectFrom("channel_partnerships")
      .selectAll()
      .where("customer_organization_id", "=", customerId)
      .where("partner_organization_id", "=", partnerId);
    return (lock ? q.forUpdate() : q).executeTakeFirst();
  }

  /** Inserts the partnership unless it exists (a concurrent add waits and then sees it); returns it either way. */
  async ensure(row: NewRow<"channel_partnerships">): Promise<{ row: ChannelPartnershipRow; created: boolean }> {
    const inserted = await this.db
      .insertInto("channel_partnerships")
      .values(row)
      .onConflict((oc) => oc.columns(["customer_organization_id", "partner_organization_id"]).doNothing())
      .returningAll()
      .executeTakeFirst();
    if (inserted) return { row: inserted, created: true };
    const existing = await this.find(row.customer_organization_id, row.partner_organization_id, true);
    if (!existing) throw new Error("channel partnership vanished between insert and select");
    return { row: existing, created: false };
  }

  async userIds(partnershipId: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom("channel_partner_users")
      .select("user_id")
      .where("channel_partnership_id", "=", partnershipId)
      .orderBy("user_id")
      .execute();
    return rows.map((r) => r.user_id);
  }

  async addUsers(partnershipId: string, userIds: readonly string[]): Promise<ChannelPartnerUserRow[]> {
    if (userIds.length === 0) return [];
    return this.db
      .insertInto("channel_partner_users")
      .values(userIds.map((user_id) => ({ channel_partnership_id: partnershipId, user_id })))
      .onConflict((oc) => oc.doNothing())
      .returningAll()
      .execute();
  }

  async removeUsers(partnershipId: string, userIds: readonly string[]): Promise<ChannelPartnerUserRow[]> {
    if (userIds.length === 0) return [];
    return this.db
      .deleteFrom("channel_partner_users")
      .where("channel_partnership_id", "=", partnershipId)
      .where("user_id", "in", userIds)
      .returningAll()
      .execute();
  }

  /** R21: the Partners table, by partner organization id; `query` matches organization names. */
  async summaries(customerId: string, filter: { query?: string; partnerId?: string }, page: Page): Promise<PageOf<ChannelPartnerSummary>> {
    let q = this.db
      .selectFrom("channel_partnerships as p")
      .innerJoin("organizations as o", "o.id", "p.partner_organization_id")
      .selectAll("p")
      .select([
        "o.name as partner_name",
        "o.channel_partner",
        (eb) =>
          eb
            .selectFrom("channel_partner_users as u")
            .select(sql<number>`count(*)::int`.as("n"))
            .whereRef("u.channel_partnership_id", "=", "p.id")
            .as("added_users"),
      ])
      .where("p.customer_organization_id", "=", customerId)
      .orderBy("p.partner_organization_id")
      .limit(page.limit + 1);
    if (filter.query) q = q.where("o.name", "ilike", likePattern(filter.query));
    if (filter.partnerId) q = q.where("p.partner_organization_id", "=", filter.partnerId);
    if (page.after !== undefined) q = q.where("p.partner_organization_id", ">", page.after);
    const rows = await q.execute();
    const summaries = rows.map(({ partner_name, channel_partner, added_users, ...partnership }) => ({
      partnership,
      partner_name,
      channel_partner,
      added_users: added_users ?? 0,
    }));
    return pageOf(summaries, page.limit, (s) => s.partnership.partner_organization_id);
  }

  /** The partner organization's members, each with whether the customer added them; by user id. */
  async partnerOrgUsers(partnerId: string, partnershipId: string | undefined, query: string, page: Page): Promise<PageOf<PartnerOrgUser>> {
    let q = this.db
      .selectFrom("organization_members as m")
      .innerJoin("users as u", "u.id", "m.user_id")
      .select(["u.id", "u.email", "u.display_name"])
      .select((eb) =>
        eb
          .exists(
            eb
              .selectFrom("channel_partner_users as c")
              .select("c.user_id")
              .whereRef("c.user_id", "=", "u.id")
              .where("c.channel_partnership_id", "=", partnershipId ?? ""),
          )
          .as("selected"),
      )
      .where("m.organization_id", "=", partnerId)
      .orderBy("u.id")
      .limit(page.limit + 1);
    if (page.after !== undefined) q = q.where("u.id", ">", page.after);
    if (query) {
      const pattern = likePattern(query);
      q = q.where((eb) => eb.or([eb("u.display_name", "ilike", pattern), eb("u.email", "ilike", pattern)]));
    }
    const rows = await q.execute();
    return pageOf(
      rows.map((r) => ({ ...r, selected: Boolean(r.selected) })),
      page.limit,
      (u) => u.id,
    );
  }

  /** Which of these users are members of the organization. */
  async membersAmong(organizationId: string, userIds: readonly string[]): Promise<Set<string>> {
    if (userIds.length === 0) return new Set();
    const rows = await this.db
      .selectFrom("organization_members")
      .select("user_id")
      .where("organization_id", "=", organizationId)
      .where("user_id", "in", userIds)
      .execute();
    return new Set(rows.map((r) => r.user_id));
  }

  /** The channel-partner organizations this user belongs to. */
  async channelPartnerOrgsOf(userId: string): Promise<Array<{ id: string; name: string }>> {
    return this.db
      .selectFrom("organization_members as m")
      .innerJoin("organizations as o", "o.id", "m.organization_id")
      .select(["o.id", "o.name"])
      .where("m.user_id", "=", userId)
      .where("o.channel_partner", "=", true)
      .orderBy("o.id")
      .execute();
  }

  async organizationNames(ids: readonly string[]): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map();
    const rows = await this.db.selectFrom("organizations").select(["id", "name"]).where("id", "in", ids).execute();
    return new Map(rows.map((r) => [r.id, r.name]));
  }
}
