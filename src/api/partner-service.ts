import type { ServiceImpl } from "@connectrpc/connect";
import { invalid } from "../domain/errors.js";
import { optionalId, requireId } from "../domain/ids.js";
import type { ChannelPartners } from "../domain/channel-partners.js";
import type { InvitationView, Partners } from "../domain/partners.js";
import type { ObjectRef as DomainRef } from "../engine/engine.js";
import type { ChannelPartnerSummary, PartnerOrgUser } from "../store/channel-partners.js";
import type { PartnerSummary } from "../store/partners.js";
import type { ObjectRef } from "../gen/sharegraph/v1/common_pb.js";
import type { PartnerService } from "../gen/sharegraph/v1/partner_service_pb.js";
import { actor, freshness, nextPageToken, page, timestamp } from "./parse.js";

const toPartner = (p: PartnerSummary) => ({
  organizationId: p.partnership.partner_organization_id,
  organizationName: p.partner_name,
  sharedReports: p.shared_reports,
  sharedBoards: p.shared_boards,
  since: timestamp(p.partnership.created_at),
});

const toInvitation = (v: InvitationView) => ({
  id: v.row.id,
  ownerOrganizationId: v.row.owner_organization_id,
  email: v.row.email,
  status: v.row.status,
  items: [...v.items],
  invitedBy: v.row.invited_by ?? "",
  createdAt: timestamp(v.row.created_at),
  expiresAt: timestamp(v.row.expires_at),
  partnerOrganizationId: v.row.partner_organization_id ?? "",
});

const toChannelPartner = (p: ChannelPartnerSummary) => ({
  organizationId: p.partnership.partner_organization_id,
  organizationName: p.partner_name,
  addedUsers: p.added_users,
  channelPartner: p.channel_partner,
  since: timestamp(p.partnership.created_at),
});

const toPartnerOrgUser = (u: PartnerOrgUser) => ({ userId: u.id, email: u.email, displayName: u.display_name, selected: u.selected });

function userIds(field: string, ids: readonly string[]): string[] {
  return ids.map((id, i) => requireId(`${field}[${i}]`, id));
}

/** ListCustomers pages with the permission index's signed lookup cursor, passed through as it is. */
function lookupPage(request: { pageSize: number; pageToken: string } | undefined, maxPageSize: number): { limit: number; cursor?: string } {
  const limit = request?.pageSize || 100;
  if (limit > maxPageSize) throw invalid("page.page_size", `at most ${maxPageSize}`);
  const token = request?.pageToken ?? "";
  if (token.length > 8192) throw invalid("page.page_token", "not a page token of this listing; start again without one");
  return token ? { limit, cursor: token } : { limit };
}

function items(field: string, refs: readonly ObjectRef[]): DomainRef[] {
  return refs.map((r, i) => {
    if (!r.type) throw invalid(`${field}[${i}].type`, "is required (report or board)");
    return { type: r.type, id: requireId(`${field}[${i}].id`, r.id) };
  });
}

export function partnerService(
  partners: Partners,
  channelPartners: ChannelPartners,
  limits: { maxListPageSize: number; maxLookupPageSize: number },
): ServiceImpl<typeof PartnerService> {
  const maxPageSize = Math.min(limits.maxListPageSize, limits.maxLookupPageSize - 1);
  return {
    async invitePartner(req) {
      const c = await partners.invite(actor(req.actor), requireId("owner_organization_id", req.ownerOrganizationId), {
        email: req.email.trim() || undefined,
        partnerOrganizationId: optionalId("partner_organization_id", req.partnerOrganizationId),
        items: items("items", req.items),
      });
      return {
        ...(c.value.invitation ? { invitation: toInvitation(c.value.invitation) } : {}),
        invitationToken: c.value.token ?? "",
        ...(c.value.partner ? { partner: toPartner(c.value.partner) } : {}),
        consistencyToken: c.token,
      };
    },
    async acceptInvitation(req) {
      const token = req.invitationToken.trim();
      if (!/^[A-Za-z0-9_-]{20,200}$/.test(token)) throw invalid("invitation_token", "is not an invitation token");
      const c = await partners.accept(token, {
        userId: optionalId("user_id", req.userId),
        displayName: req.displayName.trim().slice(0, 200),
        organizationName: req.organizationName.trim().slice(0, 200) || undefined,
        organizationId: optionalId("organization_id", req.organizationId),
      });
      return { partner: toPartner(c.value.partner), userId: c.value.userId, organizationCreated: c.value.organizationCreated, consistencyToken: c.token };
    },
    async revokeInvitation(req) {
      const c = await partners.revoke(actor(req.actor), requireId("invitation_id", req.invitationId));
      return { consistencyToken: c.token };
    },
    async listPartners(req) {
      const result = await partners.list(requireId("owner_organization_id", req.ownerOrganizationId), req.query.trim());
      return { partners: result.partners.map(toPartner), pendingInvitations: result.pending.map(toInvitation) };
    },
    async setPartnerShares(req) {
      const c = await partners.setShares(
        actor(req.actor),
        requireId("owner_organization_id", req.ownerOrganizationId),
        requireId("partner_organization_id", req.partnerOrganizationId),
        { items: items("items", req.items), kinds: req.kinds },
      );
      return { partner: toPartner(c.value), consistencyToken: c.token };
    },
    async removePartner(req) {
      const c = await partners.remove(
        actor(req.actor),
        requireId("owner_organization_id", req.ownerOrganizationId),
        requireId("partner_organization_id", req.partnerOrganizationId),
      );
      return { consistencyToken: c.token };
    },

    // ---- channel partners [004] ----
    async addChannelPartnerUsers(req) {
      const c = await channelPartners.add(actor(req.actor), requireId("customer_organization_id", req.customerOrganizationId), {
        email: req.email.trim() || undefined,
        partnerOrganizationId: optionalId("partner_organization_id", req.partnerOrganizationId),
        userIds: userIds("user_ids", req.userIds),
      });
      return { partner: toChannelPartner(c.value.partner), addedUserIds: c.value.added, consistencyToken: c.token };
    },
    async listChannelPartners(req) {
      const result = await channelPartners.list(
        requireId("customer_organization_id", req.customerOrganizationId),
        req.query.trim(),
        page(req.page, limits.maxListPageSize),
      );
      return { partners: result.items.map(toChannelPartner), nextPageToken: nextPageToken(result.next) };
    },
    async listChannelPartnerUsers(req) {
      const result = await channelPartners.listUsers(
        requireId("customer_organization_id", req.customerOrganizationId),
        requireId("partner_organization_id", req.partnerOrganizationId),
        req.query.trim(),
        page(req.page, limits.maxListPageSize),
      );
      return {
        ...(result.partner ? { partner: toChannelPartner(result.partner) } : {}),
        users: result.users.items.map(toPartnerOrgUser),
        nextPageToken: nextPageToken(result.users.next),
      };
    },
    async setChannelPartnerUsers(req) {
      const c = await channelPartners.setUsers(
        actor(req.actor),
        requireId("customer_organization_id", req.customerOrganizationId),
        requireId("partner_organization_id", req.partnerOrganizationId),
        userIds("user_ids", req.userIds),
        { limit: 100 },
      );
      return {
        partner: toChannelPartner(c.value.partner),
        addedUserIds: c.value.added,
        removedUserIds: c.value.removed,
        users: c.value.users.items.map(toPartnerOrgUser),
        nextPageToken: nextPageToken(c.value.users.next),
        consistencyToken: c.token,
      };
    },
    async removeChannelPartner(req) {
      const c = await channelPartners.remove(
        actor(req.actor),
        requireId("customer_organization_id", req.customerOrganizationId),
        requireId("partner_organization_id", req.partnerOrganizationId),
      );
      return { removedUserIds: c.value.removed, consistencyToken: c.token };
    },
    async listCustomers(req, ctx) {
      const result = await channelPartners.customers(
        requireId("user_id", req.userId),
        lookupPage(req.page, maxPageSize),
        freshness(req.consistency),
        ctx.signal,
      );
      return {
        customers: result.customers.map((c) => ({ organizationId: c.id, organizationName: c.name })),
        nextPageToken: result.next ?? "",
        consistencyToken: result.token,
      };
    },
  };
}
