import type { ServiceImpl } from "@connectrpc/connect";
import { invalid } from "../domain/errors.js";
import { optionalId, requireId, requireName } from "../domain/ids.js";
import type { AccountInput, ServiceRelationships } from "../domain/service-relationships.js";
import type { AssignableMode, ServiceSummary } from "../store/services.js";
import type { Account } from "../gen/sharegraph/v1/service_relationship_service_pb.js";
import { AssignmentMode, type ServiceRelationshipService } from "../gen/sharegraph/v1/service_relationship_service_pb.js";
import { actor, nextPageToken, page, timestamp } from "./parse.js";

const toService = (s: ServiceSummary) => ({
  serviceId: s.service.id,
  name: s.service.name,
  providerOrganizationId: s.service.provider_organization_id,
  providerOrganizationName: s.provider_name,
  consumerEntityId: s.service.consumer_entity_id,
  consumerEntityName: s.consumer_name,
  consumerOrganizationId: s.consumer_organization_id,
  accountCount: s.account_count,
  endedAt: timestamp(s.service.ended_at),
  createdAt: timestamp(s.service.created_at),
});

function accounts(field: string, refs: readonly Account[]): AccountInput[] {
  return refs.map((a, i) => {
    const name = a.name.trim();
    if (name.length > 200) throw invalid(`${field}[${i}].name`, "at most 200 characters");
    return { id: requireId(`${field}[${i}].account_id`, a.accountId), name };
  });
}

function ids(field: string, values: readonly string[]): string[] {
  return values.map((v, i) => requireId(`${field}[${i}]`, v));
}

function mode(value: AssignmentMode): AssignableMode {
  if (value === AssignmentMode.GRANT) return "grant";
  if (value === AssignmentMode.REVOKE) return "revoke";
  throw invalid("mode", "is required: ASSIGNMENT_MODE_GRANT (the Add user list) or ASSIGNMENT_MODE_REVOKE (the Remove user list)");
}

export function serviceRelationshipService(services: ServiceRelationships, maxPageSize: number): ServiceImpl<typeof ServiceRelationshipService> {
  return {
    async createService(req) {
      const c = await services.create(actor(req.actor), {
        id: optionalId("service_id", req.serviceId),
        name: requireName("name", req.name),
        providerId: requireId("provider_organization_id", req.providerOrganizationId),
        consumerEntityId: requireId("consumer_entity_id", req.consumerEntityId),
        accounts: accounts("accounts", req.accounts),
      });
      return { service: toService(c.value), consistencyToken: c.token };
    },
    async setServiceAccounts(req) {
      const c = await services.setAccounts(actor(req.actor), requireId("service_id", req.serviceId), accounts("accounts", req.accounts));
      return {
        service: toService(c.value.summary),
        addedAccountIds: c.value.added,
        removedAccountIds: c.value.removed,
        removedAssignments: c.value.removedAssignments,
        consistencyToken: c.token,
      };
    },
    async endService(req) {
      const c = await services.end(actor(req.actor), requireId("service_id", req.serviceId));
      return { service: toService(c.value.summary), removedAssignments: c.value.removedAssignments, consistencyToken: c.token };
    },
    async listServices(req) {
      const result = await services.list(
        {
          consumerOrganizationId: optionalId("consumer_organization_id", req.consumerOrganizationId),
          providerOrganizationId: optionalId("provider_organization_id", req.providerOrganizationId),
          query: req.query.trim(),
          includeEnded: req.includeEnded,
        },
        page(req.page, maxPageSize),
      );
      return { services: result.items.map(toService), nextPageToken: nextPageToken(result.next) };
    },
    async getService(req) {
      const detail = await services.get(requireId("service_id", req.serviceId));
      return {
        service: toService(detail.summary),
        accounts: detail.accounts.map((a) => ({
          account: { accountId: a.id, name: a.name },
          assignedUsers: a.assigned.map((u) => ({ userId: u.id, email: u.email, displayName: u.display_name })),
          assignedUserCount: a.assignedCount,
        })),
      };
    },
    async listAssignableUsers(req) {
      const result = await services.assignableUsers(
        requireId("service_id", req.serviceId),
        ids("account_ids", req.accountIds),
        mode(req.mode),
        req.query.trim(),
        page(req.page, maxPageSize),
      );
      return {
        users: result.users.items.map((u) => ({ userId: u.id, email: u.email, displayName: u.display_name, currentAccess: u.current_access })),
        nextPageToken: nextPageToken(result.users.next),
        selectedAccounts: result.selected,
      };
    },
    async grantAccountAccess(req) {
      const c = await services.grant(actor(req.actor), requireId("service_id", req.serviceId), ids("account_ids", req.accountIds), ids("user_ids", req.userIds));
      return { granted: c.value, consistencyToken: c.token };
    },
    async revokeAccountAccess(req) {
      const c = await services.revoke(actor(req.actor), requireId("service_id", req.serviceId), ids("account_ids", req.accountIds), ids("user_ids", req.userIds));
      return { revoked: c.value, consistencyToken: c.token };
    },
  };
}
