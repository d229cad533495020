import { randomUUID } from "node:crypto";
import type { ObjectRef } from "../engine/engine.js";
import type { ChannelPartnerSummary, PartnerOrgUser } from "../store/channel-partners.js";
import type { OrganizationRow } from "../store/organizations.js";
import type { Page, PageOf } from "../store/paging.js";
import type { Repositories, Store } from "../store/store.js";
import type { UserRow } from "../store/users.js";
import type { Freshness } from "../sync/consistency.js";
import type { ChangeWriter, Committed } from "../sync/writer.js";
import type { Authorizer } from "./authorizer.js";
import { normalizeEmail } from "./email.js";
import { DomainError, invalid, notFound, refused } from "./errors.js";
import { deriveRemoved, deriveRow } from "./graph.js";
import { channelPartnerAddedMail, channelPartnerRemovedMail, type NotificationInput } from "./mail.js";
import type { Permissions } from "./permissions.js";

export interface ChannelPartnersDeps {
  readonly store: Store;
  readonly writer: ChangeWriter;
  readonly authz: Authorizer;
  readonly permissions: Permissions;
  /** Users per AddChannelPartnerUsers / SetChannelPartnerUsers call. */
  readonly maxUsersPerCall: number;
}

/** Users per AddChannelPartnerUsers / SetChannelPartnerUsers call (INVALID_ARGUMENT above it). */
export const MAX_CHANNEL_PARTNER_USERS_PER_CALL = 1000;

export interface Customer {
  readonly id: string;
  readonly name: string;
}

const org = (id: string): ObjectRef => ({ type: "organization", id });

/** The schema permission R20 names: an active member of the customer organization (or its managers). */
const MANAGE_CHANNEL_PARTNERS = "manage_channel_partners";

/**
 * Channel partners [004] (R20–R23): a customer organization lets chosen users
 * of channel-partner organizations view its insights. Postgres keeps who was
 * added; whether they may still view is the schema's intersection (still a
 * member, organization still classified), so nothing is cleaned up when that
 * changes (R22).
 */
export class ChannelPartners {
  constructor(private readonly deps: ChannelPartnersDeps) {}

  private get read(): Repositories {
    return this.deps.store.read;
  }

  /** R20/R21: adds one person by email, or chosen users of a channel-partner organization. */
  async add(
    actor: string,
    customerId: string,
    input: { email?: string | undefined; partnerOrganizationId?: string | undefined; userIds: readonly string[] },
  ): Promise<Committed<{ partner: ChannelPartnerSummary; added: string[] }>> {
    if (input.email && input.userIds.length > 0) {
      throw invalid("user_ids", "give either email (an individual user) or partner_organization_id with user_ids, not both");
    }
    if (!input.email && !input.partnerOrganizationId) {
      throw invalid("email", "give email (an individual user) or partner_organization_id with user_ids (users of an existing partner organization)");
    }
    if (!input.email && input.userIds.length === 0) {
      throw invalid("user_ids", `choose at least one user of organization ${input.partnerOrganizationId}`);
    }
    this.#bounded(input.userIds);
    const email = input.email ? normalizeEmail(input.email).address : undefined;
    const customer = await this.#customer(customerId);
    // R20: refused, not denied: the seed lists it among the preconditions the Add sidebar reports.
    if (!(await this.deps.authz.can(actor, MANAGE_CHANNEL_PARTNERS, org(customerId)))) {
      throw refused(
        `user ${actor} is not an active member of organization ${customerId} ("${customer.name}"); only its own self-registered members can add ` +
          `channel partners: sign in as one, or have an admin of ${customerId} add ${actor} as a member`,
        "ACTOR_NOT_CUSTOMER_MEMBER",
      );
    }
    return this.deps.writer.change(async (tx, rels) => {
      const { partner, users } = email
        ? await this.#byEmail(tx, customerId, email, input.partnerOrganizationId)
        : await this.#byOrganization(tx, customerId, input.partnerOrganizationId!, input.userIds);
      const { row, created } = await tx.channelPartners.ensure({ id: randomUUID(), customer_organization_id: customerId, partner_organization_id: partner.id });
      if (created) rels.touch(deriveRow("channel_partnerships", row));
      const added = await tx.channelPartners.addUsers(row.id, users.map((u) => u.id));
      for (const r of added) rels.touch(deriveRow("channel_partner_users", r));
      const addedIds = new Set(added.map((r) => r.user_id));
      await tx.notifications.record(
        mails(users.filter((u) => addedIds.has(u.id)), (to) => channelPartnerAddedMail({ to, customerName: customer.name, partnerOrganization: partner.name })),
      );
      return { partner: await this.#summary(tx, customerId, partner.id), added: [...addedIds].sort() };
    });
  }

  /** R21: the Partners table. */
  async list(customerId: string, query: string, page: Page): Promise<PageOf<ChannelPartnerSummary>> {
    await this.#customer(customerId);
    return this.read.channelPartners.summaries(customerId, { query }, page);
  }

  /** The "Edit partner access" sidebar (and "Select existing partner organization"): the partner organization's users, checked if added. */
  async listUsers(
    customerId: string,
    partnerId: string,
    query: string,
    page: Page,
  ): Promise<{ partner: ChannelPartnerSummary | undefined; users: PageOf<PartnerOrgUser> }> {
    await this.#customer(customerId);
    if (!(await this.read.organizations.get(partnerId))) throw notFound(`organization ${partnerId}`);
    const partnership = await this.read.channelPartners.find(customerId, partnerId);
    const users = await this.read.channelPartners.partnerOrgUsers(partnerId, partnership?.id, query, page);
    const partner = partnership ? await this.#summary(this.read, customerId, partnerId) : undefined;
    return { partner, users };
  }

  /** R21: saves the sidebar: the complete set of added users of one partner organization. */
  async setUsers(
    actor: string,
    customerId: string,
    partnerId: string,
    userIds: readonly string[],
    sidebarPage: Page,
  ): Promise<Committed<{ partner: ChannelPartnerSummary; added: string[]; removed: string[]; users: PageOf<PartnerOrgUser> }>> {
    if (userIds.length === 0) throw invalid("user_ids", "at least one user; to remove the partner organization and all its users use RemoveChannelPartner");
    this.#bounded(userIds);
    const customer = await this.#customer(customerId);
    await this.deps.authz.require(actor, MANAGE_CHANNEL_PARTNERS, org(customerId), `change the channel partners of organization ${customerId}`);
    return this.deps.writer.change(async (tx, rels) => {
      const partnership = await tx.channelPartners.find(customerId, partnerId, true);
      if (!partnership) throw notFound(`channel partner organization ${partnerId} of organization ${customerId}`, "add its users with AddChannelPartnerUsers");
      const partner = (await tx.organizations.getForUpdate(partnerId))!;
      const wanted = [...new Set(userIds)];
      const current = new Set(await tx.channelPartners.userIds(partnership.id));
      const toAdd = wanted.filter((id) => !current.has(id));
      const wantedSet = new Set(wanted);
      const toRemove = [...current].filter((id) => !wantedSet.has(id));
      const newUsers = toAdd.length > 0 ? await this.#partnerUsers(tx, customerId, partner, toAdd) : [];
      const removed = await tx.channelPartners.removeUsers(partnership.id, toRemove);
      for (const r of removed) rels.delete(deriveRow("channel_partner_users", r));
      const added = await tx.channelPartners.addUsers(partnership.id, toAdd);
      for (const r of added) rels.touch(deriveRow("channel_partner_users", r));
      const removedUsers = await tx.users.getMany(removed.map((r) => r.user_id));
      await tx.notifications.record([
        ...mails(newUsers, (to) => channelPartnerAddedMail({ to, customerName: customer.name, partnerOrganization: partner.name })),
        ...mails(removedUsers, (to) => channelPartnerRemovedMail({ to, customerName: customer.name, partnerOrganization: partner.name })),
      ]);
      return {
        partner: await this.#summary(tx, customerId, partnerId),
        added: added.map((r) => r.user_id).sort(),
        removed: removed.map((r) => r.user_id).sort(),
        users: await tx.channelPartners.partnerOrgUsers(partnerId, partnership.id, "", sidebarPage),
      };
    });
  }

  /** R21/R23: removes the partner organization and all its added users in one write; each is told. */
  async remove(actor: string, customerId: string, partnerId: string): Promise<Committed<{ removed: string[] }>> {
    const customer = await this.#customer(customerId);
    await this.deps.authz.require(actor, MANAGE_CHANNEL_PARTNERS, org(customerId), `remove channel partners of organization ${customerId}`);
    return this.deps.writer.change(async (tx, rels) => {
      const partnership = await tx.channelPartners.find(customerId, partnerId, true);
      if (!partnership) throw notFound(`channel partner organization ${partnerId} of organization ${customerId}`);
      // The partnership's own relationships come first in the batch: its links go with its users, in one write.
      const result = await tx.cascadeDelete("channel_partnerships", [partnership.id]);
      rels.delete(deriveRemoved(result.removed));
      const removedIds = result.removed.flatMap((r) => (r.table === "channel_partner_users" ? [r.row.user_id] : [])).sort();
      const partner = await tx.organizations.get(partnerId);
      await tx.notifications.record(
        mails(await tx.users.getMany(removedIds), (to) =>
          channelPartnerRemovedMail({ to, customerName: customer.name, partnerOrganization: partner?.name ?? partnerId }),
        ),
      );
      return { removed: removedIds };
    });
  }

  /**
   * R22: the Partner Dashboard's customers, answered by the permission index
   * (organization#channel_partner_view), in organization-id order.
   */
  async customers(
    userId: string,
    page: { limit: number; cursor?: string | undefined },
    freshness: Freshness,
    signal?: AbortSignal,
  ): Promise<{ customers: Customer[]; next: string | undefined; token: string }> {
    if (!(await this.read.users.get(userId))) throw notFound(`user ${userId}`);
    const found: Array<{ id: string; cursor: string; token: string }> = [];
    try {
      for await (const r of this.deps.permissions.lookupResources(
        {
          resourceType: "organization",
          permission: "channel_partner_view",
          subject: { type: "user", id: userId },
          // One more than the page: whether a next page exists.
          limit: page.limit + 1,
          ...(page.cursor ? { cursor: page.cursor } : {}),
        },
        freshness,
        signal,
      )) {
        found.push({ id: r.resourceId, cursor: r.cursor, token: r.token });
      }
    } catch (err) {
      if (err instanceof DomainError && err.kind === "invalid_argument" && err.message.startsWith("cursor:")) {
        throw invalid("page.page_token", "not a page token of this listing; start again without one");
      }
      throw err;
    }
    const items = found.slice(0, page.limit);
    const names = await this.read.channelPartners.organizationNames(items.map((i) => i.id));
    return {
      customers: items.map((i) => ({ id: i.id, name: names.get(i.id) ?? "" })),
      next: found.length > page.limit ? items.at(-1)?.cursor : undefined,
      token: found[0]?.token ?? "",
    };
  }

  // ---- R20 preconditions ----------------------------------------------------

  async #byEmail(
    tx: Repositories,
    customerId: string,
    email: string,
    partnerId: string | undefined,
  ): Promise<{ partner: OrganizationRow; users: UserRow[] }> {
    const user = await tx.users.getByEmail(email);
    if (!user) {
      throw refused(
        `${email} is not the address of an active user; a partner must have an active account in an organization classified as a channel partner: check the address, or ask the partner to register`,
        "PARTNER_NOT_ACTIVE_USER",
      );
    }
    if (await tx.organizations.getMember(customerId, user.id)) {
      throw refused(`${email} (user ${user.id}) is a member of organization ${customerId}; partners are people outside it`, "PARTNER_IS_CUSTOMER_MEMBER");
    }
    if (partnerId) {
      const partner = await tx.organizations.getForUpdate(partnerId);
      if (!partner) throw notFound(`organization ${partnerId}`);
      return { partner, users: await this.#partnerUsers(tx, customerId, partner, [user.id]) };
    }
    const candidates = await tx.channelPartners.channelPartnerOrgsOf(user.id);
    if (candidates.length === 0) {
      throw refused(
        `${email} (user ${user.id}) does not belong to any organization classified as a channel partner; only users of channel-partner organizations can be added: ` +
          `check the address, or ask the platform to classify their organization (DirectoryService.SetChannelPartner)`,
        "PARTNER_NOT_IN_CHANNEL_PARTNER_ORGANIZATION",
      );
    }
    if (candidates.length > 1) {
      throw refused(
        `${email} (user ${user.id}) belongs to several channel-partner organizations (${candidates.map((c) => c.id).join(", ")}); name one in partner_organization_id`,
        "AMBIGUOUS_PARTNER_ORGANIZATION",
      );
    }
    const partner = (await tx.organizations.getForUpdate(candidates[0]!.id))!;
    return { partner, users: await this.#partnerUsers(tx, customerId, partner, [user.id]) };
  }

  async #byOrganization(tx: Repositories, customerId: string, partnerId: string, userIds: readonly string[]): Promise<{ partner: OrganizationRow; users: UserRow[] }> {
    const partner = await tx.organizations.getForUpdate(partnerId);
    if (!partner) throw notFound(`organization ${partnerId}`);
    return { partner, users: await this.#partnerUsers(tx, customerId, partner, [...new Set(userIds)]) };
  }

  /**
   * R20 for users about to be added: the organization (row locked by the
   * caller, so a concurrent reclassification waits) is a channel partner
   * other than the customer; each user exists, belongs to it, and is outside
   * the customer.
   */
  async #partnerUsers(tx: Repositories, customerId: string, partner: OrganizationRow, userIds: readonly string[]): Promise<UserRow[]> {
    if (partner.id === customerId) {
      throw refused(`organization ${customerId} cannot be its own channel partner; partners are people outside it`, "PARTNER_IS_CUSTOMER_MEMBER");
    }
    if (!partner.channel_partner) {
      throw refused(
        `organization ${partner.id} ("${partner.name}") is not classified as a channel partner; only users of channel-partner organizations can be added ` +
          `(the platform classifies organizations with DirectoryService.SetChannelPartner)`,
        "ORGANIZATION_NOT_CHANNEL_PARTNER",
      );
    }
    const users = await tx.users.getMany(userIds);
    const known = new Set(users.map((u) => u.id));
    const unknown = userIds.find((id) => !known.has(id));
    if (unknown !== undefined) throw notFound(`user ${unknown}`);
    const members = await tx.channelPartners.membersAmong(partner.id, userIds);
    const outsider = userIds.find((id) => !members.has(id));
    if (outsider !== undefined) {
      throw refused(
        `user ${outsider} is not an active member of organization ${partner.id} ("${partner.name}"); choose among its users (ListChannelPartnerUsers)`,
        "NOT_A_PARTNER_ORGANIZATION_MEMBER",
      );
    }
    const insiders = await tx.channelPartners.membersAmong(customerId, userIds);
    const insider = userIds.find((id) => insiders.has(id));
    if (insider !== undefined) {
      throw refused(`user ${insider} is a member of organization ${customerId}; partners are people outside it`, "PARTNER_IS_CUSTOMER_MEMBER");
    }
    return userIds.map((id) => users.find((u) => u.id === id)!);
  }

  #bounded(userIds: readonly string[]): void {
    if (userIds.length > this.deps.maxUsersPerCall) {
      throw invalid("user_ids", `at most ${this.deps.maxUsersPerCall} users per call, got ${userIds.length}`);
    }
  }

  async #customer(id: string): Promise<OrganizationRow> {
    const row = await this.read.organizations.get(id);
    if (!row) throw notFound(`organization ${id}`);
    return row;
  }

  async #summary(tx: Repositories, customerId: string, partnerId: string): Promise<ChannelPartnerSummary> {
    const { items } = await tx.channelPartners.summaries(customerId, { partnerId }, { limit: 1 });
    return items[0]!;
  }
}

/** Mails to real addresses only (platform-admin placeholders end in .invalid). */
function mails(users: readonly UserRow[], make: (to: string) => NotificationInput): NotificationInput[] {
  return users.filter((u) => !u.email.endsWith(".invalid")).map((u) => make(u.email));
}
