import { randomUUID } from "node:crypto";
import type { EntityRow } from "../store/entities.js";
import type { Page, PageOf } from "../store/paging.js";
import { serviceAccountId, type AssignableMode, type AssignableUser, type ServiceRow, type ServiceSummary } from "../store/services.js";
import type { Repositories, Store } from "../store/store.js";
import type { RelationshipChanges } from "../sync/changes.js";
import type { ChangeWriter, Committed } from "../sync/writer.js";
import type { Authorizer } from "./authorizer.js";
import { creating } from "./creating.js";
import { alreadyExists, invalid, notFound, refused, type DomainError } from "./errors.js";
import { deriveRemoved, deriveRow, deriveChanged } from "./graph.js";

/** The documented limits of one call (INVALID_ARGUMENT above them). */
export interface ServiceLimits {
  /** Accounts in one CreateService / SetServiceAccounts / GrantAccountAccess / RevokeAccountAccess / ListAssignableUsers. */
  readonly maxAccountsPerCall: number;
  /** Users in one GrantAccountAccess / RevokeAccountAccess. */
  readonly maxUsersPerCall: number;
  /** user × account pairs in one GrantAccountAccess / RevokeAccountAccess. */
  readonly maxAssignmentsPerCall: number;
  /** Assigned users GetService lists per account. */
  readonly maxAssignedUsersListed: number;
}

export const SERVICE_LIMITS: ServiceLimits = {
  maxAccountsPerCall: 1000,
  maxUsersPerCall: 1000,
  maxAssignmentsPerCall: 10_000,
  maxAssignedUsersListed: 1000,
};

export interface ServiceRelationshipsDeps {
  readonly store: Store;
  readonly writer: ChangeWriter;
  readonly authz: Authorizer;
  readonly limits: ServiceLimits;
}

export interface AccountInput {
  readonly id: string;
  readonly name: string;
}

export interface ServiceDetail {
  readonly summary: ServiceSummary;
  readonly accounts: Array<{ id: string; name: string; assigned: Array<{ id: string; email: string; display_name: string }>; assignedCount: number }>;
}

/**
 * Partner accounts through service relationships [002] (R30–R33). Postgres
 * keeps services, their accounts and assignments; whether an assignment
 * still gives access (user still in the consumer entity, account still in
 * the service, service active) is the schema's intersection.
 */
export class ServiceRelationships {
  constructor(private readonly deps: ServiceRelationshipsDeps) {}

  private get read(): Repositories {
    return this.deps.store.read;
  }

  /** R30/R40: the provider organization's admins create a service for a consumer entity of another organization. */
  async create(
    actor: string,
    input: { id?: string | undefined; name: string; providerId: string; consumerEntityId: string; accounts: readonly AccountInput[] },
  ): Promise<Committed<ServiceSummary>> {
    const accounts = this.#accounts(input.accounts);
    if (!(await this.read.organizations.get(input.providerId))) throw notFound(`organization ${input.providerId}`);
    await this.deps.authz.require(actor, "manage", { type: "organization", id: input.providerId }, `create services of organization ${input.providerId}`);
    const entity = await this.read.entities.get(input.consumerEntityId);
    if (!entity) throw notFound(`entity ${input.consumerEntityId}`);
    if (entity.organization_id === input.providerId) {
      throw refused(
        `entity ${entity.id} belongs to organization ${input.providerId} itself; a service shares accounts with an entity of another organization`,
        "CONSUMER_OF_PROVIDER_ORGANIZATION",
      );
    }
    const id = input.id || randomUUID();
    return creating(this.deps.writer, `service ${id}`, async (tx, rels) => {
      if (await tx.services.get(id)) throw alreadyExists(`service ${id} already exists`);
      const row = await tx.services.insert({ id, name: input.name, provider_organization_id: input.providerId, consumer_entity_id: entity.id });
      rels.touch(deriveRow("services", row));
      await this.#includeAccounts(tx, rels, row, accounts);
      return this.#summary(tx, id);
    });
  }

  /** R33: replaces the service's accounts; a removed account's assignments go in the same change. */
  async setAccounts(
    actor: string,
    serviceId: string,
    input: readonly AccountInput[],
  ): Promise<Committed<{ summary: ServiceSummary; added: string[]; removed: string[]; removedAssignments: number }>> {
    const accounts = this.#accounts(input);
    await this.#requireService(serviceId);
    await this.deps.authz.require(actor, "configure", { type: "service", id: serviceId }, `change the accounts of service ${serviceId}`);
    return this.deps.writer.change(async (tx, rels) => {
      const service = await this.#activeService(tx, serviceId);
      const current = await tx.services.serviceAccounts(serviceId);
      const wanted = new Set(accounts.map((a) => a.id));
      const gone = current.filter((sa) => !wanted.has(sa.account_id));
      // The account's link to the service_account is the first of its relationships deleted: access ends with it.
      const result = await tx.cascadeDelete("service_accounts", gone.map((sa) => sa.id));
      rels.delete(deriveRemoved(result.removed));
      const have = new Set(current.map((sa) => sa.account_id));
      const added = await this.#includeAccounts(tx, rels, service, accounts.filter((a) => !have.has(a.id)));
      return {
        summary: await this.#summary(tx, serviceId),
        added,
        removed: gone.map((sa) => sa.account_id),
        removedAssignments: result.removed.filter((r) => r.table === "account_assignments").length,
      };
    });
  }

  /** R33: ending the service ends every assignment through it at once; they are deleted in the same change. */
  async end(actor: string, serviceId: string): Promise<Committed<{ summary: ServiceSummary; removedAssignments: number }>> {
    await this.#requireService(serviceId);
    await this.deps.authz.require(actor, "configure", { type: "service", id: serviceId }, `end service ${serviceId}`);
    return this.deps.writer.change(async (tx, rels) => {
      const before = await this.#activeService(tx, serviceId);
      const after = (await tx.services.end(serviceId))!;
      // The consumer link goes first: it alone ends every assignment's access.
      const changed = deriveChanged([{ table: "services", before, after }]);
      rels.replace(changed.before, changed.after);
      const removed = await tx.services.unassignAll(serviceId);
      for (const r of removed) rels.delete(deriveRow("account_assignments", r));
      const { items } = await tx.services.summaries({ serviceId, includeEnded: true }, { limit: 1 });
      return { summary: items[0]!, removedAssignments: removed.length };
    });
  }

  /** R30: the Partner Accounts table. */
  async list(
    filter: { consumerOrganizationId?: string | undefined; providerOrganizationId?: string | undefined; query: string; includeEnded: boolean },
    page: Page,
  ): Promise<PageOf<ServiceSummary>> {
    const organizationId = filter.consumerOrganizationId ?? filter.providerOrganizationId;
    if (Boolean(filter.consumerOrganizationId) === Boolean(filter.providerOrganizationId)) {
      throw invalid("consumer_organization_id", "give exactly one of consumer_organization_id and provider_organization_id");
    }
    if (!(await this.read.organizations.get(organizationId!))) throw notFound(`organization ${organizationId}`);
    return this.read.services.summaries(filter, page);
  }

  /** R30: a service's accounts and the users assigned to each. */
  async get(serviceId: string): Promise<ServiceDetail> {
    const { items } = await this.read.services.summaries({ serviceId, includeEnded: true }, { limit: 1 });
    const summary = items[0];
    if (!summary) throw notFound(`service ${serviceId}`);
    const [accounts, assigned] = await Promise.all([
      this.read.services.serviceAccounts(serviceId),
      this.read.services.assigned(serviceId, this.deps.limits.maxAssignedUsersListed),
    ]);
    return {
      summary,
      accounts: accounts.map((a) => ({
        id: a.account_id,
        name: a.name,
        assigned: assigned.get(a.account_id)?.users ?? [],
        assignedCount: assigned.get(a.account_id)?.count ?? 0,
      })),
    };
  }

  /** R32: the assignable-users list for selected accounts. */
  async assignableUsers(
    serviceId: string,
    accountIds: readonly string[],
    mode: AssignableMode,
    query: string,
    page: Page,
  ): Promise<{ users: PageOf<AssignableUser>; selected: number }> {
    const selected = this.#selection(accountIds);
    const service = await this.#requireService(serviceId);
    await this.#requireInService(this.read, serviceId, selected);
    const users = await this.read.services.assignableUsers(
      service.consumer_entity_id,
      selected.map((a) => serviceAccountId(serviceId, a)),
      mode,
      query,
      page,
    );
    return { users, selected: selected.length };
  }

  /** R31: many users × many accounts, one transaction, one token. */
  async grant(actor: string, serviceId: string, accountIds: readonly string[], userIds: readonly string[]): Promise<Committed<number>> {
    const { accounts, users } = this.#assignment(accountIds, userIds);
    await this.#requireService(serviceId, true);
    await this.deps.authz.require(actor, "manage", { type: "service", id: serviceId }, `assign users to the accounts of service ${serviceId}`);
    return this.deps.writer.change(async (tx, rels) => {
      const service = await this.#activeService(tx, serviceId);
      await this.#requireInService(tx, serviceId, accounts);
      await this.#requireEntityUsers(tx, service.consumer_entity_id, users);
      const added = await tx.services.assign(accounts.flatMap((a) => users.map((u) => ({ service_account_id: serviceAccountId(serviceId, a), user_id: u }))));
      for (const r of added) rels.touch(deriveRow("account_assignments", r));
      return added.length;
    });
  }

  /** R31: removes users from the selected accounts. */
  async revoke(actor: string, serviceId: string, accountIds: readonly string[], userIds: readonly string[]): Promise<Committed<number>> {
    const { accounts, users } = this.#assignment(accountIds, userIds);
    await this.#requireService(serviceId, true);
    await this.deps.authz.require(actor, "manage", { type: "service", id: serviceId }, `remove users from the accounts of service ${serviceId}`);
    return this.deps.writer.change(async (tx, rels) => {
      await this.#requireInService(tx, serviceId, accounts);
      const removed = await tx.services.unassign(accounts.map((a) => serviceAccountId(serviceId, a)), users);
      for (const r of removed) rels.delete(deriveRow("account_assignments", r));
      return removed.length;
    });
  }

  // ---- helpers ----------------------------------------------------------------

  /** Includes accounts in the service, creating new ones for the provider; returns the ids added. */
  async #includeAccounts(
    tx: Repositories,
    rels: RelationshipChanges,
    service: ServiceRow,
    accounts: readonly AccountInput[],
  ): Promise<string[]> {
    if (accounts.length === 0) return [];
    const existing = await tx.services.accounts(accounts.map((a) => a.id));
    const foreign = existing.find((a) => a.owner_organization_id !== service.provider_organization_id);
    if (foreign) {
      throw refused(
        `account ${foreign.id} belongs to organization ${foreign.owner_organization_id}, not ${service.provider_organization_id}; a service includes only its provider's accounts`,
        "ACCOUNT_OF_OTHER_ORGANIZATION",
      );
    }
    const known = new Set(existing.map((a) => a.id));
    const created = await tx.services.insertAccounts(
      accounts.filter((a) => !known.has(a.id)).map((a) => ({ id: a.id, name: a.name || a.id, owner_organization_id: service.provider_organization_id })),
    );
    for (const a of created) rels.touch(deriveRow("accounts", a));
    const added = await tx.services.addServiceAccounts(service.id, accounts.map((a) => a.id));
    for (const sa of added) rels.touch(deriveRow("service_accounts", sa));
    return added.map((sa) => sa.account_id).sort();
  }

  #accounts(input: readonly AccountInput[]): AccountInput[] {
    if (input.length > this.deps.limits.maxAccountsPerCall) {
      throw invalid("accounts", `at most ${this.deps.limits.maxAccountsPerCall} accounts per call, got ${input.length}`);
    }
    const seen = new Set<string>();
    return input.filter((a) => !seen.has(a.id) && seen.add(a.id));
  }

  #selection(accountIds: readonly string[]): string[] {
    if (accountIds.length === 0) throw invalid("account_ids", "select at least one account of the service");
    if (accountIds.length > this.deps.limits.maxAccountsPerCall) {
      throw invalid("account_ids", `at most ${this.deps.limits.maxAccountsPerCall} accounts per call, got ${accountIds.length}`);
    }
    return [...new Set(accountIds)];
  }

  #assignment(accountIds: readonly string[], userIds: readonly string[]): { accounts: string[]; users: string[] } {
    const accounts = this.#selection(accountIds);
    if (userIds.length === 0) throw invalid("user_ids", "select at least one user");
    if (userIds.length > this.deps.limits.maxUsersPerCall) {
      throw invalid("user_ids", `at most ${this.deps.limits.maxUsersPerCall} users per call, got ${userIds.length}`);
    }
    const users = [...new Set(userIds)];
    const pairs = users.length * accounts.length;
    if (pairs > this.deps.limits.maxAssignmentsPerCall) {
      throw invalid(
        "user_ids",
        `${users.length} users × ${accounts.length} accounts = ${pairs} assignments; at most ${this.deps.limits.maxAssignmentsPerCall} per call: split the change`,
      );
    }
    return { accounts, users };
  }

  async #requireService(id: string, active = false): Promise<ServiceRow> {
    const row = await this.read.services.get(id);
    if (!row) throw notFound(`service ${id}`);
    // An ended service has no consumer link, so no one holds manage on it any more: say why instead.
    if (active && row.ended_at) throw ended(row);
    return row;
  }

  async #activeService(tx: Repositories, id: string): Promise<ServiceRow> {
    const row = await tx.services.get(id, true);
    if (!row) throw notFound(`service ${id}`);
    if (row.ended_at) throw ended(row);
    return row;
  }

  async #requireInService(tx: Repositories, serviceId: string, accountIds: readonly string[]): Promise<void> {
    const included = new Set((await tx.services.serviceAccounts(serviceId)).map((sa) => sa.account_id));
    const stray = accountIds.find((a) => !included.has(a));
    if (stray !== undefined) throw notFound(`account ${stray} in service ${serviceId}`, "select among the service's accounts (GetService)");
  }

  /** R31: only users of the consumer entity. */
  async #requireEntityUsers(tx: Repositories, entityId: string, userIds: readonly string[]): Promise<void> {
    const members = await tx.services.entityMembersAmong(entityId, userIds);
    const outsider = userIds.find((u) => !members.has(u));
    if (outsider !== undefined) {
      const entity: EntityRow | undefined = await tx.entities.get(entityId);
      throw refused(
        `user ${outsider} is not a member of entity ${entityId}${entity ? ` ("${entity.name}")` : ""}, the service's consumer; only its users can be assigned to partner accounts`,
        "NOT_A_CONSUMER_ENTITY_MEMBER",
      );
    }
  }

  async #summary(tx: Repositories, serviceId: string): Promise<ServiceSummary> {
    const { items } = await tx.services.summaries({ serviceId, includeEnded: true }, { limit: 1 });
    return items[0]!;
  }
}

function ended(row: ServiceRow): DomainError {
  return refused(`service ${row.id} ended on ${row.ended_at?.toISOString() ?? "?"}; it can no longer change`, "SERVICE_ENDED");
}
