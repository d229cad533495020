import type { ServiceImpl } from "@connectrpc/connect";
import { invalid } from "../domain/errors.js";
import { optionalId, requireId } from "../domain/ids.js";
import type { InvitationView, Partners } from "../domain/partners.js";
import type { ObjectRef as DomainRef } from "../engine/engine.js";
import type { PartnerSummary } from "../store/partners.js";
import type { ObjectRef } from "../gen/sharegraph/v1/common_pb.js";
import type { PartnerService } from "../gen/sharegraph/v1/partner_service_pb.js";
import { actor, timestamp } from "./parse.js";

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

function items(field: string, refs: readonly ObjectRef[]): DomainRef[] {
  return refs.map((r, i) => {
    if (!r.type) throw invalid(`${field}[${i}].type`, "is required (report or board)");
    return { type: r.type, id: requireId(`${field}[${i}].id`, r.id) };
  });
}

export function partnerService(partners: Partners): ServiceImpl<typeof PartnerService> {
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
  };
}
