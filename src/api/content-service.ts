import type { ServiceImpl } from "@connectrpc/connect";
import type { ContentCatalog } from "../domain/content.js";
import { invalid } from "../domain/errors.js";
import { optionalId, requireId, requireName } from "../domain/ids.js";
import { isContentKind } from "../domain/roles.js";
import { granteeOf, type Grantee, type ShareEntry, type ShareSourceKind, type Sharing } from "../domain/sharing.js";
import type { ObjectRef as DomainRef } from "../engine/engine.js";
import type { ContentRow, FolderRow } from "../store/content.js";
import type { RoleName } from "../store/database.js";
import type { GrantRow } from "../store/grants.js";
import { Role, type ObjectRef, type SubjectRef } from "../gen/sharegraph/v1/common_pb.js";
import { type ContentService, ShareSource } from "../gen/sharegraph/v1/content_service_pb.js";
import { actor, freshness, timestamp } from "./parse.js";

const ROLE_NAMES: Record<number, RoleName | undefined> = {
  [Role.VIEWER]: "viewer",
  [Role.SHARER]: "sharer",
  [Role.EDITOR]: "editor",
  [Role.MANAGER]: "manager",
};
export const ROLE_ENUM: Record<RoleName, Role> = {
  viewer: Role.VIEWER,
  sharer: Role.SHARER,
  editor: Role.EDITOR,
  manager: Role.MANAGER,
};
const SOURCE_ENUM: Record<ShareSourceKind, ShareSource> = {
  direct: ShareSource.DIRECT,
  folder: ShareSource.FOLDER,
  workspace: ShareSource.WORKSPACE,
  partner: ShareSource.PARTNER,
};

function role(field: string, value: Role): RoleName {
  const name = ROLE_NAMES[value];
  if (!name) throw invalid(field, "one of ROLE_VIEWER, ROLE_SHARER, ROLE_EDITOR, ROLE_MANAGER is required");
  return name;
}

/** A folder or content item. */
function item(field: string, ref: ObjectRef | undefined): DomainRef {
  if (!ref) throw invalid(field, "is required");
  if (ref.type !== "folder" && !isContentKind(ref.type)) {
    throw invalid(`${field}.type`, `expected folder, report, board, dashboard or workbook, got ${JSON.stringify(ref.type)}`);
  }
  return { type: ref.type, id: requireId(`${field}.id`, ref.id) };
}

export function grantee(field: string, ref: SubjectRef | undefined): Grantee {
  if (!ref) throw invalid(field, "is required");
  const id = requireId(`${field}.id`, ref.id);
  if (ref.type === "user") {
    if (ref.relation) throw invalid(`${field}.relation`, "a user subject has no relation");
    return { kind: "user", id };
  }
  if (ref.type === "group" || ref.type === "organization") {
    if (ref.relation && ref.relation !== "member") throw invalid(`${field}.relation`, `a ${ref.type} stands for its "member"s; omit relation or use "member"`);
    return { kind: ref.type, id };
  }
  throw invalid(`${field}.type`, `expected user, group or organization, got ${JSON.stringify(ref.type)}`);
}

export function granteeRef(g: Grantee) {
  return { type: g.kind, id: g.id, relation: g.kind === "user" ? "" : "member" };
}

export const toFolder = (f: FolderRow) => ({
  id: f.id,
  workspaceId: f.workspace_id,
  parentFolderId: f.parent_id ?? "",
  name: f.name,
  createdBy: f.created_by ?? "",
  createdAt: timestamp(f.created_at),
});

export const toContent = (c: ContentRow) => ({
  ref: { type: c.kind, id: c.id },
  workspaceId: c.workspace_id,
  folderId: c.folder_id ?? "",
  name: c.name,
  createdBy: c.created_by ?? "",
  createdAt: timestamp(c.created_at),
});

const toGrant = (g: GrantRow) => ({
  resource: { type: g.resource_type, id: g.folder_id ?? g.content_id ?? "" },
  subject: granteeRef(granteeOf(g)),
  role: ROLE_ENUM[g.role],
  grantedBy: g.granted_by ?? "",
  createdAt: timestamp(g.created_at),
});

const toShare = (s: ShareEntry) => ({
  subject: granteeRef(s.grantee),
  role: ROLE_ENUM[s.role],
  source: SOURCE_ENUM[s.source],
  sourceObject: s.sourceObject,
  sourceName: s.sourceName,
  grantedBy: s.grantedBy ?? "",
});

export function contentService(catalog: ContentCatalog, sharing: Sharing): ServiceImpl<typeof ContentService> {
  return {
    async createFolder(req) {
      const c = await catalog.createFolder(actor(req.actor), {
        workspaceId: requireId("workspace_id", req.workspaceId),
        id: optionalId("folder_id", req.folderId),
        name: requireName("name", req.name),
        parentId: optionalId("parent_folder_id", req.parentFolderId),
      });
      return { folder: toFolder(c.value), consistencyToken: c.token };
    },
    async createContent(req) {
      if (!isContentKind(req.kind)) throw invalid("kind", `expected report, board, dashboard or workbook, got ${JSON.stringify(req.kind)}`);
      const c = await catalog.createContent(actor(req.actor), {
        kind: req.kind,
        workspaceId: requireId("workspace_id", req.workspaceId),
        id: optionalId("content_id", req.contentId),
        name: requireName("name", req.name),
        folderId: optionalId("folder_id", req.folderId),
      });
      return { content: toContent(c.value), consistencyToken: c.token };
    },
    async getContent(req) {
      const ref = item("ref", req.ref);
      if (ref.type === "folder") throw invalid("ref.type", "use GetFolder for folders");
      return { content: toContent(await catalog.getContent(ref)) };
    },
    async getFolder(req) {
      return { folder: toFolder(await catalog.getFolder(requireId("folder_id", req.folderId))) };
    },
    async move(req) {
      const c = await catalog.move(actor(req.actor), item("item", req.item), optionalId("destination_folder_id", req.destinationFolderId));
      return { consistencyToken: c.token };
    },
    async delete(req) {
      const c = await catalog.delete(actor(req.actor), item("item", req.item));
      return { consistencyToken: c.token };
    },
    async share(req) {
      const c = await sharing.share(actor(req.actor), item("resource", req.resource), grantee("subject", req.subject), role("role", req.role));
      return { ...(c.value.grant ? { grant: toGrant(c.value.grant) } : {}), noOp: c.value.noOp, consistencyToken: c.token };
    },
    async unshare(req) {
      const c = await sharing.unshare(actor(req.actor), item("resource", req.resource), grantee("subject", req.subject));
      return { consistencyToken: c.token };
    },
    async listShares(req) {
      return { shares: (await sharing.listShares(item("resource", req.resource))).map(toShare) };
    },
    async setOrganizationDefaultRole(req) {
      const requested = req.role === Role.UNSPECIFIED ? undefined : role("role", req.role);
      const c = await sharing.setOrganizationDefaultRole(actor(req.actor), item("resource", req.resource), requested);
      return { noOp: c.value.noOp, consistencyToken: c.token };
    },
    async listFolder(req) {
      const listing = await catalog.listFolder(
        requireId("user_id", req.userId),
        requireId("workspace_id", req.workspaceId),
        optionalId("folder_id", req.folderId),
        freshness(req.consistency),
      );
      return {
        path: listing.path.map((p) => ({ id: p.id, name: p.name, canOpen: p.canOpen })),
        folders: listing.folders.map((f) => ({ id: f.row.id, name: f.row.name, canOpen: f.canOpen })),
        items: listing.items.map(toContent),
        consistencyToken: listing.token,
      };
    },
    async listPrivateContent(req) {
      const rows = await catalog.listPrivate(requireId("user_id", req.userId), optionalId("workspace_id", req.workspaceId));
      return { items: rows.map(toContent) };
    },
  };
}
