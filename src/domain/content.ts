import { randomUUID } from "node:crypto";
import type { Engine, ObjectRef } from "../engine/engine.js";
import type { ContentRow, FolderRow } from "../store/content.js";
import type { ContentKind } from "../store/database.js";
import type { Repositories, Store } from "../store/store.js";
import type { ConsistencyTokens, Freshness } from "../sync/consistency.js";
import type { ChangeWriter, Committed } from "../sync/writer.js";
import type { Authorizer } from "./authorizer.js";
import { creating } from "./creating.js";
import { alreadyExists, denied, notFound, refused } from "./errors.js";
import { deriveChanged, deriveRemoved, deriveRow } from "./graph.js";
import { isContentKind } from "./roles.js";

/** A folder or a content item, resolved from its ObjectRef. */
export type Item = { readonly kind: "folder"; readonly row: FolderRow } | { readonly kind: "content"; readonly row: ContentRow };

export function itemRef(item: Item): ObjectRef {
  return item.kind === "folder" ? { type: "folder", id: item.row.id } : { type: item.row.kind, id: item.row.id };
}

export function describe(item: Item): string {
  return `${item.kind === "folder" ? "folder" : item.row.kind} ${item.row.id} ("${item.row.name}")`;
}

export interface FolderListing {
  readonly path: ReadonlyArray<{ id: string; name: string; canOpen: boolean }>;
  readonly folders: ReadonlyArray<{ row: FolderRow; canOpen: boolean }>;
  readonly items: readonly ContentRow[];
  readonly token: string;
}

export interface ContentDeps {
  readonly store: Store;
  readonly engine: Engine;
  readonly writer: ChangeWriter;
  readonly authz: Authorizer;
  readonly tokens: ConsistencyTokens;
}

/** Folders and content: create, move, delete, browse (R3, R4). */
export class ContentCatalog {
  constructor(private readonly deps: ContentDeps) {}

  /** Resolves a folder or content ref; NOT_FOUND names what was asked for. */
  async resolve(ref: ObjectRef, tx: Repositories = this.deps.store.read): Promise<Item> {
    if (ref.type === "folder") {
      const row = await tx.folders.get(ref.id);
      if (!row) throw notFound(`folder ${ref.id}`);
      return { kind: "folder", row };
    }
    if (!isContentKind(ref.type)) throw notFound(`${ref.type} ${ref.id}`);
    const row = await tx.content.get(ref.id);
    if (!row || row.kind !== ref.type) {
      throw notFound(`${ref.type} ${ref.id}${row ? ` (${ref.id} is a ${row.kind})` : ""}`);
    }
    return { kind: "content", row };
  }

  async createFolder(
    actor: string,
    input: { workspaceId: string; id?: string | undefined; name: string; parentId?: string | undefined },
  ): Promise<Committed<FolderRow>> {
    await this.#requireCreate(actor, input.workspaceId, input.parentId, "create folders");
    const id = input.id || randomUUID();
    return creating(this.deps.writer, `folder ${id}`, async (tx, rels) => {
      if (await tx.folders.get(id)) throw alreadyExists(`folder ${id} already exists`);
      await this.#requireParent(tx, input.workspaceId, input.parentId);
      const { folder: row, ancestors } = await tx.folders.insert({
        id,
        workspace_id: input.workspaceId,
        parent_id: input.parentId ?? null,
        name: input.name,
        created_by: actor,
      });
      rels.touch(deriveRow("folders", row));
      rels.touch(ancestors.flatMap((a) => deriveRow("folder_ancestors", a)));
      const { after } = await tx.grants.upsert({ folderId: id }, { userId: actor }, "manager", actor);
      rels.touch(deriveRow("grants", after));
      return row;
    });
  }

  /** R4: the creator becomes the only grant holder (manager); inheritance still applies in a shared folder. */
  async createContent(
    actor: string,
    input: { kind: ContentKind; workspaceId: string; id?: string | undefined; name: string; folderId?: string | undefined },
  ): Promise<Committed<ContentRow>> {
    await this.#requireCreate(actor, input.workspaceId, input.folderId, `create ${input.kind}s`);
    const id = input.id || randomUUID();
    return creating(this.deps.writer, `content ${id}`, async (tx, rels) => {
      const existing = await tx.content.get(id);
      if (existing) throw alreadyExists(`content ${id} already exists (a ${existing.kind})`);
      await this.#requireParent(tx, input.workspaceId, input.folderId);
      const row = await tx.content.insert({
        id,
        kind: input.kind,
        workspace_id: input.workspaceId,
        folder_id: input.folderId ?? null,
        name: input.name,
        created_by: actor,
      });
      rels.touch(deriveRow("content", row));
      const { after } = await tx.grants.upsert({ contentId: id, kind: input.kind }, { userId: actor }, "manager", actor);
      rels.touch(deriveRow("grants", after));
      return row;
    });
  }

  /**
   * Moves within the workspace. Needs edit on the item and on the
   * destination (ANALYZE on the workspace for its root). Effective roles
   * follow the new parent at once: nothing else is re-evaluated.
   */
  async move(actor: string, ref: ObjectRef, destinationId: string | undefined): Promise<Committed<void>> {
    const item = await this.resolve(ref);
    await this.deps.authz.require(actor, "edit", itemRef(item), `move ${describe(item)}`);
    await this.#requireCreate(actor, item.row.workspace_id, destinationId, `move items into ${destinationId ? `folder ${destinationId}` : "the workspace root"}`);
    return this.deps.writer.change(async (tx, rels) => {
      const current = await this.resolve(ref, tx);
      await this.#requireParent(tx, current.row.workspace_id, destinationId);
      if (current.kind === "folder") {
        if (destinationId && (await tx.folders.ancestry(destinationId)).some((f) => f.id === current.row.id)) {
          throw refused(`folder ${current.row.id} cannot move into itself or one of its subfolders (${destinationId})`, "FOLDER_CYCLE");
        }
        const moved = await tx.folders.setParent(current.row.id, destinationId ?? null);
        if (moved) {
          rels.replace(deriveRow("folders", moved.before), deriveRow("folders", moved.after));
          rels.replace(
            moved.removed.flatMap((a) => deriveRow("folder_ancestors", a)),
            moved.added.flatMap((a) => deriveRow("folder_ancestors", a)),
          );
        }
      } else {
        const after = await tx.content.setFolder(current.row.id, destinationId ?? null);
        if (after) rels.replace(deriveRow("content", current.row), deriveRow("content", after));
      }
    });
  }

  /** Content, or a folder with everything inside it. Needs delete (manager, or the creator with edit). */
  async delete(actor: string, ref: ObjectRef): Promise<Committed<void>> {
    const item = await this.resolve(ref);
    await this.deps.authz.require(actor, "delete", itemRef(item), `delete ${describe(item)}`);
    return this.deps.writer.change(async (tx, rels) => {
      const current = await this.resolve(ref, tx);
      const result = await tx.cascadeDelete(current.kind === "folder" ? "folders" : "content", [current.row.id]);
      rels.delete(deriveRemoved(result.removed));
      const changed = deriveChanged(result.changed);
      rels.replace(changed.before, changed.after);
    });
  }

  /**
   * R3: what a user sees in a folder (or at the workspace root): subfolders
   * with anything viewable inside (name only unless the folder itself is
   * viewable) and the content they can view. One bulk check answers for all
   * children; the path of folder names down to a visible folder is shown.
   */
  async listFolder(userId: string, workspaceId: string, folderId: string | undefined, freshness: Freshness): Promise<FolderListing> {
    const store = this.deps.store.read;
    if (!(await store.users.get(userId))) throw notFound(`user ${userId}`);
    if (!(await store.workspaces.get(workspaceId))) throw notFound(`workspace ${workspaceId}`);
    let path: FolderRow[] = [];
    if (folderId) {
      const folder = await store.folders.get(folderId);
      if (!folder || folder.workspace_id !== workspaceId) throw notFound(`folder ${folderId} in workspace ${workspaceId}`);
      path = (await store.folders.ancestry(folderId)).reverse();
    }
    const [folders, items] = await Promise.all([
      store.folders.children(workspaceId, folderId ?? null),
      store.content.children(workspaceId, folderId ?? null),
    ]);
    const subject = { type: "user", id: userId };
    const checks = [
      ...(folderId ? [{ resource: { type: "folder", id: folderId }, permission: "see_name", subject }] : []),
      ...path.map((f) => ({ resource: { type: "folder", id: f.id }, permission: "view", subject })),
      ...folders.flatMap((f) => [
        { resource: { type: "folder", id: f.id }, permission: "see_name", subject },
        { resource: { type: "folder", id: f.id }, permission: "view", subject },
      ]),
      ...items.map((c) => ({ resource: { type: c.kind, id: c.id }, permission: "view", subject })),
    ];
    const consistency = await this.deps.tokens.resolve(freshness);
    const answers: boolean[] = [];
    let zed = "";
    for (let i = 0; i < checks.length; i += 1000) {
      const result = await this.deps.engine.checkBulk(checks.slice(i, i + 1000), consistency);
      answers.push(...result.results.map((r) => r.allowed));
      zed = result.token;
    }
    let at = 0;
    if (folderId && !answers[at++]) {
      // Not even the name is visible: do not reveal that the folder exists.
      throw notFound(`folder ${folderId} in workspace ${workspaceId}`);
    }
    const pathEntries = path.map((f) => ({ id: f.id, name: f.name, canOpen: Boolean(answers[at++]) }));
    const visibleFolders: Array<{ row: FolderRow; canOpen: boolean }> = [];
    for (const row of folders) {
      const seeName = answers[at++];
      const view = answers[at++];
      if (seeName) visibleFolders.push({ row, canOpen: Boolean(view) });
    }
    const visibleItems = items.filter(() => answers[at++]);
    return {
      path: pathEntries,
      folders: visibleFolders,
      items: visibleItems,
      token: this.deps.tokens.forRead(zed),
    };
  }

  /** R4: content whose only grant holder — direct or through folders — is this user. */
  async listPrivate(userId: string, workspaceId: string | undefined): Promise<ContentRow[]> {
    const store = this.deps.store.read;
    if (!(await store.users.get(userId))) throw notFound(`user ${userId}`);
    if (workspaceId && !(await store.workspaces.get(workspaceId))) throw notFound(`workspace ${workspaceId}`);
    return store.content.privateTo(userId, workspaceId);
  }

  async getFolder(id: string): Promise<FolderRow> {
    const row = await this.deps.store.read.folders.get(id);
    if (!row) throw notFound(`folder ${id}`);
    return row;
  }

  async getContent(ref: ObjectRef): Promise<ContentRow> {
    const item = await this.resolve(ref);
    if (item.kind !== "content") throw notFound(`${ref.type} ${ref.id}`);
    return item.row;
  }

  /** Creating in a workspace root needs ANALYZE there; in a folder, edit on the folder. */
  async #requireCreate(actor: string, workspaceId: string, folderId: string | undefined, action: string): Promise<void> {
    if (!(await this.deps.store.read.workspaces.get(workspaceId))) throw notFound(`workspace ${workspaceId}`);
    if (folderId) {
      const folder = await this.deps.store.read.folders.get(folderId);
      if (!folder) throw notFound(`folder ${folderId}`);
      if (!(await this.deps.authz.can(actor, "edit", { type: "folder", id: folderId }))) {
        throw denied(`user ${actor} may not ${action}: that needs edit on folder ${folderId} (editor role and ANALYZE on workspace ${folder.workspace_id})`);
      }
      return;
    }
    await this.deps.authz.require(actor, "create_content", { type: "workspace", id: workspaceId }, `${action} in workspace ${workspaceId}`);
  }

  async #requireParent(tx: Repositories, workspaceId: string, folderId: string | undefined): Promise<void> {
    if (!folderId) return;
    const folder = await tx.folders.get(folderId);
    if (!folder) throw notFound(`folder ${folderId}`);
    if (folder.workspace_id !== workspaceId) {
      throw refused(`folder ${folderId} is in workspace ${folder.workspace_id}, not ${workspaceId}`, "FOLDER_IN_OTHER_WORKSPACE");
    }
  }


}
