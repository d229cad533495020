import type { CheckItem, Engine, ObjectRef, SubjectRef, TracedCheckResult, TraceNode } from "../engine/engine.js";
import type { Store } from "../store/store.js";
import type { ConsistencyTokens, Freshness } from "../sync/consistency.js";
import { isContentKind } from "./roles.js";
import { CUMULATIVE_RELATIONS, WORKSPACE_LEVEL_RELATION } from "./graph.js";

/** One link of an access path, in the product's words: object —link→ target. */
export interface AccessStep {
  readonly object: ObjectRef;
  readonly link: string;
  readonly target: ObjectRef;
}

export interface AccessPath {
  readonly steps: readonly AccessStep[];
  readonly summary: string;
}

export interface Explanation {
  readonly allowed: boolean;
  readonly text: string;
  readonly granting: readonly AccessPath[];
  readonly partial: readonly AccessPath[];
  readonly missing: readonly string[];
  readonly token: string;
}

/** What each relation means, read from its subject towards its object. */
const RELATION_LINKS: Readonly<Record<string, string>> = {
  viewer: "is viewer on",
  sharer: "is sharer on",
  editor: "is editor on",
  manager: "is manager on",
  creator: "created",
  member: "is a member of",
  admin: "is an admin of",
  analyst: "has ANALYZE on",
  guest: "is a guest of",
  see: "has SEE on",
  assignee: "is assigned to",
  partner_user: "was added as a channel partner user by",
  channel_partner: "is classified as a channel partner:",
  // The cumulative relations (graph.ts), where the grant behind them could not be read.
  view_role: "is viewer (or more) on",
  share_role: "is sharer (or more) on",
  edit_role: "is editor (or more) on",
};

const WORKSPACE_LINKS: Readonly<Record<string, string>> = {
  viewer: "has VIEW on",
  analyst: "has ANALYZE on",
  manager: "has MANAGE on",
  view_level: "has VIEW (or more) on",
  analyze_level: "has ANALYZE (or more) on",
};


/**
 * Which way a workspace permission looks along the tree's closure:
 * `descendant_or_self->…` down, `relative->…` both ways, the others
 * (`ancestor_or_self->…`) up.
 */
const TREE_DIRECTION: Readonly<Record<string, "down" | "both">> = { subtree_view: "down", view_in_tree: "both" };

/**
 * How access flows between objects when SpiceDB follows an arrow from `from`
 * (while computing `fromPermission`) to `to`.
 */
function arrowLink(from: ObjectRef, to: ObjectRef, fromPermission: string): AccessStep {
  if (from.type === "workspace" && to.type === "workspace") {
    // A permission held above holds here; content shows in the workspaces below.
    const direction = TREE_DIRECTION[fromPermission];
    if (direction === "down") return { object: to, link: "is a descendant workspace of", target: from };
    if (direction === "both") return { object: to, link: "is in the workspace tree of", target: from };
    return { object: to, link: "is an ancestor workspace of", target: from };
  }
  if (to.type === "organization" && from.type === "workspace") return { object: to, link: "owns", target: from };
  if (to.type === "partnership") return { object: to, link: "shares", target: from };
  if (from.type === "partnership" && to.type === "organization") return { object: to, link: "is the partner organization of", target: from };
  if (to.type === "folder" && from.type === "folder") return { object: to, link: "contains", target: from };
  return { object: to, link: "contains", target: from };
}

const name = (o: ObjectRef) => `${o.type} ${o.id}`;

function subjectName(s: SubjectRef): string {
  return s.relation && s.relation !== "member" ? `${s.type} ${s.id}#${s.relation}` : s.relation ? `members of ${s.type} ${s.id}` : `${s.type} ${s.id}`;
}

export interface ExplainDeps {
  readonly store: Store;
  readonly engine: Engine;
  readonly tokens: ConsistencyTokens;
}

/**
 * R8: why a subject has or lacks a permission. Built on SpiceDB's check
 * trace, whose satisfied chains become access paths in product words; for a
 * denial on folders and content, the grant and the workspace standing are
 * checked apart so that the missing piece can be named.
 */
export class Explainer {
  constructor(private readonly deps: ExplainDeps) {}

  async explain(item: CheckItem, freshness: Freshness): Promise<Explanation> {
    const consistency = await this.deps.tokens.resolve(freshness);
    const result = await this.#traced(item, consistency);
    const paths = result.trace ? satisfiedPaths(result.trace, item.subject) : [];
    const token = this.deps.tokens.forRead(result.token);
    const who = subjectName(item.subject);
    const what = `${item.permission} ${name(item.resource)}`;
    if (result.allowed) {
      const text = `${capitalize(who)} can ${what}: ${paths.map((p) => p.summary).join("; and ") || "granted"}.`;
      return { allowed: true, text, granting: paths, partial: [], missing: [], token };
    }
    // Nothing to explain about an object that is not there: say so, rather than list what is missing.
    const absent = (await this.#exists(item.resource)) === false ? item.resource : item.subject.type === "user" && (await this.#exists(item.subject)) === false ? item.subject : undefined;
    if (absent) {
      const text = `${capitalize(who)} cannot ${what}: ${name(absent)} does not exist (check its type and id).`;
      return { allowed: false, text, granting: [], partial: [], missing: [`${name(absent)} (it does not exist)`], token };
    }
    const content = isContentKind(item.resource.type) || item.resource.type === "folder" ? await this.#contentDenial(item, consistency) : undefined;
    const missing = content?.missing.length ? content.missing : unsatisfiedLeaves(result.trace);
    const partial = dedupe([...paths, ...(content?.partial ?? [])]);
    const having = partial.length > 0 ? ` What exists: ${partial.map((p) => p.summary).join("; ")}.` : ` Nothing grants ${who} access to ${name(item.resource)}.`;
    const needs = content?.missing.length
      ? ` Missing: ${[content.missing.slice(0, -1).join(" and "), content.missing.at(-1)].filter(Boolean).join("; or ")}.`
      : missing.length > 0
        ? ` Missing one of: ${missing.join("; ")}.`
        : "";
    return { allowed: false, text: `${capitalize(who)} cannot ${what}.${having}${needs}`, granting: [], partial, missing, token };
  }

  /**
   * A check with its trace, where each node SpiceDB evaluated for several
   * objects at once (a batched arrow over a closure: the workspaces above,
   * the folders above; its id is their ids joined by commas) becomes one
   * node per object, each with its own answer, so that a path names the
   * object that grants; then each cumulative relation is named by the grant
   * behind it (#withRolesNamed).
   */
  async #traced(item: CheckItem, consistency: Parameters<Engine["check"]>[1]): Promise<TracedCheckResult> {
    return this.#withNestingNamed(await this.#tracedAs(item, consistency), item.subject);
  }

  /**
   * Group membership is held in SpiceDB as its closure (a user is a member
   * of every group above theirs; a group's members are asked about as its
   * stand-in, engine/group-subjects.ts), so the trace ends at the outer
   * group. The nesting in between is read from Postgres and becomes steps,
   * as if SpiceDB had walked it: "user carol is a member of group emea, and
   * group emea is a member of group analysts, and …". A group's stand-in
   * found in the group itself is no step at all.
   */
  async #withNestingNamed(result: TracedCheckResult, subject: SubjectRef): Promise<TracedCheckResult> {
    if (!result.trace) return result;
    const member = subject.type === "user" ? { userId: subject.id } : subject.type === "group" ? { groupId: subject.id } : undefined;
    if (!member) return result;
    const groups = new Set<string>();
    mapSatisfiedLeaves(result.trace, (leaf) => (isMembership(leaf) && groups.add(leaf.resource.id), leaf));
    const paths = new Map<string, string[] | undefined>();
    for (const group of groups) {
      paths.set(group, "groupId" in member && member.groupId === group ? undefined : await this.deps.store.read.groups.pathToMember(group, member));
    }
    const trace = mapSatisfiedLeaves(result.trace, (leaf) => {
      if (!isMembership(leaf)) return leaf;
      if ("groupId" in member && member.groupId === leaf.resource.id) return undefined;
      const path = paths.get(leaf.resource.id);
      return path && path.length > 1 ? { ...leaf, children: [membershipChain(path.slice(1), leaf.subject)] } : leaf;
    });
    return trace ? { ...result, trace } : result;
  }

  /** The engine's trace, batched nodes split and cumulative relations named (below). */
  async #tracedAs(item: CheckItem, consistency: Parameters<Engine["check"]>[1]): Promise<TracedCheckResult> {
    const result = await this.deps.engine.checkWithTrace(item, consistency);
    if (!result.trace) return result;
    const batched: TraceNode[] = [];
    const collect = (node: TraceNode) => {
      if (node.resource.id.includes(",")) batched.push(node);
      node.children.forEach(collect);
    };
    collect(result.trace);
    if (batched.length === 0) return this.#withRolesNamed(result, item.subject);
    const items = batched.flatMap((node) => node.resource.id.split(",").map((id) => ({ resource: { type: node.resource.type, id }, permission: node.name, subject: item.subject })));
    const answers = (await this.deps.engine.checkBulk(items, consistency)).results;
    const allowed = new Map(items.map((it, i) => [`${it.resource.type}:${it.resource.id}#${it.permission}`, answers[i]?.allowed === true]));
    const split = (node: TraceNode): TraceNode[] => {
      const children = node.children.flatMap(split);
      if (!node.resource.id.includes(",")) return [{ ...node, children }];
      return node.resource.id.split(",").map((id) => ({
        ...node,
        resource: { type: node.resource.type, id },
        hasPermission: node.hasPermission && allowed.get(`${node.resource.type}:${id}#${node.name}`) === true,
        children,
      }));
    };
    return this.#withRolesNamed({ ...result, trace: split(result.trace)[0]! }, item.subject);
  }

  /**
   * A satisfied cumulative relation (`view_role` holds viewers, sharers,
   * editors and managers alike) becomes the relation of the grant or level
   * actually written, read from Postgres, so that a path says "is editor
   * on" rather than "viewer or more"; one node per distinct role when
   * several subject sets matched.
   */
  async #withRolesNamed(result: TracedCheckResult, subject: SubjectRef): Promise<TracedCheckResult> {
    if (!result.trace) return result;
    const name = async (node: TraceNode): Promise<TraceNode[]> => {
      const children = (await Promise.all(node.children.map(name))).flat();
      if (!node.hasPermission || node.isPermission || !CUMULATIVE_RELATIONS.has(node.name)) return [{ ...node, children }];
      const matched = children.filter((c) => c.hasPermission);
      const groups = new Map<string, TraceNode[]>();
      for (const via of matched.length > 0 ? matched : [undefined]) {
        const holder = via ? { type: via.resource.type, id: via.resource.id, relation: via.name } : subject;
        const role = (await this.#writtenRole(node.resource, holder)) ?? node.name;
        groups.set(role, [...(groups.get(role) ?? []), ...(via ? [via] : [])]);
      }
      return [...groups].map(([role, vias]) => ({ ...node, name: role, children: matched.length > 0 ? vias : children }));
    };
    return { ...result, trace: (await name(result.trace))[0]! };
  }

  /** The relation of the grant (content, folder) or level (workspace) this subject holds on the object, if any. */
  async #writtenRole(object: ObjectRef, holder: SubjectRef): Promise<string | undefined> {
    const read = this.deps.store.read;
    if (object.type === "workspace") {
      if (holder.type !== "user" && holder.type !== "group") return undefined;
      const level = (await read.workspaces.listAccess(object.id)).find((a) => a.kind === "level" && (holder.type === "user" ? a.user_id : a.group_id) === holder.id)?.level;
      return level ? WORKSPACE_LEVEL_RELATION[level] : undefined;
    }
    const resource = object.type === "folder" ? { folderId: object.id } : isContentKind(object.type) ? { contentId: object.id, kind: object.type } : undefined;
    const grantee = holder.type === "user" ? { userId: holder.id } : holder.type === "group" ? { groupId: holder.id } : holder.type === "organization" ? { organizationId: holder.id } : undefined;
    return resource && grantee ? (await read.grants.find(resource, grantee))?.role : undefined;
  }

  /** Whether the system of record has this object; undefined for types it does not keep by id. */
  async #exists(ref: ObjectRef): Promise<boolean | undefined> {
    const read = this.deps.store.read;
    const repos: Record<string, { get(id: string): Promise<unknown> } | undefined> = {
      user: read.users,
      organization: read.organizations,
      group: read.groups,
      workspace: read.workspaces,
      entity: read.entities,
      folder: read.folders,
      service: read.services,
    };
    if (isContentKind(ref.type)) return (await read.content.get(ref.id))?.kind === ref.type;
    const repo = repos[ref.type];
    return repo ? (await repo.get(ref.id)) !== undefined : undefined;
  }

  /**
   * Content permissions are "role granted here or above" AND "standing in
   * the workspace" (R1, R7). Both halves are checked apart, with traces, to
   * show what exists and name the piece that is missing.
   */
  async #contentDenial(item: CheckItem, consistency: Parameters<Engine["check"]>[1]): Promise<{ missing: string[]; partial: AccessPath[] }> {
    const { permission, resource, subject } = item;
    const need = CONTENT_NEEDS[permission];
    const row = resource.type === "folder" ? await this.deps.store.read.folders.get(resource.id) : await this.deps.store.read.content.get(resource.id);
    if (!need || !row) return { missing: [], partial: [] };
    const workspace = { type: "workspace", id: row.workspace_id };
    const [granted, view, analyze, inTree] = await Promise.all([
      this.#traced({ resource, permission: need.granted, subject }, consistency),
      this.#traced({ resource: workspace, permission: "view", subject }, consistency),
      this.deps.engine.check({ resource: workspace, permission: "analyze", subject }, consistency),
      this.#traced({ resource: workspace, permission: "view_in_tree", subject }, consistency),
    ]);
    // Without the needed role, the role they do hold (if any) is still worth showing.
    const lesser = granted.allowed || need.granted === "granted_view" ? undefined : await this.#traced({ resource, permission: "granted_view", subject }, consistency);
    const partial: AccessPath[] = [];
    for (const part of [granted, lesser, view.allowed ? view : inTree]) {
      if (part?.allowed && part.trace) partial.push(...satisfiedPaths(part.trace, subject));
    }
    const standing = analyze.allowed ? "ANALYZE" : view.allowed ? "only VIEW" : inTree.allowed ? "access only from a child workspace" : "no permission";
    const missing: string[] = [];
    if (!granted.allowed) missing.push(`the ${need.role} role on ${name(resource)} or a folder above it`);
    const capOk = need.cap === "analyze" ? analyze.allowed : inTree.allowed;
    if (!capOk) {
      const cap = need.cap === "analyze" ? "ANALYZE" : "VIEW";
      missing.push(`${cap} on ${name(workspace)} (it gives ${subjectName(subject)} ${standing}; ${permission} needs ${cap})`);
    }
    missing.push(`MANAGE on ${name(workspace)}`);
    return { missing, partial };
  }
}

/** What each content permission needs: a granted role, and a workspace cap (R7). */
const CONTENT_NEEDS: Readonly<Record<string, { role: string; granted: string; cap: "analyze" | "view_in_tree" }>> = {
  view: { role: "viewer", granted: "granted_view", cap: "view_in_tree" },
  interact: { role: "viewer", granted: "granted_view", cap: "view_in_tree" },
  member_view: { role: "viewer", granted: "granted_view", cap: "view_in_tree" },
  share: { role: "sharer", granted: "granted_share", cap: "view_in_tree" },
  edit: { role: "editor", granted: "granted_edit", cap: "analyze" },
  explore: { role: "editor", granted: "granted_edit", cap: "analyze" },
  delete: { role: "manager (or editor, for its creator)", granted: "granted_edit", cap: "analyze" },
  manage: { role: "manager", granted: "granted_manage", cap: "analyze" },
};

/** The trace with each satisfied relation at the end of a chain replaced, or dropped (undefined). */
function mapSatisfiedLeaves(node: TraceNode, replace: (leaf: TraceNode) => TraceNode | undefined): TraceNode | undefined {
  const satisfied = node.children.some((c) => c.hasPermission);
  if (node.hasPermission && !node.isPermission && !satisfied) return replace(node);
  return { ...node, children: node.children.flatMap((c) => mapSatisfiedLeaves(c, replace) ?? []) };
}

/** A group membership SpiceDB found in the closure. */
function isMembership(node: TraceNode): boolean {
  return node.resource.type === "group" && node.name === "member" && !node.isPermission;
}

/** Trace nodes for groups nested in one another, outermost first; the last holds the subject directly. */
function membershipChain(groups: readonly string[], subject: SubjectRef): TraceNode {
  const [first, ...rest] = groups;
  return {
    resource: { type: "group", id: first! },
    name: "member",
    isPermission: false,
    subject,
    hasPermission: true,
    children: rest.length > 0 ? [membershipChain(rest, subject)] : [],
  };
}

function dedupe(paths: readonly AccessPath[]): AccessPath[] {
  const seen = new Set<string>();
  return paths.filter((p) => (seen.has(p.summary) ? false : (seen.add(p.summary), true)));
}

/**
 * Chains of satisfied nodes down to the relation that matched, translated to
 * steps from the subject up to the resource. Under a satisfied node only
 * satisfied children count; under a failed one (a denial, or the failing
 * half of an intersection) the satisfied parts are still collected: they are
 * what exists but does not suffice.
 */
export function satisfiedPaths(root: TraceNode, subject: SubjectRef): AccessPath[] {
  const chains: TraceNode[][] = [];
  const walk = (node: TraceNode, chain: TraceNode[]) => {
    const next = [...chain, node];
    if (!node.hasPermission) {
      for (const child of node.children) walk(child, next);
      return;
    }
    const satisfied = node.children.filter((c) => c.hasPermission);
    if (satisfied.length === 0) {
      if (!node.isPermission) chains.push(next);
      return;
    }
    for (const child of satisfied) walk(child, next);
  };
  walk(root, []);
  // The engine's trace lists branches in the order its dispatches finished; answer the same question the same way every time.
  return dedupe(
    chains.map((chain) => {
      const steps = toSteps(chain, subject);
      return { steps, summary: summarize(steps) };
    }),
  ).sort((a, b) => a.steps.length - b.steps.length || (a.summary < b.summary ? -1 : a.summary > b.summary ? 1 : 0));
}

function toSteps(chain: readonly TraceNode[], subject: SubjectRef): AccessStep[] {
  const steps: AccessStep[] = [];
  const leaf = chain.at(-1);
  if (!leaf) return steps;
  steps.push({ object: { type: subject.type, id: subject.id }, link: relationLink(leaf), target: leaf.resource });
  // From the leaf upwards: a relation holding a subject set, or an arrow to another object.
  for (let i = chain.length - 1; i > 0; i--) {
    const child = chain[i]!;
    const parent = chain[i - 1]!;
    if (!parent.isPermission && !child.isPermission) {
      steps.push({ object: child.resource, link: relationLink(parent), target: parent.resource });
    } else if (child.resource.type !== parent.resource.type || child.resource.id !== parent.resource.id) {
      steps.push(arrowLink(parent.resource, child.resource, parent.name));
    }
  }
  return steps;
}

function relationLink(node: TraceNode): string {
  if (node.resource.type === "workspace" && WORKSPACE_LINKS[node.name]) return WORKSPACE_LINKS[node.name]!;
  return RELATION_LINKS[node.name] ?? `is ${node.name} of`;
}

function summarize(steps: readonly AccessStep[]): string {
  return steps.map((s) => `${name(s.object)} ${s.link} ${name(s.target)}`).join(", and ");
}

/** For a denial outside folders and content: the relations SpiceDB looked for, in product words. */
function unsatisfiedLeaves(root: TraceNode | undefined): string[] {
  if (!root) return [];
  const out = new Set<string>();
  const walk = (node: TraceNode) => {
    if (!node.isPermission && node.children.length === 0 && !node.hasPermission) {
      out.add(`${node.name === "member" ? "membership of" : relationLink(node).replace(/^is |^has /, "")} ${name(node.resource)}`.trim());
    }
    node.children.forEach(walk);
  };
  walk(root);
  return [...out];
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
