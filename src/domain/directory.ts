import { randomUUID } from "node:crypto";
import type { ObjectRef } from "../engine/engine.js";
import type { WorkspaceLevelName } from "../store/database.js";
import type { EntityRow } from "../store/entities.js";
import type { ClosureChange, GroupMemberRow, GroupRow } from "../store/groups.js";
import type { OrganizationMemberRow, OrganizationRow, OrganizationWithCount } from "../store/organizations.js";
import type { Page, PageOf } from "../store/paging.js";
import type { Repositories, Store } from "../store/store.js";
import type { UserRow } from "../store/users.js";
import type { WorkspaceAccessRow, WorkspaceRow } from "../store/workspaces.js";
import type { RelationshipChanges } from "../sync/changes.js";
import type { Committed, ChangeWriter } from "../sync/writer.js";
import type { Authorizer } from "./authorizer.js";
import { creating } from "./creating.js";
import { normalizeEmail } from "./email.js";
import { alreadyExists, invalid, notFound, refused } from "./errors.js";
import { PLATFORM_ID, deriveChanged, deriveRemoved, deriveRow } from "./graph.js";

/** A user, or a group standing for its members. */
export type Member = { readonly kind: "user"; readonly id: string } | { readonly kind: "group"; readonly id: string };

const PLATFORM: ObjectRef = { type: "platform", id: PLATFORM_ID };
const org = (id: string): ObjectRef => ({ type: "organization", id });

export interface DirectoryDeps {
  readonly store: Store;
  readonly writer: ChangeWriter;
  readonly authz: Authorizer;
}

/**
 * Users, organizations, groups, workspaces and entities. Platform admins
 * create users and organizations; an organization's admins manage what is
 * inside it; a workspace's MANAGE holders manage who may use it.
 */
export class Directory {
  constructor(private readonly deps: DirectoryDeps) {}

  private get store(): Store {
    return this.deps.store;
  }

  private change<T>(fn: (tx: Repositories, rels: RelationshipChanges) => Promise<T>): Promise<Committed<T>> {
    return this.deps.writer.change(fn);
  }

  // ---- users -------------------------------------------------------------

  async createUser(actor: string, input: { id?: string | undefined; email: string; displayName: string }): Promise<Committed<UserRow>> {
    await this.deps.authz.require(actor, "manage", PLATFORM, "create users");
    const email = normalizeEmail(input.email).address;
    const id = input.id || randomUUID();
    return creating(this.deps.writer, `user ${id} or email ${email}`, (tx) => this.#insertUser(tx, id, email, input.displayName));
  }

  /** Also used by partner invitations, which create the invitee's account. */
  async #insertUser(tx: Repositories, id: string, email: string, displayName: string): Promise<UserRow> {
    if (await tx.users.get(id)) throw alreadyExists(`user ${id} already exists`);
    const holder = await tx.users.getByEmail(email);
    if (holder) throw alreadyExists(`email ${email} already belongs to user ${holder.id}`);
    return tx.users.insert({ id, email, display_name: displayName });
  }

  async getUser(id: string): Promise<UserRow> {
    return (await this.store.read.users.get(id)) ?? throwNotFound(`user ${id}`);
  }

  listUsers(query: string, page: Page): Promise<PageOf<UserRow>> {
    return this.store.read.users.list(query, page);
  }

  async deleteUser(actor: string, id: string): Promise<Committed<void>> {
    await this.deps.authz.require(actor, "manage", PLATFORM, "delete users");
    return this.change(async (tx, rels) => {
      if (!(await tx.users.get(id))) throw notFound(`user ${id}`);
      if ((await tx.users.listPlatformAdmins()).includes(id)) {
        throw refused(`user ${id} is a platform admin (SHAREGRAPH_PLATFORM_ADMINS); remove them from that list first`, "PLATFORM_ADMIN");
      }
      for (const membership of await tx.organizations.organizationsOf(id)) {
        if (membership.admin) await this.#keepAnAdmin(tx, membership.organization_id, id);
      }
      this.#removed(rels, await tx.cascadeDelete("users", [id]));
    });
  }

  /**
   * Start-up: the configured platform admins exist and are exactly the
   * platform's admins. Users created here get a reserved .invalid address.
   */
  async syncPlatformAdmins(ids: readonly string[]): Promise<Committed<void>> {
    return this.change(async (tx, rels) => {
      for (const id of ids) {
        if (!(await tx.users.get(id))) {
          await tx.users.insert({ id, email: `${id.toLowerCase()}@platform-admin.invalid`, display_name: `${id} (platform admin)` });
        }
        const added = await tx.users.addPlatformAdmin(id);
        if (added) rels.touch(deriveRow("platform_admins", added));
      }
      for (const id of await tx.users.listPlatformAdmins()) {
        if (ids.includes(id)) continue;
        const removed = await tx.users.removePlatformAdmin(id);
        if (removed) rels.delete(deriveRow("platform_admins", removed));
      }
    });
  }

  // ---- organizations -----------------------------------------------------

  async createOrganization(
    actor: string,
    input: { id?: string | undefined; name: string; channelPartner: boolean; adminUserIds: readonly string[] },
  ): Promise<Committed<OrganizationWithCount>> {
    await this.deps.authz.require(actor, "manage", PLATFORM, "create organizations");
    const id = input.id || randomUUID();
    return creating(this.deps.writer, `organization ${id}`, async (tx, rels) => {
      if (await tx.organizations.get(id)) throw alreadyExists(`organization ${id} already exists`);
      await this.#requireUsers(tx, input.adminUserIds);
      const row = await tx.organizations.insert({ id, name: input.name, channel_partner: input.channelPartner });
      rels.touch(deriveRow("organizations", row));
      for (const userId of new Set(input.adminUserIds)) {
        const { after } = await tx.organizations.upsertMember(id, userId, true);
        rels.touch(deriveRow("organization_members", after));
      }
      return { ...row, member_count: new Set(input.adminUserIds).size };
    });
  }

  async getOrganization(id: string): Promise<OrganizationWithCount> {
    return (await this.store.read.organizations.getWithCount(id)) ?? throwNotFound(`organization ${id}`);
  }

  listOrganizations(filter: { query: string; channelPartnersOnly: boolean }, page: Page): Promise<PageOf<OrganizationWithCount>> {
    return this.store.read.organizations.list(filter, page);
  }

  /** R22: dropping the classification ends channel-partner access of all the org's users at once. */
  async setChannelPartner(actor: string, id: string, channelPartner: boolean): Promise<Committed<OrganizationWithCount>> {
    await this.deps.authz.require(actor, "manage", PLATFORM, "classify organizations as channel partners");
    return this.change(async (tx, rels) => {
      const before = await tx.organizations.getForUpdate(id);
      if (!before) throw notFound(`organization ${id}`);
      const after = await tx.organizations.setChannelPartner(id, channelPartner);
      if (!after) throw notFound(`organization ${id}`);
      rels.replace(deriveRow("organizations", before), deriveRow("organizations", after));
      return { ...after, member_count: (await tx.organizations.getWithCount(id))?.member_count ?? 0 };
    });
  }

  async deleteOrganization(actor: string, id: string): Promise<Committed<void>> {
    await this.deps.authz.require(actor, "manage", PLATFORM, "delete organizations");
    return this.change(async (tx, rels) => {
      if (!(await tx.organizations.get(id))) throw notFound(`organization ${id}`);
      this.#removed(rels, await tx.cascadeDelete("organizations", [id]));
    });
  }

  /**
   * Adds a user, or a person by email (their user is created when there is
   * none: organization admins add their own team this way, R12).
   */
  async addOrganizationMember(
    actor: string,
    organizationId: string,
    who: { userId?: string | undefined; email?: string | undefined; displayName?: string | undefined },
    admin: boolean,
  ): Promise<Committed<OrganizationMemberRow>> {
    await this.#requireOrganization(organizationId);
    await this.deps.authz.require(actor, "manage", org(organizationId), `manage members of organization ${organizationId}`);
    const email = who.email ? normalizeEmail(who.email).address : undefined;
    if (!email && !who.userId) throw invalid("user_id", "give user_id, or email to add a person by email");
    return creating(this.deps.writer, `user ${who.userId ?? ""} or email ${email ?? ""}`, async (tx, rels) => {
      const userId = email ? (await this.#userByEmail(tx, email, who.userId, who.displayName ?? "")).id : who.userId!;
      await this.#requireUsers(tx, [userId]);
      await tx.organizations.getForUpdate(organizationId);
      const { before, after } = await tx.organizations.upsertMember(organizationId, userId, admin);
      if (before?.admin && !admin) await this.#keepAnAdmin(tx, organizationId, userId);
      rels.replace(before ? deriveRow("organization_members", before) : [], deriveRow("organization_members", after));
      return after;
    });
  }

  /** The user with this email, or a new one (with `userId` if given). */
  async #userByEmail(tx: Repositories, email: string, userId: string | undefined, displayName: string): Promise<UserRow> {
    const existing = await tx.users.getByEmail(email);
    if (existing) {
      if (userId && userId !== existing.id) throw refused(`email ${email} belongs to user ${existing.id}, not ${userId}`, "EMAIL_OF_OTHER_USER");
      return existing;
    }
    return this.#insertUser(tx, userId || randomUUID(), email, displayName);
  }

  async removeOrganizationMember(actor: string, organizationId: string, userId: string): Promise<Committed<void>> {
    await this.#requireOrganization(organizationId);
    await this.deps.authz.require(actor, "manage", org(organizationId), `manage members of organization ${organizationId}`);
    return this.change(async (tx, rels) => {
      await tx.organizations.getForUpdate(organizationId);
      const removed = await tx.organizations.removeMember(organizationId, userId);
      if (!removed) throw notFound(`user ${userId} as a member of organization ${organizationId}`);
      if (removed.admin) await this.#keepAnAdmin(tx, organizationId, userId);
      rels.delete(deriveRow("organization_members", removed));
    });
  }

  async listOrganizationMembers(organizationId: string, page: Page) {
    await this.#requireOrganization(organizationId);
    return this.store.read.organizations.listMembers(organizationId, page);
  }

  // ---- groups ------------------------------------------------------------

  async createGroup(actor: string, organizationId: string, input: { id?: string | undefined; name: string }): Promise<Committed<GroupRow>> {
    await this.#requireOrganization(organizationId);
    await this.deps.authz.require(actor, "manage", org(organizationId), `create groups in organization ${organizationId}`);
    const id = input.id || randomUUID();
    return creating(this.deps.writer, `group ${id}`, async (tx, rels) => {
      if (await tx.groups.get(id)) throw alreadyExists(`group ${id} already exists`);
      const row = await tx.groups.insert({ id, organization_id: organizationId, name: input.name });
      rels.touch(deriveRow("groups", row));
      return row;
    });
  }

  async listGroups(organizationId: string, page: Page): Promise<PageOf<GroupRow>> {
    await this.#requireOrganization(organizationId);
    return this.store.read.groups.list(organizationId, page);
  }

  async deleteGroup(actor: string, groupId: string): Promise<Committed<void>> {
    await this.#requireGroup(groupId);
    await this.deps.authz.require(actor, "manage", { type: "group", id: groupId }, `delete group ${groupId}`);
    return this.change(async (tx, rels) => {
      if (!(await tx.groups.get(groupId))) throw notFound(`group ${groupId}`);
      this.#removed(rels, await tx.cascadeDelete("groups", [groupId]));
    });
  }

  async addGroupMember(actor: string, groupId: string, member: Member): Promise<Committed<void>> {
    const group = await this.#requireGroup(groupId);
    await this.deps.authz.require(actor, "manage", { type: "group", id: groupId }, `change members of group ${groupId}`);
    return this.change(async (tx, rels) => {
      if (member.kind === "user") {
        await this.#requireUsers(tx, [member.id]);
      } else {
        const nested = await tx.groups.get(member.id);
        if (!nested) throw notFound(`group ${member.id}`);
        if (nested.organization_id !== group.organization_id) {
          throw refused(
            `group ${member.id} belongs to organization ${nested.organization_id}; only groups of ${group.organization_id} can be nested in ${groupId}`,
            "GROUP_OF_OTHER_ORGANIZATION",
          );
        }
        // Nesting H in G makes a cycle when G is already (transitively) inside H. Under the organization's
        // membership lock: two opposite nestings at once must not both pass this check.
        await tx.groups.lockMemberships(group.organization_id);
        if (member.id === groupId || (await tx.groups.containingGroups(groupId)).includes(member.id)) {
          throw refused(`adding group ${member.id} to group ${groupId} would make groups contain themselves`, "GROUP_CYCLE");
        }
      }
      const row = await tx.groups.addMember(groupId, member.kind === "user" ? { userId: member.id } : { groupId: member.id });
      if (row) this.#closureChanged(rels, await tx.groups.refreshClosure([groupId], member.kind === "user" ? member.id : undefined));
    });
  }

  async removeGroupMember(actor: string, groupId: string, member: Member): Promise<Committed<void>> {
    await this.#requireGroup(groupId);
    await this.deps.authz.require(actor, "manage", { type: "group", id: groupId }, `change members of group ${groupId}`);
    return this.change(async (tx, rels) => {
      const row = await tx.groups.removeMember(groupId, member.kind === "user" ? { userId: member.id } : { groupId: member.id });
      if (!row) throw notFound(`${member.kind} ${member.id} as a member of group ${groupId}`);
      this.#closureChanged(rels, await tx.groups.refreshClosure([groupId], member.kind === "user" ? member.id : undefined));
    });
  }

  async listGroupMembers(groupId: string): Promise<GroupMemberRow[]> {
    await this.#requireGroup(groupId);
    return this.store.read.groups.listMembers(groupId);
  }

  // ---- workspaces --------------------------------------------------------

  async createWorkspace(
    actor: string,
    organizationId: string,
    input: { id?: string | undefined; name: string; parentId?: string | undefined },
  ): Promise<Committed<WorkspaceRow>> {
    await this.#requireOrganization(organizationId);
    await this.deps.authz.require(actor, "manage", org(organizationId), `create workspaces in organization ${organizationId}`);
    const id = input.id || randomUUID();
    return creating(this.deps.writer, `workspace ${id}`, async (tx, rels) => {
      if (await tx.workspaces.get(id)) throw alreadyExists(`workspace ${id} already exists`);
      if (input.parentId) {
        const parent = await tx.workspaces.get(input.parentId);
        if (!parent) throw notFound(`parent workspace ${input.parentId}`);
        if (parent.organization_id !== organizationId) {
          throw refused(
            `parent workspace ${input.parentId} belongs to organization ${parent.organization_id}, not ${organizationId}`,
            "PARENT_IN_OTHER_ORGANIZATION",
          );
        }
      }
      const { workspace: row, ancestors } = await tx.workspaces.insert({ id, organization_id: organizationId, name: input.name, parent_id: input.parentId || null });
      rels.touch(deriveRow("workspaces", row));
      rels.touch(ancestors.flatMap((a) => deriveRow("workspace_ancestors", a)));
      return row;
    });
  }

  async getWorkspace(id: string): Promise<WorkspaceRow> {
    return (await this.store.read.workspaces.get(id)) ?? throwNotFound(`workspace ${id}`);
  }

  async listWorkspaces(organizationId: string, page: Page): Promise<PageOf<WorkspaceRow>> {
    await this.#requireOrganization(organizationId);
    return this.store.read.workspaces.list(organizationId, page);
  }

  /** Removes the workspace, its descendant workspaces and everything in them. */
  async deleteWorkspace(actor: string, id: string): Promise<Committed<void>> {
    const workspace = await this.getWorkspace(id);
    await this.deps.authz.require(actor, "manage", org(workspace.organization_id), `delete workspace ${id}`);
    return this.change(async (tx, rels) => {
      if (!(await tx.workspaces.get(id))) throw notFound(`workspace ${id}`);
      this.#removed(rels, await tx.cascadeDelete("workspaces", [id]));
    });
  }

  setWorkspacePermission(actor: string, workspaceId: string, subject: Member, level: WorkspaceLevelName): Promise<Committed<void>> {
    return this.#setWorkspaceAccess(actor, workspaceId, "level", subject, level);
  }

  removeWorkspacePermission(actor: string, workspaceId: string, subject: Member): Promise<Committed<void>> {
    return this.#removeWorkspaceAccess(actor, workspaceId, "level", subject, "a permission");
  }

  addWorkspaceGuest(actor: string, workspaceId: string, subject: Member): Promise<Committed<void>> {
    return this.#setWorkspaceAccess(actor, workspaceId, "guest", subject, null);
  }

  removeWorkspaceGuest(actor: string, workspaceId: string, subject: Member): Promise<Committed<void>> {
    return this.#removeWorkspaceAccess(actor, workspaceId, "guest", subject, "guest access");
  }

  grantWorkspaceSee(actor: string, workspaceId: string, subject: Member): Promise<Committed<void>> {
    return this.#setWorkspaceAccess(actor, workspaceId, "see", subject, null);
  }

  revokeWorkspaceSee(actor: string, workspaceId: string, subject: Member): Promise<Committed<void>> {
    return this.#removeWorkspaceAccess(actor, workspaceId, "see", subject, "SEE");
  }

  async listWorkspaceAccess(workspaceId: string): Promise<WorkspaceAccessRow[]> {
    await this.getWorkspace(workspaceId);
    return this.store.read.workspaces.listAccess(workspaceId);
  }

  async #setWorkspaceAccess(
    actor: string,
    workspaceId: string,
    kind: "level" | "guest" | "see",
    subject: Member,
    level: WorkspaceLevelName | null,
  ): Promise<Committed<void>> {
    await this.getWorkspace(workspaceId);
    await this.deps.authz.require(actor, "change_permissions", { type: "workspace", id: workspaceId }, `change who may use workspace ${workspaceId}`);
    return this.change(async (tx, rels) => {
      await this.#requireMember(tx, subject);
      const { before, after } = await tx.workspaces.setAccess(workspaceId, kind, accessSubject(subject), level);
      rels.replace(before ? deriveRow("workspace_access", before) : [], deriveRow("workspace_access", after));
    });
  }

  async #removeWorkspaceAccess(
    actor: string,
    workspaceId: string,
    kind: "level" | "guest" | "see",
    subject: Member,
    what: string,
  ): Promise<Committed<void>> {
    await this.getWorkspace(workspaceId);
    await this.deps.authz.require(actor, "change_permissions", { type: "workspace", id: workspaceId }, `change who may use workspace ${workspaceId}`);
    return this.change(async (tx, rels) => {
      const removed = await tx.workspaces.removeAccess(workspaceId, kind, accessSubject(subject));
      if (!removed) throw notFound(`${what} of ${subject.kind} ${subject.id} on workspace ${workspaceId}`);
      rels.delete(deriveRow("workspace_access", removed));
    });
  }

  // ---- entities ----------------------------------------------------------

  async createEntity(actor: string, organizationId: string, input: { id?: string | undefined; name: string }): Promise<Committed<EntityRow>> {
    await this.#requireOrganization(organizationId);
    await this.deps.authz.require(actor, "manage", org(organizationId), `create entities in organization ${organizationId}`);
    const id = input.id || randomUUID();
    return creating(this.deps.writer, `entity ${id}`, async (tx, rels) => {
      if (await tx.entities.get(id)) throw alreadyExists(`entity ${id} already exists`);
      const row = await tx.entities.insert({ id, organization_id: organizationId, name: input.name });
      rels.touch(deriveRow("entities", row));
      return row;
    });
  }

  async listEntities(organizationId: string, page: Page) {
    await this.#requireOrganization(organizationId);
    return this.store.read.entities.list(organizationId, page);
  }

  async deleteEntity(actor: string, id: string): Promise<Committed<void>> {
    await this.#requireEntity(id);
    await this.deps.authz.require(actor, "manage", { type: "entity", id }, `delete entity ${id}`);
    return this.change(async (tx, rels) => {
      if (!(await tx.entities.get(id))) throw notFound(`entity ${id}`);
      this.#removed(rels, await tx.cascadeDelete("entities", [id]));
    });
  }

  /** Entity members must belong to the entity's organization. */
  async addEntityMember(actor: string, entityId: string, userId: string): Promise<Committed<void>> {
    const entity = await this.#requireEntity(entityId);
    await this.deps.authz.require(actor, "manage", { type: "entity", id: entityId }, `change members of entity ${entityId}`);
    return this.change(async (tx, rels) => {
      await this.#requireUsers(tx, [userId]);
      if (!(await tx.organizations.getMember(entity.organization_id, userId))) {
        throw refused(
          `user ${userId} is not a member of organization ${entity.organization_id}, which entity ${entityId} belongs to`,
          "NOT_AN_ORGANIZATION_MEMBER",
        );
      }
      const row = await tx.entities.addMember(entityId, userId);
      if (row) rels.touch(deriveRow("entity_members", row));
    });
  }

  async removeEntityMember(actor: string, entityId: string, userId: string): Promise<Committed<void>> {
    await this.#requireEntity(entityId);
    await this.deps.authz.require(actor, "manage", { type: "entity", id: entityId }, `change members of entity ${entityId}`);
    return this.change(async (tx, rels) => {
      const row = await tx.entities.removeMember(entityId, userId);
      if (!row) throw notFound(`user ${userId} as a member of entity ${entityId}`);
      rels.delete(deriveRow("entity_members", row));
    });
  }

  async listEntityMembers(entityId: string, page: Page): Promise<PageOf<UserRow>> {
    await this.#requireEntity(entityId);
    return this.store.read.entities.listMembers(entityId, page);
  }

  // ---- helpers -----------------------------------------------------------

  /** Group membership reaches the index as its closure (graph.ts): what the refresh removed, then what it added. */
  #closureChanged(rels: RelationshipChanges, change: ClosureChange): void {
    rels.delete(change.removed.flatMap((r) => deriveRow("group_closure", r)));
    rels.touch(change.added.flatMap((r) => deriveRow("group_closure", r)));
  }

  #removed(rels: RelationshipChanges, result: Awaited<ReturnType<Repositories["cascadeDelete"]>>): void {
    rels.delete(deriveRemoved(result.removed));
    const changed = deriveChanged(result.changed);
    rels.replace(changed.before, changed.after);
  }

  async #requireOrganization(id: string): Promise<OrganizationRow> {
    return (await this.store.read.organizations.get(id)) ?? throwNotFound(`organization ${id}`);
  }

  async #requireGroup(id: string): Promise<GroupRow> {
    return (await this.store.read.groups.get(id)) ?? throwNotFound(`group ${id}`);
  }

  async #requireEntity(id: string): Promise<EntityRow> {
    return (await this.store.read.entities.get(id)) ?? throwNotFound(`entity ${id}`);
  }

  async #requireUsers(tx: Repositories, ids: readonly string[]): Promise<void> {
    const found = new Set((await tx.users.getMany(ids)).map((u) => u.id));
    const missing = ids.find((id) => !found.has(id));
    if (missing !== undefined) throw notFound(`user ${missing}`);
  }

  async #requireMember(tx: Repositories, member: Member): Promise<void> {
    if (member.kind === "user") await this.#requireUsers(tx, [member.id]);
    else if (!(await tx.groups.get(member.id))) throw notFound(`group ${member.id}`);
  }

  /** An organization keeps at least one admin: someone must be able to manage it. */
  async #keepAnAdmin(tx: Repositories, organizationId: string, leaving: string): Promise<void> {
    if ((await tx.organizations.adminCount(organizationId, leaving)) === 0) {
      throw refused(
        `user ${leaving} is the last admin of organization ${organizationId}; make another member admin first`,
        "LAST_ADMIN",
      );
    }
  }


}

function accessSubject(member: Member) {
  return member.kind === "user" ? { userId: member.id } : { groupId: member.id };
}

function throwNotFound(what: string): never {
  throw notFound(what);
}
