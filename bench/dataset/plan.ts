import type { ContentKind, RoleName, WorkspaceAccessKind, WorkspaceLevelName } from "../../src/store/database.js";
import { Random } from "./random.js";

/**
 * A benchmark tenant, planned in memory from a seed and a scale: every row
 * the loader writes, the probe users planted for the lookup lines and the
 * sample of checks. Pure and deterministic: the same (scale, seed) gives the
 * same plan, row for row and in the same order.
 *
 * At scale 1: 10,000 users, 1,000 groups nested up to 4 deep, 50 workspaces
 * (nested up to 3 deep), 10,000 folders up to 8 deep, 100,000 content items,
 * shares to users, groups and (rarely) the whole organization.
 */

export interface DatasetSizes {
  readonly users: number;
  readonly groups: number;
  readonly workspaces: number;
  readonly folders: number;
  readonly items: number;
  /** Distinct (user, item) pairs in the check sample. */
  readonly sample: number;
}

export function sizesFor(scale: number): DatasetSizes {
  const at = (full: number, min: number) => Math.max(min, Math.round(full * scale));
  return {
    users: at(10_000, 30),
    groups: at(1_000, 8),
    workspaces: at(50, 2),
    folders: at(10_000, 12),
    items: at(100_000, 60),
    sample: Math.min(30_000, at(300_000, 600)),
  };
}

export type GrantSubject = { readonly userId: string } | { readonly groupId: string } | { readonly organizationId: string };
export type GrantResource = { readonly folderId: string } | { readonly contentId: string; readonly kind: ContentKind };

export interface PlannedUser {
  readonly id: string;
  readonly email: string;
  readonly name: string;
  /** Member of the tenant's organization (probe users are not). */
  readonly member: boolean;
  readonly admin: boolean;
}
export interface PlannedGroup {
  readonly id: string;
  /** 1: users only; k > 1: also groups of level k - 1 (nesting depth k). */
  readonly level: number;
}
export type PlannedGroupMember = { readonly groupId: string; readonly userId: string } | { readonly groupId: string; readonly memberGroupId: string };
export interface PlannedWorkspace {
  readonly id: string;
  readonly parentId: string | null;
  readonly depth: number;
}
export interface PlannedAccess {
  readonly workspaceId: string;
  readonly kind: WorkspaceAccessKind;
  readonly level: WorkspaceLevelName | null;
  readonly subject: { readonly userId: string } | { readonly groupId: string };
}
export interface PlannedFolder {
  readonly id: string;
  readonly workspaceId: string;
  readonly parentId: string | null;
  /** 1 at the workspace root. */
  readonly depth: number;
  readonly createdBy: string;
}
export interface PlannedContent {
  readonly id: string;
  readonly kind: ContentKind;
  readonly workspaceId: string;
  readonly folderId: string | null;
  readonly createdBy: string;
}
export interface PlannedGrant {
  readonly resource: GrantResource;
  readonly subject: GrantSubject;
  readonly role: RoleName;
  readonly grantedBy: string;
}

/** A user planted to see about `target` items (the lookup lines). */
export interface Probe {
  readonly name: string;
  readonly userId: string;
  readonly target: number;
  /** Exactly how many items the planted grants make visible. */
  readonly expected: number;
  /** Visible items per content kind. */
  readonly expectedByKind: Readonly<Record<ContentKind, number>>;
}

/** One check of the sample; `path` says how the pair was picked (the route an allow would take). */
export interface SamplePair {
  readonly userId: string;
  readonly resource: { readonly type: ContentKind; readonly id: string };
  readonly permission: "view";
  readonly path: string;
  /** Depth of the item's folder (0: workspace root). */
  readonly folderDepth: number;
}

export interface Plan {
  readonly scale: number;
  readonly seed: number;
  readonly sizes: DatasetSizes;
  readonly organizationId: string;
  /** A user for SHAREGRAPH_PLATFORM_ADMINS (not a member of the organization). */
  readonly platformAdmin: string;
  readonly users: readonly PlannedUser[];
  readonly groups: readonly PlannedGroup[];
  readonly groupMembers: readonly PlannedGroupMember[];
  readonly workspaces: readonly PlannedWorkspace[];
  readonly access: readonly PlannedAccess[];
  readonly folders: readonly PlannedFolder[];
  readonly content: readonly PlannedContent[];
  /** Creator grants (manager, as the API makes them) and shares, in insertion order. */
  readonly grants: readonly PlannedGrant[];
  readonly probes: readonly Probe[];
  readonly sample: readonly SamplePair[];
}

const KIND_WEIGHTS: Record<ContentKind, number> = { dashboard: 40, report: 30, board: 15, workbook: 15 };
const SHARE_ROLES: Record<RoleName, number> = { viewer: 60, sharer: 15, editor: 20, manager: 5 };
const pad = (n: number, width: number) => String(n).padStart(width, "0");

export function planDataset(scale: number, seed = 1): Plan {
  if (!(scale > 0 && scale <= 1)) throw new Error(`scale must be in (0, 1], got ${scale}`);
  const sizes = sizesFor(scale);
  const rnd = new Random(seed);
  const organizationId = "bench-org";

  // Users: all members of the organization; two organization admins.
  const users: PlannedUser[] = [];
  for (let i = 1; i <= sizes.users; i++) {
    const id = `user-${pad(i, 5)}`;
    users.push({ id, email: `${id}@bench.example`, name: `Bench User ${i}`, member: true, admin: i <= 2 });
  }
  const platformAdmin = "bench-admin";
  users.push({ id: platformAdmin, email: "admin@bench.example", name: "Bench Admin", member: false, admin: false });
  const memberIds = users.filter((u) => u.member && !u.admin).map((u) => u.id);

  // Groups: levels 1-4 (50/25/15/10 %); a level-k group nests 1-3 groups of level k-1.
  const groups: PlannedGroup[] = [];
  const byLevel: string[][] = [[], [], [], [], []];
  for (let i = 1; i <= sizes.groups; i++) {
    const f = (i - 1) / sizes.groups;
    const level = f < 0.5 ? 1 : f < 0.75 ? 2 : f < 0.9 ? 3 : 4;
    const id = `group-${pad(i, 4)}`;
    groups.push({ id, level });
    byLevel[level]!.push(id);
  }
  const groupMembers: PlannedGroupMember[] = [];
  const directUsers = new Map<string, string[]>();
  const subgroups = new Map<string, string[]>();
  for (const g of groups) {
    const people = rnd.sample(memberIds, g.level === 1 ? rnd.between(10, 30) : rnd.between(0, 8));
    const nested = g.level > 1 ? rnd.sample(byLevel[g.level - 1]!, rnd.between(1, 3)) : [];
    directUsers.set(g.id, people);
    subgroups.set(g.id, nested);
    for (const userId of people) groupMembers.push({ groupId: g.id, userId });
    for (const memberGroupId of nested) groupMembers.push({ groupId: g.id, memberGroupId });
  }
  const membersOf = transitiveMembers(groups, directUsers, subgroups);
  const groupsBelow = (id: string): string[] => [id, ...(subgroups.get(id) ?? []).flatMap(groupsBelow)];

  // Workspaces: a fifth are roots, the others nest under an earlier one (depth ≤ 3).
  const workspaces: PlannedWorkspace[] = [];
  const roots = Math.max(1, Math.ceil(sizes.workspaces / 5));
  for (let i = 1; i <= sizes.workspaces; i++) {
    const id = `ws-${pad(i, 3)}`;
    const candidates = workspaces.filter((w) => w.depth < 3);
    const parent = i <= roots ? undefined : rnd.pick(candidates);
    workspaces.push({ id, parentId: parent?.id ?? null, depth: parent ? parent.depth + 1 : 1 });
  }
  const wsById = new Map(workspaces.map((w) => [w.id, w]));
  const wsAncestry = (id: string): string[] => {
    const chain: string[] = [];
    for (let w = wsById.get(id); w; w = w.parentId ? wsById.get(w.parentId) : undefined) chain.push(w.id);
    return chain;
  };

  // Workspace permissions: viewer groups, an analyst group, a manager, viewer users, sometimes a guest.
  const access: PlannedAccess[] = [];
  for (const w of workspaces) {
    const level = (lv: WorkspaceLevelName, subject: PlannedAccess["subject"]) => access.push({ workspaceId: w.id, kind: "level", level: lv, subject });
    const viewerGroups = rnd.sample(groups, 3).map((g) => g.id);
    const analystGroup = rnd.pick(groups.filter((g) => g.level <= 2 && !viewerGroups.includes(g.id))).id;
    for (const groupId of viewerGroups) level("view", { groupId });
    level("analyze", { groupId: analystGroup });
    const people = rnd.sample(memberIds, 6);
    level("manage", { userId: people[0]! });
    for (const userId of people.slice(1)) level("view", { userId });
    if (rnd.chance(0.1)) access.push({ workspaceId: w.id, kind: "guest", level: null, subject: { userId: rnd.pick(memberIds) } });
  }
  // Who holds VIEW / ANALYZE on a workspace (here or inherited from an ancestor): creators and share targets.
  const eligible = new Map<string, { users: string[]; groups: string[]; analysts: string[] }>();
  for (const w of workspaces) {
    const chain = new Set(wsAncestry(w.id));
    const users = new Set<string>();
    const analysts = new Set<string>();
    const grps = new Set<string>();
    for (const a of access) {
      if (!chain.has(a.workspaceId) || a.kind === "see" || (a.kind === "guest" && a.workspaceId !== w.id)) continue;
      const analyst = a.kind === "level" && a.level !== "view";
      const people = "userId" in a.subject ? [a.subject.userId] : membersOf.get(a.subject.groupId)!;
      for (const u of people) {
        users.add(u);
        if (analyst) analysts.add(u);
      }
      if ("groupId" in a.subject) for (const g of groupsBelow(a.subject.groupId)) grps.add(g);
    }
    eligible.set(w.id, { users: [...users], groups: [...grps], analysts: analysts.size > 0 ? [...analysts] : [...users] });
  }

  // Folders: per workspace a forest up to 8 deep; parents are often recent folders, so chains grow deep.
  const folders: PlannedFolder[] = [];
  const foldersOfWs = new Map<string, PlannedFolder[]>(workspaces.map((w) => [w.id, []]));
  for (let i = 1; i <= sizes.folders; i++) {
    const w = rnd.pick(workspaces);
    const existing = foldersOfWs.get(w.id)!.filter((f) => f.depth < 8);
    let parent: PlannedFolder | undefined;
    if (existing.length > 0 && !rnd.chance(0.12)) parent = rnd.chance(0.5) ? rnd.pick(existing.slice(-20)) : rnd.pick(existing);
    const folder = { id: `folder-${pad(i, 5)}`, workspaceId: w.id, parentId: parent?.id ?? null, depth: parent ? parent.depth + 1 : 1, createdBy: rnd.pick(eligible.get(w.id)!.analysts) };
    folders.push(folder);
    foldersOfWs.get(w.id)!.push(folder);
  }
  const folderById = new Map(folders.map((f) => [f.id, f]));
  const folderAncestry = (id: string | null): string[] => {
    const chain: string[] = [];
    for (let f = id ? folderById.get(id) : undefined; f; f = f.parentId ? folderById.get(f.parentId) : undefined) chain.push(f.id);
    return chain;
  };

  // Content: 88 % in a folder of its workspace, the rest at the root.
  const content: PlannedContent[] = [];
  const subtreeItems = new Map<string, PlannedContent[]>(folders.map((f) => [f.id, []]));
  const rootItems = new Map<string, PlannedContent[]>(workspaces.map((w) => [w.id, []]));
  for (let i = 1; i <= sizes.items; i++) {
    const w = rnd.pick(workspaces);
    const inWs = foldersOfWs.get(w.id)!;
    const folder = inWs.length > 0 && rnd.chance(0.88) ? rnd.pick(inWs) : undefined;
    const item: PlannedContent = { id: `item-${pad(i, 6)}`, kind: rnd.weighted(KIND_WEIGHTS), workspaceId: w.id, folderId: folder?.id ?? null, createdBy: rnd.pick(eligible.get(w.id)!.analysts) };
    content.push(item);
    if (folder) for (const f of folderAncestry(folder.id)) subtreeItems.get(f)!.push(item);
    else rootItems.get(w.id)!.push(item);
  }

  // Grants: the creator's manager grant (R4), then shares to eligible users and groups (R6).
  const grants: PlannedGrant[] = [];
  const grantKeys = new Set<string>();
  const grant = (resource: GrantResource, subject: GrantSubject, role: RoleName, grantedBy: string): boolean => {
    const key = `${"folderId" in resource ? resource.folderId : resource.contentId}|${Object.values(subject)[0]}`;
    if (grantKeys.has(key)) return false;
    grantKeys.add(key);
    grants.push({ resource, subject, role, grantedBy });
    return true;
  };
  for (const f of folders) grant({ folderId: f.id }, { userId: f.createdBy }, "manager", f.createdBy);
  for (const c of content) grant({ contentId: c.id, kind: c.kind }, { userId: c.createdBy }, "manager", c.createdBy);
  const folderShares: PlannedGrant[] = [];
  const contentShares: PlannedGrant[] = [];
  for (const f of folders) {
    const e = eligible.get(f.workspaceId)!;
    const share = (subject: GrantSubject) => {
      if (grant({ folderId: f.id }, subject, rnd.weighted(SHARE_ROLES), f.createdBy)) folderShares.push(grants.at(-1)!);
    };
    if (rnd.chance(0.25) && e.groups.length > 0) share({ groupId: rnd.pick(e.groups) });
    if (rnd.chance(0.25)) share({ userId: rnd.pick(e.users) });
    if (rnd.chance(0.003)) share({ organizationId });
  }
  for (const c of content) {
    const e = eligible.get(c.workspaceId)!;
    const share = (subject: GrantSubject) => {
      if (grant({ contentId: c.id, kind: c.kind }, subject, rnd.weighted(SHARE_ROLES), c.createdBy)) contentShares.push(grants.at(-1)!);
    };
    const toUsers = rnd.weighted({ 0: 10, 1: 15, 2: 25, 3: 20, 4: 15, 5: 15 });
    for (const userId of rnd.sample(e.users, Number(toUsers))) share({ userId });
    const toGroups = rnd.weighted({ 0: 25, 1: 40, 2: 20, 3: 15 });
    for (const groupId of rnd.sample(e.groups, Number(toGroups))) share({ groupId });
    if (rnd.chance(0.002)) share({ organizationId });
  }

  // Probe users: outside the organization and every group, VIEW on chosen workspaces, and grants
  // (direct, or to the top of a 4-deep chain of groups of their own) that make exactly `expected` items visible.
  const probes: Probe[] = [];
  const probeItems = new Map<string, Set<string>>();
  const probeTargets: Array<[string, number]> = [
    ["small", 10],
    ["medium", Math.max(10, Math.round(1_000 * scale))],
    ["large", Math.max(10, Math.round(10_000 * scale))],
  ];
  for (const [p, [name, target]] of probeTargets.entries()) {
    const userId = `probe-${name}`;
    users.push({ id: userId, email: `${userId}@bench.example`, name: `Probe ${name}`, member: false, admin: false });
    const chain = [1, 2, 3, 4].map((k) => `probe-${name}-g${k}`);
    chain.forEach((id, k) => {
      groups.push({ id, level: k + 1 });
      groupMembers.push(k === 0 ? { groupId: id, userId } : { groupId: id, memberGroupId: chain[k - 1]! });
    });
    const top = chain[3]!;
    let turn = 0;
    const subject = (): GrantSubject => (turn++ % 2 === 0 ? { userId } : { groupId: top });
    const visible = new Set<string>();
    const order = workspaces.map((_, i) => workspaces[(i + p * 7) % workspaces.length]!);
    for (const w of order) {
      if (visible.size >= target) break;
      access.push({ workspaceId: w.id, kind: "level", level: "view", subject: { userId } });
      const chosen = new Set<string>();
      const blocked = new Set<string>();
      if (target - visible.size > 20) {
        const candidates = [...foldersOfWs.get(w.id)!].sort((a, b) => subtreeItems.get(b.id)!.length - subtreeItems.get(a.id)!.length || a.id.localeCompare(b.id));
        for (const f of candidates) {
          const n = subtreeItems.get(f.id)!.length;
          if (n === 0 || n > target - visible.size || blocked.has(f.id) || folderAncestry(f.parentId).some((a) => chosen.has(a))) continue;
          chosen.add(f.id);
          for (const a of folderAncestry(f.id)) blocked.add(a);
          grant({ folderId: f.id }, subject(), "viewer", userId);
          for (const item of subtreeItems.get(f.id)!) visible.add(item.id);
        }
      }
      const rest = content.filter((c) => c.workspaceId === w.id && !visible.has(c.id));
      for (const c of rest) {
        if (visible.size >= target) break;
        grant({ contentId: c.id, kind: c.kind }, subject(), "viewer", userId);
        visible.add(c.id);
      }
    }
    const byKind: Record<ContentKind, number> = { dashboard: 0, report: 0, board: 0, workbook: 0 };
    for (const c of content) if (visible.has(c.id)) byKind[c.kind]++;
    probes.push({ name, userId, target, expected: visible.size, expectedByKind: byKind });
    probeItems.set(userId, visible);
  }

  const sample = pickSample(rnd, sizes.sample, {
    users: memberIds,
    content,
    contentShares,
    folderShares,
    access,
    membersOf,
    subtreeItems,
    rootItems,
    folderById,
    workspaces,
    probeItems,
  });

  return { scale, seed, sizes, organizationId, platformAdmin, users, groups, groupMembers, workspaces, access, folders, content, grants, probes, sample };
}

/** Users of each group, through nesting. */
function transitiveMembers(groups: readonly PlannedGroup[], direct: Map<string, string[]>, nested: Map<string, string[]>): Map<string, string[]> {
  const memo = new Map<string, string[]>();
  const of = (id: string): string[] => {
    const known = memo.get(id);
    if (known) return known;
    const all = new Set(direct.get(id) ?? []);
    for (const sub of nested.get(id) ?? []) for (const u of of(sub)) all.add(u);
    const list = [...all];
    memo.set(id, list);
    return list;
  };
  for (const g of groups) of(g.id);
  return memo;
}

interface SampleSources {
  readonly users: readonly string[];
  readonly content: readonly PlannedContent[];
  readonly contentShares: readonly PlannedGrant[];
  readonly folderShares: readonly PlannedGrant[];
  readonly access: readonly PlannedAccess[];
  readonly membersOf: Map<string, string[]>;
  readonly subtreeItems: Map<string, PlannedContent[]>;
  readonly rootItems: Map<string, PlannedContent[]>;
  readonly folderById: Map<string, PlannedFolder>;
  readonly workspaces: readonly PlannedWorkspace[];
  readonly probeItems: Map<string, Set<string>>;
}

/**
 * Distinct (user, item) pairs for `view`, shuffled: about half picked along a
 * grant (direct, group, nested group, folder chain), the rest workspace
 * members and random users on random items (mostly denied), workspace
 * managers and probe users.
 */
function pickSample(rnd: Random, n: number, s: SampleSources): SamplePair[] {
  const byId = new Map(s.content.map((c) => [c.id, c]));
  const itemsOfWs = new Map<string, PlannedContent[]>(s.workspaces.map((w) => [w.id, []]));
  for (const c of s.content) itemsOfWs.get(c.workspaceId)!.push(c);
  const wsChildren = new Map<string, string[]>();
  for (const w of s.workspaces) if (w.parentId) wsChildren.set(w.parentId, [...(wsChildren.get(w.parentId) ?? []), w.id]);
  const wsBelow = (id: string): string[] => [id, ...(wsChildren.get(id) ?? []).flatMap(wsBelow)];
  const holders = (subject: PlannedAccess["subject"] | GrantSubject): string[] =>
    "userId" in subject ? [subject.userId] : "groupId" in subject ? (s.membersOf.get(subject.groupId) ?? []) : [...s.users];
  const userShares = s.contentShares.filter((g) => "userId" in g.subject);
  const groupShares = s.contentShares.filter((g) => "groupId" in g.subject);
  const folderShares = s.folderShares.filter((g) => !("organizationId" in g.subject));
  const managers = s.access.filter((a) => (a.kind === "level" && a.level === "manage") || a.kind === "guest");
  const levelRows = s.access.filter((a) => a.kind === "level");
  const probes = [...s.probeItems.entries()];

  const pairs = new Map<string, SamplePair>();
  const add = (userId: string | undefined, item: PlannedContent | undefined, path: string) => {
    if (!userId || !item) return;
    const key = `${userId}|${item.id}`;
    if (pairs.has(key)) return;
    const folderDepth = item.folderId ? s.folderById.get(item.folderId)!.depth : 0;
    pairs.set(key, { userId, resource: { type: item.kind, id: item.id }, permission: "view", path, folderDepth });
  };
  const pickers: Record<string, () => void> = {
    "content share to a user": () => {
      const g = rnd.pick(userShares);
      if ("userId" in g.subject && "contentId" in g.resource) add(g.subject.userId, byId.get(g.resource.contentId), "content share to a user");
    },
    "content share to a group": () => {
      const g = rnd.pick(groupShares);
      const people = holders(g.subject);
      if ("contentId" in g.resource && people.length > 0) add(rnd.pick(people), byId.get(g.resource.contentId), "content share to a group (nested)");
    },
    "folder share": () => {
      const g = rnd.pick(folderShares);
      if (!("folderId" in g.resource)) return;
      const items = s.subtreeItems.get(g.resource.folderId)!;
      if (items.length === 0) return;
      const people = holders(g.subject);
      if (people.length === 0) return;
      add(rnd.pick(people), rnd.pick(items), `folder share to a ${"userId" in g.subject ? "user" : "group"} (folder chain)`);
    },
    "workspace member, any item there": () => {
      const a = rnd.pick(levelRows);
      const people = holders(a.subject);
      const items = itemsOfWs.get(a.workspaceId)!;
      if (people.length && items.length) add(rnd.pick(people), rnd.pick(items), "workspace member, an item of that workspace");
    },
    "random user, random item": () => add(rnd.pick(s.users), rnd.pick(s.content), "random user, random item"),
    "workspace manager or guest": () => {
      const a = rnd.pick(managers);
      const below = a.kind === "guest" ? [a.workspaceId] : wsBelow(a.workspaceId);
      const items = itemsOfWs.get(rnd.pick(below))!;
      if (items.length) add(rnd.pick(holders(a.subject)), rnd.pick(items), "workspace manager or guest (workspace caps)");
    },
    "probe user": () => {
      const [userId, visible] = rnd.pick(probes);
      if (rnd.chance(0.5) && visible.size > 0) {
        const ids = [...visible];
        add(userId, byId.get(rnd.pick(ids)), "probe user, a granted item (nested groups)");
      } else add(userId, rnd.pick(s.content), "probe user, random item");
    },
  };
  const weights = {
    "content share to a user": 14,
    "content share to a group": 14,
    "folder share": 22,
    "workspace member, any item there": 16,
    "random user, random item": 16,
    "workspace manager or guest": 8,
    "probe user": 10,
  };
  let attempts = 0;
  while (pairs.size < n && attempts++ < n * 50) pickers[rnd.weighted(weights)]!();
  return rnd.shuffle([...pairs.values()]);
}
