import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { ObjectRef } from "../engine/engine.js";
import type { Sealer } from "../secrets.js";
import type { ContentRow } from "../store/content.js";
import type { PartnerShareKind } from "../store/database.js";
import { StoreConflictError } from "../store/errors.js";
import type { ClaimRow, InvitationRow, PartnerSummary } from "../store/partners.js";
import type { Repositories, Store } from "../store/store.js";
import type { RelationshipChanges } from "../sync/changes.js";
import type { ChangeWriter, Committed } from "../sync/writer.js";
import type { Authorizer } from "./authorizer.js";
import { normalizeEmail } from "./email.js";
import type { EmailDomains } from "./email-domains.js";
import type { DomainError} from "./errors.js";
import { alreadyExists, invalid, notFound, refused } from "./errors.js";
import { deriveRemoved, deriveRow } from "./graph.js";
import { acceptedMail, invitationMail, removedMail, sharedMoreMail, type SharedItem } from "./mail.js";

export interface InvitationView {
  readonly row: InvitationRow;
  readonly items: readonly ObjectRef[];
}

export interface PartnersDeps {
  readonly store: Store;
  readonly writer: ChangeWriter;
  readonly authz: Authorizer;
  readonly emailDomains: EmailDomains;
  readonly invitationTtlMs: number;
  /** e.g. "https://bi.example.com/partners/accept?token={token}"; undefined: the mail carries the token alone. */
  readonly acceptUrl: string | undefined;
  /** Seals invitation tokens kept for their mail: never stored or listed in the clear. */
  readonly invitationTokens: Sealer;
}

const PARTNER_KINDS: readonly PartnerShareKind[] = ["report", "board"];

function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/**
 * Partner share access [000] (R10–R13): view-only access for another
 * organization to chosen reports and boards, by invitation.
 */
export class Partners {
  constructor(private readonly deps: PartnersDeps) {}

  private get read(): Repositories {
    return this.deps.store.read;
  }

  /** R10/R11: invite a new partner by email, or share more with an existing one. */
  async invite(
    actor: string,
    ownerId: string,
    input: { email?: string | undefined; partnerOrganizationId?: string | undefined; items: readonly ObjectRef[] },
  ): Promise<Committed<{ invitation?: InvitationView; token?: string; partner?: PartnerSummary }>> {
    const owner = await this.#requireOwner(actor, ownerId, "invite partners for");
    if (Boolean(input.email) === Boolean(input.partnerOrganizationId)) {
      throw invalid("email", "give either email (a new partner) or partner_organization_id (an existing partner), not both");
    }
    const items = await this.#resolveItems(ownerId, input.items, "items", true);
    if (input.partnerOrganizationId) return this.#shareMore(ownerId, owner.name, input.partnerOrganizationId, items);

    const email = normalizeEmail(input.email ?? "");
    if (await this.#isMemberByEmail(ownerId, email.address)) {
      throw refused(`${email.address} is a member of organization ${ownerId}; partners are people outside it`, "PARTNER_IS_MEMBER");
    }
    const key = this.deps.emailDomains.claimKey(email);
    const token = randomBytes(32).toString("base64url");
    const inviter = await this.read.users.get(actor);
    try {
      return await this.deps.writer.change(async (tx) => {
        const held = await tx.partners.claim(ownerId, key);
        if (held) await this.#releaseIfStale(tx, held, key);
        const expiresAt = new Date(Date.now() + this.deps.invitationTtlMs);
        const row = await tx.partners.insertInvitation(
          { id: randomUUID(), owner_organization_id: ownerId, email: email.address, token_hash: hashToken(token), status: "pending", invited_by: actor, expires_at: expiresAt },
          items.map((i) => i.id),
        );
        await tx.partners.insertClaim({ owner_organization_id: ownerId, claim_key: key, email: email.address, invitation_id: row.id });
        await tx.notifications.record([
          invitationMail({
            to: email.address,
            ownerName: owner.name,
            inviterName: inviter?.display_name || actor,
            items: items.map(shared),
            sealedToken: this.deps.invitationTokens.seal(token),
            acceptUrl: this.deps.acceptUrl,
            expiresAt,
          }),
        ]);
        return { invitation: { row, items: items.map(ref) }, token };
      });
    } catch (err) {
      // Lost a race for the same domain: name the winner.
      if (err instanceof StoreConflictError) {
        const winner = await this.read.partners.claim(ownerId, key);
        throw winner ? await this.#claimTaken(winner, key) : alreadyExists(`a partner or invitation for ${describeKey(key)} already exists`);
      }
      throw err;
    }
  }

  /** R12: the invitee accepts; their organization's members view the shared items at once. */
  async accept(
    token: string,
    input: { userId?: string | undefined; displayName: string; organizationName?: string | undefined; organizationId?: string | undefined },
  ): Promise<Committed<{ partner: PartnerSummary; userId: string; organizationCreated: boolean }>> {
    const outcome = await this.deps.writer.change(async (tx, rels) => {
      const invitation = await tx.partners.invitationByTokenHash(hashToken(token));
      if (!invitation) throw notFound("an invitation with this token");
      if (invitation.status !== "pending") {
        throw refused(`this invitation was already ${invitation.status}`, "INVITATION_NOT_PENDING");
      }
      if (invitation.expires_at.getTime() <= Date.now()) {
        // Recorded even though the caller gets a refusal: the domain is free again.
        await tx.partners.setInvitationStatus(invitation.id, "expired");
        await tx.partners.releaseClaims({ invitationId: invitation.id });
        return { expired: invitation.expires_at } as const;
      }
      const user = await this.#acceptingUser(tx, invitation.email, input);
      const { organizationId, created } = await this.#partnerOrganization(tx, invitation, user.id, input, rels);
      let partnership = await tx.partners.findPartnership(invitation.owner_organization_id, organizationId, true);
      if (!partnership) {
        partnership = await tx.partners.insertPartnership({
          id: randomUUID(),
          owner_organization_id: invitation.owner_organization_id,
          partner_organization_id: organizationId,
        });
        rels.touch(deriveRow("partnerships", partnership));
      }
      const items = await tx.partners.invitationItems([invitation.id]);
      const added = await tx.partners.addShares(
        partnership.id,
        items.map((i) => ({ id: i.content_id, kind: i.kind as PartnerShareKind })),
      );
      for (const row of added) rels.touch(deriveRow("partner_shares", row));
      await tx.partners.transferClaims(invitation.id, partnership.id);
      await tx.partners.setInvitationStatus(invitation.id, "accepted", { by: user.id, partnerOrganizationId: organizationId });
      const owner = await tx.organizations.get(invitation.owner_organization_id);
      const partnerOrg = await tx.organizations.get(organizationId);
      const inviter = invitation.invited_by ? await tx.users.get(invitation.invited_by) : undefined;
      if (inviter) {
        await tx.notifications.record([
          acceptedMail({ to: inviter.email, partnerEmail: invitation.email, partnerOrganization: partnerOrg?.name ?? organizationId, ownerName: owner?.name ?? "" }),
        ]);
      }
      const [summary] = await tx.partners.summaries(invitation.owner_organization_id, "", organizationId);
      return { partner: summary!, userId: user.id, organizationCreated: created };
    });
    if ("expired" in outcome.value) {
      throw refused(`this invitation expired on ${outcome.value.expired.toISOString()}; ask for a new one`, "INVITATION_EXPIRED");
    }
    return { ...outcome, value: outcome.value };
  }

  /** Withdraws a pending invitation and frees its domain. */
  async revoke(actor: string, invitationId: string): Promise<Committed<void>> {
    const invitation = await this.read.partners.invitation(invitationId);
    if (!invitation) throw notFound(`invitation ${invitationId}`);
    await this.#requireOwner(actor, invitation.owner_organization_id, "revoke invitations of");
    return this.deps.writer.change(async (tx) => {
      const current = await tx.partners.invitation(invitationId, true);
      if (current?.status !== "pending") {
        throw refused(`invitation ${invitationId} is already ${current?.status ?? "gone"}`, "INVITATION_NOT_PENDING");
      }
      await tx.partners.setInvitationStatus(invitationId, "revoked");
      await tx.partners.releaseClaims({ invitationId });
    });
  }

  /** R13: active partners with counts, and pending invitations apart. */
  async list(ownerId: string, query: string): Promise<{ partners: PartnerSummary[]; pending: InvitationView[] }> {
    if (!(await this.read.organizations.get(ownerId))) throw notFound(`organization ${ownerId}`);
    const [partners, pending] = await Promise.all([this.read.partners.summaries(ownerId, query), this.read.partners.pendingInvitations(ownerId, query)]);
    const items = await this.read.partners.invitationItems(pending.map((p) => p.id));
    return {
      partners,
      pending: pending.map((row) => ({
        row,
        items: items.filter((i) => i.invitation_id === row.id).map((i) => ({ type: i.kind, id: i.content_id })),
      })),
    };
  }

  /** R13: replaces the shared set (of the given kinds only: a "manage shared reports" toggle leaves boards alone). */
  async setShares(
    actor: string,
    ownerId: string,
    partnerId: string,
    input: { items: readonly ObjectRef[]; kinds: readonly string[] },
  ): Promise<Committed<PartnerSummary>> {
    await this.#requireOwner(actor, ownerId, "change what is shared with partners of");
    const kinds = input.kinds.length === 0 ? PARTNER_KINDS : input.kinds.map((k, i) => partnerKind(`kinds[${i}]`, k));
    const items = await this.#resolveItems(ownerId, input.items, "items", false);
    const stray = items.findIndex((i) => !kinds.includes(i.kind as PartnerShareKind));
    if (stray >= 0) throw invalid(`items[${stray}]`, `is a ${items[stray]!.kind}, outside kinds ${kinds.join(", ")}`);
    return this.deps.writer.change(async (tx, rels) => {
      const partnership = await tx.partners.findPartnership(ownerId, partnerId, true);
      if (!partnership) throw notFound(`partner organization ${partnerId} of organization ${ownerId}`);
      const current = (await tx.partners.shares(partnership.id)).filter((s) => kinds.includes(s.kind));
      const wanted = new Set(items.map((i) => i.id));
      const removed = await tx.partners.removeShares(partnership.id, current.filter((s) => !wanted.has(s.content_id)).map((s) => s.content_id));
      for (const row of removed) rels.delete(deriveRow("partner_shares", row));
      const have = new Set(current.map((s) => s.content_id));
      const added = await tx.partners.addShares(
        partnership.id,
        items.filter((i) => !have.has(i.id)).map((i) => ({ id: i.id, kind: i.kind as PartnerShareKind })),
      );
      for (const row of added) rels.touch(deriveRow("partner_shares", row));
      const [summary] = await tx.partners.summaries(ownerId, "", partnerId);
      return summary!;
    });
  }

  /** R13: every tuple granting the partner anything disappears in one change. */
  async remove(actor: string, ownerId: string, partnerId: string): Promise<Committed<void>> {
    const owner = await this.#requireOwner(actor, ownerId, "remove partners of");
    return this.deps.writer.change(async (tx, rels) => {
      const partnership = await tx.partners.findPartnership(ownerId, partnerId, true);
      if (!partnership) throw notFound(`partner organization ${partnerId} of organization ${ownerId}`);
      // The partnership's own relationships come first: removing its partner link ends all access at once.
      const result = await tx.cascadeDelete("partnerships", [partnership.id]);
      rels.delete(deriveRemoved(result.removed));
      const partnerOrg = await tx.organizations.get(partnerId);
      await tx.notifications.record(
        (await this.#adminEmails(tx, partnerId)).map((to) => removedMail({ to, ownerName: owner.name, partnerOrganization: partnerOrg?.name ?? partnerId })),
      );
    });
  }

  async #shareMore(ownerId: string, ownerName: string, partnerId: string, items: readonly ContentRow[]) {
    return this.deps.writer.change(async (tx, rels) => {
      const partnership = await tx.partners.findPartnership(ownerId, partnerId, true);
      if (!partnership) throw notFound(`partner organization ${partnerId} of organization ${ownerId}`);
      const added = await tx.partners.addShares(
        partnership.id,
        items.map((i) => ({ id: i.id, kind: i.kind as PartnerShareKind })),
      );
      for (const row of added) rels.touch(deriveRow("partner_shares", row));
      const newlyShared = items.filter((i) => added.some((a) => a.content_id === i.id)).map(shared);
      if (newlyShared.length > 0) {
        await tx.notifications.record((await this.#adminEmails(tx, partnerId)).map((to) => sharedMoreMail({ to, ownerName, items: newlyShared })));
      }
      const [partner] = await tx.partners.summaries(ownerId, "", partnerId);
      return { partner: partner! };
    });
  }

  /** The held claim is no obstacle if its invitation expired: it is marked so and freed. Otherwise ALREADY_EXISTS. */
  async #releaseIfStale(tx: Repositories, held: ClaimRow, key: string): Promise<void> {
    if (held.invitation_id) {
      const invitation = await tx.partners.invitation(held.invitation_id, true);
      if (invitation?.status === "pending" && invitation.expires_at.getTime() <= Date.now()) {
        await tx.partners.setInvitationStatus(invitation.id, "expired");
        await tx.partners.releaseClaims({ claimId: held.id });
        return;
      }
    }
    throw await this.#claimTaken(held, key, tx);
  }

  /** ALREADY_EXISTS naming who holds the domain (or address). */
  async #claimTaken(held: ClaimRow, key: string, tx: Repositories = this.read): Promise<DomainError> {
    const what = describeKey(key);
    if (held.invitation_id) {
      return alreadyExists(
        `organization ${held.owner_organization_id} already has a pending invitation for ${what}: ${held.email} (invitation ${held.invitation_id}); ` +
          `only one person per private email domain can be invited (R11)`,
        "DOMAIN_ALREADY_INVITED",
      );
    }
    const partnership = held.partnership_id ? await tx.partners.summaries(held.owner_organization_id, "") : [];
    const partner = partnership.find((p) => p.partnership.id === held.partnership_id);
    return alreadyExists(
      `organization ${held.owner_organization_id} already has a partner for ${what}: ${held.email}, partner organization ` +
        `${partner?.partnership.partner_organization_id ?? "?"} ("${partner?.partner_name ?? ""}"); share more with it by partner_organization_id (R11)`,
      "DOMAIN_ALREADY_PARTNER",
    );
  }

  async #acceptingUser(tx: Repositories, email: string, input: { userId?: string | undefined; displayName: string }) {
    const existing = await tx.users.getByEmail(email);
    if (existing) {
      if (input.userId && input.userId !== existing.id) {
        throw refused(`${email} already belongs to user ${existing.id}; accept without user_id or with user_id ${existing.id}`, "EMAIL_OF_OTHER_USER");
      }
      return existing;
    }
    const id = input.userId || randomUUID();
    if (await tx.users.get(id)) throw alreadyExists(`user ${id} already exists (with another email)`);
    return tx.users.insert({ id, email, display_name: input.displayName || email });
  }

  /** The partner organization: the one the user belongs to, or a new one with the user as admin. */
  async #partnerOrganization(
    tx: Repositories,
    invitation: InvitationRow,
    userId: string,
    input: { organizationName?: string | undefined; organizationId?: string | undefined },
    rels: RelationshipChanges,
  ): Promise<{ organizationId: string; created: boolean }> {
    const memberships = await tx.organizations.organizationsOf(userId);
    if (memberships.some((m) => m.organization_id === invitation.owner_organization_id)) {
      throw refused(`${invitation.email} is a member of the inviting organization ${invitation.owner_organization_id}`, "PARTNER_IS_MEMBER");
    }
    if (input.organizationId) {
      if (!memberships.some((m) => m.organization_id === input.organizationId)) {
        throw refused(`user ${userId} is not a member of organization ${input.organizationId}`, "NOT_AN_ORGANIZATION_MEMBER");
      }
      return { organizationId: input.organizationId, created: false };
    }
    if (memberships.length === 1) return { organizationId: memberships[0]!.organization_id, created: false };
    if (memberships.length > 1) {
      throw refused(
        `user ${userId} belongs to several organizations (${memberships.map((m) => m.organization_id).join(", ")}); name one in organization_id`,
        "AMBIGUOUS_ORGANIZATION",
      );
    }
    const domain = invitation.email.split("@")[1] ?? invitation.email;
    const organization = await tx.organizations.insert({
      id: randomUUID(),
      name: input.organizationName?.trim() || this.deps.emailDomains.registrable(domain),
    });
    rels.touch(deriveRow("organizations", organization));
    const { after } = await tx.organizations.upsertMember(organization.id, userId, true);
    rels.touch(deriveRow("organization_members", after));
    return { organizationId: organization.id, created: true };
  }

  /** Reports and boards of the owner organization; `atLeastOne` for invitations. */
  async #resolveItems(ownerId: string, refs: readonly ObjectRef[], field: string, atLeastOne: boolean): Promise<ContentRow[]> {
    if (atLeastOne && refs.length === 0) throw invalid(field, "at least one report or board is required");
    refs.forEach((r, i) => partnerKind(`${field}[${i}].type`, r.type));
    const rows = await this.read.content.getMany(refs.map((r) => r.id));
    const byId = new Map(rows.map((r) => [r.id, r]));
    const workspaces = new Map((await this.read.workspaces.getMany([...new Set(rows.map((r) => r.workspace_id))])).map((w) => [w.id, w]));
    return refs.map((r) => {
      const row = byId.get(r.id);
      if (!row || row.kind !== r.type) throw notFound(`${r.type} ${r.id}`);
      const organization = workspaces.get(row.workspace_id)?.organization_id;
      if (organization !== ownerId) {
        throw refused(`${r.type} ${r.id} belongs to organization ${organization ?? "?"}, not ${ownerId}; only its own items can be shared`, "ITEM_OF_OTHER_ORGANIZATION");
      }
      return row;
    }).filter((row, i, all) => all.findIndex((x) => x.id === row.id) === i);
  }

  async #requireOwner(actor: string, ownerId: string, action: string) {
    const owner = await this.read.organizations.get(ownerId);
    if (!owner) throw notFound(`organization ${ownerId}`);
    await this.deps.authz.require(actor, "manage", { type: "organization", id: ownerId }, `${action} organization ${ownerId}`);
    return owner;
  }

  async #isMemberByEmail(organizationId: string, email: string): Promise<boolean> {
    const user = await this.read.users.getByEmail(email);
    return user !== undefined && (await this.read.organizations.getMember(organizationId, user.id)) !== undefined;
  }

  async #adminEmails(tx: Repositories, organizationId: string): Promise<string[]> {
    const admins = await tx.users.getMany(await tx.organizations.adminIds(organizationId));
    return admins.map((u) => u.email).filter((e) => !e.endsWith(".invalid"));
  }
}

function partnerKind(field: string, kind: string): PartnerShareKind {
  if (!(PARTNER_KINDS as readonly string[]).includes(kind)) {
    throw invalid(field, `only reports and boards can be shared with partners, not ${JSON.stringify(kind)}`);
  }
  return kind as PartnerShareKind;
}

function ref(row: ContentRow): ObjectRef {
  return { type: row.kind, id: row.id };
}

function shared(row: ContentRow): SharedItem {
  return { kind: row.kind, id: row.id, name: row.name };
}

function describeKey(key: string): string {
  return key.startsWith("domain:") ? `the email domain ${key.slice(7)}` : `the address ${key.slice(6)}`;
}
