import { sql, type Kysely } from "kysely";
import type { Database, InvitationStatus, NewRow, PartnerShareKind, Row } from "./database.js";
import { likePattern } from "./paging.js";

export type PartnershipRow = Row<"partnerships">;
export type PartnerShareRow = Row<"partner_shares">;
export type InvitationRow = Row<"partner_invitations">;
export type ClaimRow = Row<"partner_domain_claims">;

export interface PartnerSummary {
  readonly partnership: PartnershipRow;
  readonly partner_name: string;
  readonly shared_reports: number;
  readonly shared_boards: number;
}

export class PartnersRepo {
  constructor(private readonly db: Kysely<Database>) {}

  // ---- partnerships and their shares ----

  async findPartnership(ownerId: string, partnerId: string, lock = false): Promise<PartnershipRow | undefined> {
    const q = this.db
      .selectFrom("partnerships")
      .selectAll()
      .where("owner_organization_id", "=", ownerId)
      .where("partner_organization_id", "=", partnerId);
    return (lock ? q.forUpdate() : q).executeTakeFirst();
  }

  async insertPartnership(row: NewRow<"partnerships">): Promise<PartnershipRow> {
    return this.db.insertInto("partnerships").values(row).returningAll().executeTakeFirstOrThrow();
  }

  async shares(partnershipId: string): Promise<PartnerShareRow[]> {
    return this.db.selectFrom("partner_shares").selectAll().where("partnership_id", "=", partnershipId).orderBy("content_id").execute();
  }

  async addShares(partnershipId: string, items: ReadonlyArray<{ id: string; kind: PartnerShareKind }>): Promise<PartnerShareRow[]> {
    if (items.length === 0) return [];
    return this.db
      .insertInto("partner_shares")
      .values(items.map((i) => ({ partnership_id: partnershipId, content_id: i.id, kind: i.kind })))
      .onConflict((oc) => oc.doNothing())
      .returningAll()
      .execute();
  }

  async removeShares(partnershipId: string, contentIds: readonly string[]): Promise<PartnerShareRow[]> {
    if (contentIds.length === 0) return [];
    return this.db
      .deleteFrom("partner_shares")
      .where("partnership_id", "=", partnershipId)
      .where("content_id", "in", contentIds)
      .returningAll()
      .execute();
  }

  /** Shares of any partnership on these items (ListShares). */
  async sharesOf(contentId: string): Promise<Array<PartnerShareRow & { partner_organization_id: string; partner_name: string }>> {
    return this.db
      .selectFrom("partner_shares as s")
      .innerJoin("partnerships as p", "p.id", "s.partnership_id")
      .innerJoin("organizations as o", "o.id", "p.partner_organization_id")
      .selectAll("s")
      .select(["p.partner_organization_id", "o.name as partner_name"])
      .where("s.content_id", "=", contentId)
      .orderBy("o.name")
      .execute();
  }

  /** R13: partners with counts of shared reports and boards. */
  async summaries(ownerId: string, query: string, partnerId?: string): Promise<PartnerSummary[]> {
    let q = this.db
      .selectFrom("partnerships as p")
      .innerJoin("organizations as o", "o.id", "p.partner_organization_id")
      .selectAll("p")
      .select([
        "o.name as partner_name",
        (eb) =>
          eb
            .selectFrom("partner_shares as s")
            .select(sql<number>`count(*)::int`.as("n"))
            .whereRef("s.partnership_id", "=", "p.id")
            .where("s.kind", "=", "report")
            .as("shared_reports"),
        (eb) =>
          eb
            .selectFrom("partner_shares as s")
            .select(sql<number>`count(*)::int`.as("n"))
            .whereRef("s.partnership_id", "=", "p.id")
            .where("s.kind", "=", "board")
            .as("shared_boards"),
      ])
      .where("p.owner_organization_id", "=", ownerId)
      .orderBy("o.name")
      .orderBy("p.id");
    if (query) q = q.where("o.name", "ilike", likePattern(query));
    if (partnerId) q = q.where("p.partner_organization_id", "=", partnerId);
    const rows = await q.execute();
    return rows.map(({ partner_name, shared_reports, shared_boards, ...partnership }) => ({
      partnership,
      partner_name,
      shared_reports: shared_reports ?? 0,
      shared_boards: shared_boards ?? 0,
    }));
  }

  // ---- invitations ----

  async insertInvitation(row: NewRow<"partner_invitations">, contentIds: readonly string[]): Promise<InvitationRow> {
    const invitation = await this.db.insertInto("partner_invitations").values(row).returningAll().executeTakeFirstOrThrow();
    if (contentIds.length > 0) {
      await this.db
        .insertInto("partner_invitation_items")
        .values(contentIds.map((content_id) => ({ invitation_id: invitation.id, content_id })))
        .execute();
    }
    return invitation;
  }

  async invitation(id: string, lock = false): Promise<InvitationRow | undefined> {
    const q = this.db.selectFrom("partner_invitations").selectAll().where("id", "=", id);
    return (lock ? q.forUpdate() : q).executeTakeFirst();
  }

  async invitationByTokenHash(hash: string): Promise<InvitationRow | undefined> {
    return this.db.selectFrom("partner_invitations").selectAll().where("token_hash", "=", hash).forUpdate().executeTakeFirst();
  }

  async invitationItems(ids: readonly string[]): Promise<Array<{ invitation_id: string; content_id: string; kind: string }>> {
    if (ids.length === 0) return [];
    return this.db
      .selectFrom("partner_invitation_items as i")
      .innerJoin("content as c", "c.id", "i.content_id")
      .select(["i.invitation_id", "i.content_id", "c.kind"])
      .where("i.invitation_id", "in", ids)
      .orderBy("i.content_id")
      .execute();
  }

  async pendingInvitations(ownerId: string, query: string): Promise<InvitationRow[]> {
    let q = this.db
      .selectFrom("partner_invitations")
      .selectAll()
      .where("owner_organization_id", "=", ownerId)
      .where("status", "=", "pending")
      .where("expires_at", ">", sql<Date>`now()`)
      .orderBy("created_at")
      .orderBy("id");
    if (query) q = q.where("email", "ilike", likePattern(query));
    return q.execute();
  }

  async setInvitationStatus(
    id: string,
    status: InvitationStatus,
    accepted?: { by: string; partnerOrganizationId: string },
  ): Promise<InvitationRow | undefined> {
    return this.db
      .updateTable("partner_invitations")
      .set({
        status,
        ...(accepted ? { accepted_by: accepted.by, partner_organization_id: accepted.partnerOrganizationId, accepted_at: sql<Date>`now()` } : {}),
      })
      .where("id", "=", id)
      .returningAll()
      .executeTakeFirst();
  }

  // ---- R11 claims ----

  async claim(ownerId: string, key: string): Promise<ClaimRow | undefined> {
    return this.db
      .selectFrom("partner_domain_claims")
      .selectAll()
      .where("owner_organization_id", "=", ownerId)
      .where("claim_key", "=", key)
      .forUpdate()
      .executeTakeFirst();
  }

  /** Fails with a unique violation (partner_domain_claims_owner_organization_id_claim_key_key) when taken. */
  async insertClaim(row: NewRow<"partner_domain_claims">): Promise<ClaimRow> {
    return this.db.insertInto("partner_domain_claims").values(row).returningAll().executeTakeFirstOrThrow();
  }

  async releaseClaims(where: { invitationId: string } | { claimId: number }): Promise<void> {
    let q = this.db.deleteFrom("partner_domain_claims");
    q = "invitationId" in where ? q.where("invitation_id", "=", where.invitationId) : q.where("id", "=", where.claimId);
    await q.execute();
  }

  /** On acceptance the partnership takes over the invitation's claim. */
  async transferClaims(invitationId: string, partnershipId: string): Promise<void> {
    await this.db
      .updateTable("partner_domain_claims")
      .set({ invitation_id: null, partnership_id: partnershipId })
      .where("invitation_id", "=", invitationId)
      .execute();
  }
}
