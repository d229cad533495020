import type { ServiceImpl } from "@connectrpc/connect";
import type { Directory } from "../domain/directory.js";
import { invalid } from "../domain/errors.js";
import { optionalId, requireId, requireName } from "../domain/ids.js";
import type { WorkspaceLevelName } from "../store/database.js";
import type { EntityRow } from "../store/entities.js";
import type { GroupRow } from "../store/groups.js";
import type { OrganizationRow } from "../store/organizations.js";
import type { UserRow } from "../store/users.js";
import type { WorkspaceRow } from "../store/workspaces.js";
import type { DirectoryService} from "../gen/sharegraph/v1/directory_service_pb.js";
import { WorkspaceLevel } from "../gen/sharegraph/v1/directory_service_pb.js";
import { actor, member, memberRef, nextPageToken, page, timestamp } from "./parse.js";

const LEVELS: Record<number, WorkspaceLevelName | undefined> = {
  [WorkspaceLevel.VIEW]: "view",
  [WorkspaceLevel.ANALYZE]: "analyze",
  [WorkspaceLevel.MANAGE]: "manage",
};
const LEVEL_ENUM: Record<WorkspaceLevelName, WorkspaceLevel> = {
  view: WorkspaceLevel.VIEW,
  analyze: WorkspaceLevel.ANALYZE,
  manage: WorkspaceLevel.MANAGE,
};

export const toUser = (u: Pick<UserRow, "id" | "email" | "display_name" | "created_at">) => ({
  id: u.id,
  email: u.email,
  displayName: u.display_name,
  createdAt: timestamp(u.created_at),
});

const toOrganization = (o: OrganizationRow & { member_count?: number }) => ({
  id: o.id,
  name: o.name,
  channelPartner: o.channel_partner,
  memberCount: o.member_count ?? 0,
  createdAt: timestamp(o.created_at),
});

const toGroup = (g: GroupRow) => ({ id: g.id, organizationId: g.organization_id, name: g.name });

const toWorkspace = (w: WorkspaceRow) => ({
  id: w.id,
  organizationId: w.organization_id,
  name: w.name,
  parentWorkspaceId: w.parent_id ?? "",
});

const toEntity = (e: EntityRow & { member_count?: number }) => ({
  id: e.id,
  organizationId: e.organization_id,
  name: e.name,
  memberCount: e.member_count ?? 0,
});

/** Optional, unlike other names. */
function displayName(value: string): string {
  const name = value.trim();
  if (name.length > 200) throw invalid("display_name", "at most 200 characters");
  return name;
}

function level(value: WorkspaceLevel): WorkspaceLevelName {
  const name = LEVELS[value];
  if (!name) throw invalid("level", "one of WORKSPACE_LEVEL_VIEW, WORKSPACE_LEVEL_ANALYZE, WORKSPACE_LEVEL_MANAGE is required");
  return name;
}

export function directoryService(directory: Directory, maxPageSize: number): ServiceImpl<typeof DirectoryService> {
  const token = (c: { token: string }) => ({ consistencyToken: c.token });
  return {
    // users
    async createUser(req) {
      const c = await directory.createUser(actor(req.actor), {
        id: optionalId("user_id", req.userId),
        email: req.email,
        displayName: displayName(req.displayName),
      });
      return { user: toUser(c.value), ...token(c) };
    },
    async getUser(req) {
      return { user: toUser(await directory.getUser(requireId("user_id", req.userId))) };
    },
    async listUsers(req) {
      const result = await directory.listUsers(req.query.trim(), page(req.page, maxPageSize));
      return { users: result.items.map(toUser), nextPageToken: nextPageToken(result.next) };
    },
    async deleteUser(req) {
      return token(await directory.deleteUser(actor(req.actor), requireId("user_id", req.userId)));
    },

    // organizations
    async createOrganization(req) {
      const c = await directory.createOrganization(actor(req.actor), {
        id: optionalId("organization_id", req.organizationId),
        name: requireName("name", req.name),
        channelPartner: req.channelPartner,
        adminUserIds: req.adminUserIds.map((id, i) => requireId(`admin_user_ids[${i}]`, id)),
      });
      return { organization: toOrganization(c.value), ...token(c) };
    },
    async getOrganization(req) {
      return { organization: toOrganization(await directory.getOrganization(requireId("organization_id", req.organizationId))) };
    },
    async listOrganizations(req) {
      const result = await directory.listOrganizations(
        { query: req.query.trim(), channelPartnersOnly: req.channelPartnersOnly },
        page(req.page, maxPageSize),
      );
      return { organizations: result.items.map(toOrganization), nextPageToken: nextPageToken(result.next) };
    },
    async setChannelPartner(req) {
      const c = await directory.setChannelPartner(actor(req.actor), requireId("organization_id", req.organizationId), req.channelPartner);
      return { organization: toOrganization(c.value), ...token(c) };
    },
    async deleteOrganization(req) {
      return token(await directory.deleteOrganization(actor(req.actor), requireId("organization_id", req.organizationId)));
    },
    async addOrganizationMember(req) {
      const c = await directory.addOrganizationMember(
        actor(req.actor),
        requireId("organization_id", req.organizationId),
        { userId: optionalId("user_id", req.userId), email: req.email.trim() || undefined, displayName: displayName(req.displayName) },
        req.admin,
      );
      const user = await directory.getUser(c.value.user_id);
      return { member: { user: toUser(user), admin: c.value.admin }, ...token(c) };
    },
    async removeOrganizationMember(req) {
      return token(
        await directory.removeOrganizationMember(actor(req.actor), requireId("organization_id", req.organizationId), requireId("user_id", req.userId)),
      );
    },
    async listOrganizationMembers(req) {
      const result = await directory.listOrganizationMembers(requireId("organization_id", req.organizationId), page(req.page, maxPageSize));
      return {
        members: result.items.map((m) => ({
          user: toUser({ id: m.user_id, email: m.email, display_name: m.display_name, created_at: m.user_created_at }),
          admin: m.admin,
        })),
        nextPageToken: nextPageToken(result.next),
      };
    },

    // groups
    async createGroup(req) {
      const c = await directory.createGroup(actor(req.actor), requireId("organization_id", req.organizationId), {
        id: optionalId("group_id", req.groupId),
        name: requireName("name", req.name),
      });
      return { group: toGroup(c.value), ...token(c) };
    },
    async listGroups(req) {
      const result = await directory.listGroups(requireId("organization_id", req.organizationId), page(req.page, maxPageSize));
      return { groups: result.items.map(toGroup), nextPageToken: nextPageToken(result.next) };
    },
    async deleteGroup(req) {
      return token(await directory.deleteGroup(actor(req.actor), requireId("group_id", req.groupId)));
    },
    async addGroupMember(req) {
      return token(await directory.addGroupMember(actor(req.actor), requireId("group_id", req.groupId), member("member", req.member)));
    },
    async removeGroupMember(req) {
      return token(await directory.removeGroupMember(actor(req.actor), requireId("group_id", req.groupId), member("member", req.member)));
    },
    async listGroupMembers(req) {
      const rows = await directory.listGroupMembers(requireId("group_id", req.groupId));
      return {
        members: rows.map((r) => memberRef(r.user_id !== null ? { kind: "user", id: r.user_id } : { kind: "group", id: r.member_group_id ?? "" })),
      };
    },

    // workspaces
    async createWorkspace(req) {
      const c = await directory.createWorkspace(actor(req.actor), requireId("organization_id", req.organizationId), {
        id: optionalId("workspace_id", req.workspaceId),
        name: requireName("name", req.name),
        parentId: optionalId("parent_workspace_id", req.parentWorkspaceId),
      });
      return { workspace: toWorkspace(c.value), ...token(c) };
    },
    async getWorkspace(req) {
      return { workspace: toWorkspace(await directory.getWorkspace(requireId("workspace_id", req.workspaceId))) };
    },
    async listWorkspaces(req) {
      const result = await directory.listWorkspaces(requireId("organization_id", req.organizationId), page(req.page, maxPageSize));
      return { workspaces: result.items.map(toWorkspace), nextPageToken: nextPageToken(result.next) };
    },
    async deleteWorkspace(req) {
      return token(await directory.deleteWorkspace(actor(req.actor), requireId("workspace_id", req.workspaceId)));
    },
    async setWorkspacePermission(req) {
      return token(
        await directory.setWorkspacePermission(
          actor(req.actor),
          requireId("workspace_id", req.workspaceId),
          member("subject", req.subject),
          level(req.level),
        ),
      );
    },
    async removeWorkspacePermission(req) {
      return token(
        await directory.removeWorkspacePermission(actor(req.actor), requireId("workspace_id", req.workspaceId), member("subject", req.subject)),
      );
    },
    async addWorkspaceGuest(req) {
      return token(await directory.addWorkspaceGuest(actor(req.actor), requireId("workspace_id", req.workspaceId), member("subject", req.subject)));
    },
    async removeWorkspaceGuest(req) {
      return token(
        await directory.removeWorkspaceGuest(actor(req.actor), requireId("workspace_id", req.workspaceId), member("subject", req.subject)),
      );
    },
    async grantWorkspaceSee(req) {
      return token(await directory.grantWorkspaceSee(actor(req.actor), requireId("workspace_id", req.workspaceId), member("subject", req.subject)));
    },
    async revokeWorkspaceSee(req) {
      return token(await directory.revokeWorkspaceSee(actor(req.actor), requireId("workspace_id", req.workspaceId), member("subject", req.subject)));
    },
    async listWorkspacePermissions(req) {
      const rows = await directory.listWorkspaceAccess(requireId("workspace_id", req.workspaceId));
      const subject = (r: (typeof rows)[number]) =>
        memberRef(r.user_id !== null ? { kind: "user", id: r.user_id } : { kind: "group", id: r.group_id ?? "" });
      return {
        permissions: rows
          .filter((r) => r.kind === "level" && r.level)
          .map((r) => ({ subject: subject(r), level: LEVEL_ENUM[r.level as WorkspaceLevelName] })),
        guests: rows.filter((r) => r.kind === "guest").map(subject),
        see: rows.filter((r) => r.kind === "see").map(subject),
      };
    },

    // entities
    async createEntity(req) {
      const c = await directory.createEntity(actor(req.actor), requireId("organization_id", req.organizationId), {
        id: optionalId("entity_id", req.entityId),
        name: requireName("name", req.name),
      });
      return { entity: toEntity(c.value), ...token(c) };
    },
    async listEntities(req) {
      const result = await directory.listEntities(requireId("organization_id", req.organizationId), page(req.page, maxPageSize));
      return { entities: result.items.map(toEntity), nextPageToken: nextPageToken(result.next) };
    },
    async deleteEntity(req) {
      return token(await directory.deleteEntity(actor(req.actor), requireId("entity_id", req.entityId)));
    },
    async addEntityMember(req) {
      return token(await directory.addEntityMember(actor(req.actor), requireId("entity_id", req.entityId), requireId("user_id", req.userId)));
    },
    async removeEntityMember(req) {
      return token(await directory.removeEntityMember(actor(req.actor), requireId("entity_id", req.entityId), requireId("user_id", req.userId)));
    },
    async listEntityMembers(req) {
      const result = await directory.listEntityMembers(requireId("entity_id", req.entityId), page(req.page, maxPageSize));
      return { users: result.items.map(toUser), nextPageToken: nextPageToken(result.next) };
    },
  };
}
