import type { CheckItem, Consistency, Engine, ObjectRef, SubjectRef } from "../engine/engine.js";
import type { FolderRow } from "../store/content.js";
import type { RoleName } from "../store/database.js";
import type { GrantResource, GrantRow, GrantSubject } from "../store/grants.js";
import type { SharingAnswers, SharingQuestion } from "../store/sharing-questions.js";
import type { Store } from "../store/store.js";
import type { WorkspaceRow } from "../store/workspaces.js";
import type { ConsistencyTokens } from "../sync/consistency.js";
import type { ChangeWriter, Committed } from "../sync/writer.js";
import { describe, itemRef, type ContentCatalog, type Item } from "./content.js";
import { denied, notFound, refused } from "./errors.js";
import { deriveRow } from "./graph.js";
import { DIRECT_PERMISSION, GRANTED_PERMISSION, ROLES, rank, shareCeiling } from "./roles.js";

/** Who a role is granted to: a user, a group (its members), or an organization (all its members). */
export type Grantee =
  | { readonly kind: "user"; readonly id: string }
  | { readonly kind: "group"; readonly id: string }
  | { readonly kind: "organization"; readonly id: string };

export type ShareSourceKind = "direct" | "folder" | "workspace" | "partner";

export interface ShareEntry {
  readonly grantee: Grantee;
  readonly role: RoleName;
  readonly source: ShareSourceKind;
  readonly sourceObject: ObjectRef;
  readonly sourceName: string;
  readonly grantedBy: string | null;
}

export interface ShareOutcome {
  readonly grant: GrantRow | undefined;
  readonly noOp: boolean;
}

/**
 * The Share dialog's questions answered from Postgres
 * (src/store/sharing-questions.ts): WRITE_CHECKS_FROM=postgres. Absent,
 * SpiceDB answers them.
 */
export interface SharingIndex {
  ask(question: SharingQuestion): Promise<SharingAnswers>;
}

export interface SharingDeps {
  readonly store: Store;
  readonly engine: Engine;
  readonly writer: ChangeWriter;
  readonly tokens: ConsistencyTokens;
  readonly catalog: ContentCatalog;
  readonly index?: SharingIndex | undefined;
}


export function granteeSubject(g: Grantee): SubjectRef {
  return g.kind === "user" ? { type: "user", id: g.id } : { type: g.kind, id: g.id, relation: "member" };
}

function grantSubject(g: Grantee): GrantSubject {
  if (g.kind === "user") return { userId: g.id };
  if (g.kind === "group") return { groupId: g.id };
  return { organizationId: g.id };
}

function grantResource(item: Item): GrantResource {
  return item.kind === "folder" ? { folderId: item.row.id } : { contentId: item.row.id, kind: item.row.kind };
}

export function granteeOf(row: Pick<GrantRow, "user_id" | "group_id" | "organization_id">): Grantee {
  if (row.user_id !== null) return { kind: "user", id: row.user_id };
  if (row.group_id !== null) return { kind: "group", id: row.group_id };
  return { kind: "organization", id: row.organization_id ?? "" };
}

const who = (g: Grantee) => `${g.kind} ${g.id}`;

/**
 * The Share dialog (R1, R2, R5, R6, R40): granting, changing and removing
 * roles on folders and content, and listing who has access and why.
 */
export class Sharing {
  constructor(private readonly deps: SharingDeps) {}

  /** Sets the grantee's direct role on the item. */
  async share(actor: string, ref: ObjectRef, grantee: Grantee, role: RoleName): Promise<Committed<ShareOutcome>> {
    const { store } = this.deps;
    const item = await this.deps.catalog.resolve(ref);
    await this.#requireGrantee(grantee);
    const workspace = await this.#workspace(item);
    // Every question about the actor, the grantee's eligibility and what it inherits, at one
    // snapshot (in one or two rounds, see #ask); the rules below judge the answers in their own order.
    const answers = await this.#ask({ actor, item }, grantee.kind === "organization" ? undefined : { grantee, workspace, native: needsNative(role) }, { item, grantee });
    const can = answers.actorCan!;
    const ceiling = shareCeiling(can);
    if (!ceiling) {
      throw denied(`user ${actor} may not share ${describe(item)}: that needs at least the sharer role on it`);
    }
    if (rank(role) > rank(ceiling)) {
      throw denied(`user ${actor} may share ${describe(item)} up to ${ceiling}, not ${role} (R5: share only up to your own level)`, "ABOVE_OWN_LEVEL");
    }
    const existing = await store.read.grants.find(grantResource(item), grantSubject(grantee));
    if (existing && existing.role !== role) this.#requireMayChange(actor, item, existing, can.manage, ceiling);

    this.#judgeEligible(grantee, role, item, workspace, answers.eligibility);

    const inherited = await this.#inheritedFrom(item, grantee, answers);
    if (inherited && rank(role) < rank(inherited.role)) {
      throw refused(
        `${who(grantee)} inherits ${inherited.role} on ${describe(item)} from folder ${inherited.from.id} ("${inherited.from.name}"); ` +
          `a direct grant cannot be less permissive than the inherited one (R2)`,
        "LESS_PERMISSIVE_THAN_INHERITED",
      );
    }
    const unchanged = { value: { grant: existing, noOp: true }, token: this.deps.tokens.current(), applied: true };
    if (inherited && rank(role) === rank(inherited.role)) {
      // Equal to what is inherited: nothing to grant. A higher direct grant is dropped, so the role is what was asked.
      if (!existing) return { ...unchanged, value: { grant: undefined, noOp: true } };
      return this.deps.writer.change(async (tx, rels) => {
        const removed = await tx.grants.remove(grantResource(item), grantSubject(grantee));
        if (removed) rels.delete(deriveRow("grants", removed));
        return { grant: undefined, noOp: false };
      });
    }
    if (existing?.role === role) return unchanged;
    return this.deps.writer.change(async (tx, rels) => {
      const { before, after } = await tx.grants.upsert(grantResource(item), grantSubject(grantee), role, actor);
      rels.replace(before ? deriveRow("grants", before) : [], deriveRow("grants", after));
      return { grant: after, noOp: false };
    });
  }

  /** Removes the grantee's direct grant: managers any, others only the ones they made within their level. */
  async unshare(actor: string, ref: ObjectRef, grantee: Grantee): Promise<Committed<void>> {
    const item = await this.deps.catalog.resolve(ref);
    const existing = await this.deps.store.read.grants.find(grantResource(item), grantSubject(grantee));
    const answers = await this.#ask({ actor, item }, undefined, existing ? undefined : { item, grantee });
    const can = answers.actorCan!;
    const ceiling = shareCeiling(can);
    // Before saying whether a grant exists or where a role comes from: those are for people who may share it.
    if (!ceiling) throw denied(`user ${actor} may not change who can access ${describe(item)}`);
    if (!existing) {
      const inherited = await this.#inheritedFrom(item, grantee, answers);
      const hint = inherited ? `their ${inherited.role} role is inherited from folder ${inherited.from.id} ("${inherited.from.name}"); change it there` : "";
      throw notFound(`a direct grant for ${who(grantee)} on ${describe(item)}`, hint);
    }
    this.#requireMayChange(actor, item, existing, can.manage, ceiling);
    return this.deps.writer.change(async (tx, rels) => {
      const removed = await tx.grants.remove(grantResource(item), grantSubject(grantee));
      if (removed) rels.delete(deriveRow("grants", removed));
    });
  }

  /** R1: the role of every member of the organization that owns the item's workspace; undefined removes it. */
  async setOrganizationDefaultRole(actor: string, ref: ObjectRef, role: RoleName | undefined): Promise<Committed<ShareOutcome>> {
    const item = await this.deps.catalog.resolve(ref);
    const workspace = await this.#workspace(item);
    const organization: Grantee = { kind: "organization", id: workspace.organization_id };
    if (role) return this.share(actor, ref, organization, role);
    const existing = await this.deps.store.read.grants.find(grantResource(item), grantSubject(organization));
    if (!existing) {
      const can = await this.#actorCan(actor, item);
      if (!can.share) throw denied(`user ${actor} may not change who can access ${describe(item)}`);
      return { value: { grant: undefined, noOp: true }, token: this.deps.tokens.current(), applied: true };
    }
    const removed = await this.unshare(actor, ref, organization);
    return { ...removed, value: { grant: undefined, noOp: false } };
  }

  /**
   * Everyone with a role on the item and where it comes from: direct
   * grants, grants inherited from each ancestor folder (nearest first), and
   * the workspace-wide access of MANAGE holders and guests.
   */
  async listShares(ref: ObjectRef): Promise<ShareEntry[]> {
    const read = this.deps.store.read;
    const item = await this.deps.catalog.resolve(ref);
    const entries: ShareEntry[] = [];
    for (const g of await read.grants.on(grantResource(item))) {
      entries.push({ grantee: granteeOf(g), role: g.role, source: "direct", sourceObject: itemRef(item), sourceName: item.row.name, grantedBy: g.granted_by });
    }
    const ancestors = await this.#ancestorFolders(item);
    const byFolder = new Map<string, GrantRow[]>();
    for (const g of await read.grants.onFolders(ancestors.map((f) => f.id))) {
      byFolder.set(g.folder_id ?? "", [...(byFolder.get(g.folder_id ?? "") ?? []), g]);
    }
    for (const folder of ancestors) {
      for (const g of byFolder.get(folder.id) ?? []) {
        entries.push({
          grantee: granteeOf(g),
          role: g.role,
          source: "folder",
          sourceObject: { type: "folder", id: folder.id },
          sourceName: folder.name,
          grantedBy: g.granted_by,
        });
      }
    }
    if (item.kind === "content") {
      for (const share of await read.partners.sharesOf(item.row.id)) {
        entries.push({
          grantee: { kind: "organization", id: share.partner_organization_id },
          role: "viewer",
          source: "partner",
          sourceObject: { type: "partnership", id: share.partnership_id },
          sourceName: share.partner_name,
          grantedBy: null,
        });
      }
    }
    const workspaces = await read.workspaces.ancestry(item.row.workspace_id);
    const native = workspaces[0];
    if (native) {
      const organization = await read.organizations.get(native.organization_id);
      for (const adminId of await read.organizations.adminIds(native.organization_id)) {
        entries.push({
          grantee: { kind: "user", id: adminId },
          role: "manager",
          source: "workspace",
          sourceObject: { type: "organization", id: native.organization_id },
          sourceName: organization?.name ?? native.organization_id,
          grantedBy: null,
        });
      }
    }
    for (const ws of workspaces) {
      for (const access of await read.workspaces.listAccess(ws.id)) {
        const grantee: Grantee = access.user_id !== null ? { kind: "user", id: access.user_id } : { kind: "group", id: access.group_id ?? "" };
        const workspaceEntry = { grantee, source: "workspace" as const, sourceObject: { type: "workspace", id: ws.id }, sourceName: ws.name, grantedBy: null };
        if (access.kind === "level" && access.level === "manage") entries.push({ ...workspaceEntry, role: "manager" });
        if (access.kind === "guest" && ws.id === native?.id) entries.push({ ...workspaceEntry, role: "viewer" });
      }
    }
    return entries;
  }

  /**
   * What a sharing call needs to know, at one snapshot: what the actor may
   * do on the item (after workspace caps), whether the grantee is eligible on
   * the item's workspace (R6; on the native workspace itself only when
   * asked), and the highest role the grantee inherits from the item's parent
   * folder (R2). Each part is asked only when given.
   *
   * In two rounds, because SpiceDB computes the questions of one request
   * side by side and shares nothing between them, while a later request at
   * the same snapshot finds the first one's steps in its cache (measured at
   * a new revision: manage, edit and share in one request 51–53 datastore
   * reads, manage alone 23). Roles and permissions are cumulative — manage
   * implies edit and share; a role granted implies every lower one — so
   * the first round asks only the actor's manage and the grantee's viewer
   * level, and the second, at the first's snapshot, asks edit and share only
   * of an actor who does not manage, and the higher levels only of a grantee
   * who inherits at least viewer. A manager sharing with someone who
   * inherits nothing (the usual case) is answered in one round.
   *
   * With a SharingIndex, Postgres answers all of it in one statement, on
   * every committed change (no outbox to wait for).
   */
  async #ask(
    actorOn: { actor: string; item: Item } | undefined,
    eligibility: { grantee: Grantee; workspace: WorkspaceRow; native: boolean } | undefined,
    inheritance: { item: Item; grantee: Grantee } | undefined,
  ): Promise<Answers> {
    if (this.deps.index) return this.#askIndex(this.deps.index, actorOn, eligibility, inheritance);
    const fully = await this.#fully();
    const actorAsked = (permission: "manage" | "edit" | "share"): CheckItem => ({
      resource: itemRef(actorOn!.item),
      permission,
      subject: { type: "user", id: actorOn!.actor },
    });
    const parentId = inheritance ? parentFolderId(inheritance.item) : undefined;
    const inheritedAsked = (role: RoleName): CheckItem => ({
      resource: { type: "folder", id: parentId! },
      permission: GRANTED_PERMISSION[role],
      subject: granteeSubject(inheritance!.grantee),
    });

    const first = new Questions();
    const manageAt = actorOn ? first.add([actorAsked("manage")]) : undefined;
    const eligibleAt = eligibility
      ? first.add(
          (eligibility.native ? (["eligible", "eligible_native"] as const) : (["eligible"] as const)).map((permission) => ({
            resource: { type: "workspace", id: eligibility.workspace.id },
            permission,
            subject: granteeSubject(eligibility.grantee),
          })),
        )
      : undefined;
    const viewerAt = inheritance && parentId ? first.add([inheritedAsked("viewer")]) : undefined;
    if (first.items.length === 0) return {};
    const firstAnswers = await this.deps.engine.checkBulk(first.items, fully);
    const allowed = (i: number) => firstAnswers.results[i]?.allowed === true;

    const second = new Questions();
    const higher = ROLES.filter((role) => role !== "viewer").reverse();
    const editShareAt = manageAt !== undefined && !allowed(manageAt) ? second.add([actorAsked("edit"), actorAsked("share")]) : undefined;
    const higherAt = viewerAt !== undefined && allowed(viewerAt) ? second.add(higher.map(inheritedAsked)) : undefined;
    let more: (i: number) => boolean = () => false;
    if (second.items.length > 0) {
      const snapshot: Consistency = firstAnswers.token ? { kind: "at_exact_snapshot", token: firstAnswers.token } : fully;
      const secondAnswers = await this.deps.engine.checkBulk(second.items, snapshot);
      more = (i) => secondAnswers.results[i]?.allowed === true;
    }

    const actorCan =
      manageAt === undefined
        ? undefined
        : editShareAt === undefined
          ? { manage: true, edit: true, share: true }
          : { manage: false, edit: more(editShareAt), share: more(editShareAt + 1) };
    const inheritedRole = viewerAt === undefined || !allowed(viewerAt) ? undefined : (higher.find((_, i) => more(higherAt! + i)) ?? "viewer");
    return {
      ...(actorCan ? { actorCan } : {}),
      ...(eligibleAt !== undefined ? { eligibility: { eligible: allowed(eligibleAt), native: eligibility?.native ? allowed(eligibleAt + 1) : undefined } } : {}),
      ...(viewerAt !== undefined ? { inheritedRole } : {}),
      consistency: fully,
    };
  }

  async #askIndex(
    index: SharingIndex,
    actorOn: { actor: string; item: Item } | undefined,
    eligibility: { grantee: Grantee; workspace: WorkspaceRow; native: boolean } | undefined,
    inheritance: { item: Item; grantee: Grantee } | undefined,
  ): Promise<Answers> {
    const item = actorOn?.item ?? inheritance?.item;
    if (!item || (!actorOn && !eligibility && !inheritance)) return {};
    const grantee = eligibility?.grantee ?? inheritance?.grantee;
    const found = await index.ask({
      itemType: itemRef(item).type,
      itemId: item.row.id,
      workspaceId: item.row.workspace_id,
      baseFolderId: item.kind === "folder" ? item.row.id : item.row.folder_id,
      actor: actorOn?.actor,
      grantee,
      askEligibility: eligibility !== undefined,
      parentFolderId: inheritance ? parentFolderId(inheritance.item) : null,
    });
    return {
      ...(actorOn ? { actorCan: found.actorCan } : {}),
      ...(eligibility ? { eligibility: { eligible: found.eligible, native: eligibility.native ? found.eligibleNative : undefined } } : {}),
      ...(inheritance ? { inheritedRole: found.inheritedRole, inheritedFrom: found.inheritedFrom } : {}),
    };
  }

  /** What the actor may do on the item, after workspace caps. */
  async #actorCan(actor: string, item: Item): Promise<{ manage: boolean; edit: boolean; share: boolean }> {
    return (await this.#ask({ actor, item }, undefined, undefined)).actorCan!;
  }

  /** Changing or removing someone else's grant is managing permissions (a manager's job). */
  #requireMayChange(actor: string, item: Item, existing: GrantRow, manage: boolean, ceiling: RoleName): void {
    if (manage) return;
    if (existing.granted_by === actor && rank(existing.role) <= rank(ceiling)) return;
    throw denied(
      `user ${actor} may not change the ${existing.role} grant of ${who(granteeOf(existing))} on ${describe(item)}: ` +
        `changing or removing grants made by others needs the manager role`,
      "CHANGE_NEEDS_MANAGER",
    );
  }

  /**
   * R6: a grantee must have at least VIEW on the item's workspace (directly,
   * through a group, or on a descendant workspace) or SEE; editor and
   * manager need it on the native workspace. An organization-wide role is
   * for the organization that owns the workspace (`eligibility` is not asked
   * for organizations).
   */
  #judgeEligible(grantee: Grantee, role: RoleName, item: Item, workspace: WorkspaceRow, eligibility: Eligibility | undefined): void {
    if (grantee.kind === "organization") {
      if (grantee.id !== workspace.organization_id) {
        throw refused(
          `organization ${grantee.id} does not own workspace ${workspace.id}; an organization-wide role is for its owner, ${workspace.organization_id}`,
          "ORGANIZATION_NOT_OWNER",
        );
      }
      return;
    }
    const { eligible, native } = eligibility ?? { eligible: false, native: false };
    const nativeNeeded = needsNative(role);
    if (nativeNeeded && !native && eligible) {
      throw refused(
        `${who(grantee)} cannot get ${role} on ${describe(item)}: editor and manager need a permission on its own workspace ${workspace.id} ("${workspace.name}"), ` +
          `and ${who(grantee)} reaches it only from a child workspace; content cannot be edited from a child workspace (R6)`,
        "NOT_IN_NATIVE_WORKSPACE",
      );
    }
    if (!eligible || (nativeNeeded && !native)) {
      throw refused(
        `${who(grantee)} has no permission on workspace ${workspace.id} ("${workspace.name}"), so ${describe(item)} cannot be shared with them; ` +
          `give them at least VIEW on the workspace, or make them eligible with SEE (R6)`,
        "NOT_ELIGIBLE",
      );
    }
  }

  /** R2: with the highest role the grantee inherits (from #ask), the nearest ancestor folder granting it directly. */
  async #inheritedFrom(item: Item, grantee: Grantee, answers: Answers): Promise<{ role: RoleName; from: FolderRow } | undefined> {
    const parentId = parentFolderId(item);
    const role = answers.inheritedRole;
    if (!role || !parentId) return undefined;
    const ancestors = await this.deps.store.read.folders.ancestry(parentId);
    if (answers.inheritedFrom !== undefined) {
      return { role, from: ancestors.find((f) => f.id === answers.inheritedFrom) ?? ancestors[0]! };
    }
    const subject = granteeSubject(grantee);
    const fully = answers.consistency ?? (await this.#fully());
    const direct: CheckItem[] = ancestors.map((f) => ({ resource: { type: "folder", id: f.id }, permission: DIRECT_PERMISSION[role], subject }));
    const found = await this.deps.engine.checkBulk(direct, fully);
    const from = ancestors.find((_, i) => found.results[i]?.allowed) ?? ancestors[0]!;
    return { role, from };
  }

  /**
   * Rules are judged on everything committed: the outbox applied, then
   * SpiceDB's newest data. Resolved once per call and passed to each check.
   */
  #fully(): Promise<Consistency> {
    return this.deps.tokens.resolve({ kind: "fully_consistent" });
  }

  async #ancestorFolders(item: Item): Promise<FolderRow[]> {
    const parentId = parentFolderId(item);
    return parentId ? this.deps.store.read.folders.ancestry(parentId) : [];
  }

  async #workspace(item: Item): Promise<WorkspaceRow> {
    const ws = await this.deps.store.read.workspaces.get(item.row.workspace_id);
    if (!ws) throw notFound(`workspace ${item.row.workspace_id}`);
    return ws;
  }

  async #requireGrantee(grantee: Grantee): Promise<void> {
    const read = this.deps.store.read;
    const exists =
      grantee.kind === "user"
        ? await read.users.get(grantee.id)
        : grantee.kind === "group"
          ? await read.groups.get(grantee.id)
          : await read.organizations.get(grantee.id);
    if (!exists) throw notFound(who(grantee));
  }
}

/** The grantee's answers on the item's workspace: eligible (R6), and eligible on the native workspace itself (asked only for roles that need it). */
interface Eligibility {
  readonly eligible: boolean;
  readonly native?: boolean | undefined;
}

/** What #ask found; each part present when asked. */
interface Answers {
  readonly actorCan?: { manage: boolean; edit: boolean; share: boolean };
  readonly eligibility?: Eligibility;
  readonly inheritedRole?: RoleName | undefined;
  /** The folder the inherited role comes from, when the index found it too. */
  readonly inheritedFrom?: string | undefined;
  /** The snapshot SpiceDB answered at, for the questions that follow. */
  readonly consistency?: Consistency;
}

/** R6: editor and manager need a permission on the item's own workspace, not only a child's. */
function needsNative(role: RoleName): boolean {
  return rank(role) >= rank("editor");
}

/** Questions for one bulk check, each part remembering where its answers start. */
class Questions {
  readonly items: CheckItem[] = [];

  add(asked: readonly CheckItem[]): number {
    const start = this.items.length;
    this.items.push(...asked);
    return start;
  }
}

function parentFolderId(item: Item): string | null {
  return item.kind === "folder" ? item.row.parent_id : item.row.folder_id;
}
