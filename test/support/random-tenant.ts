import fc from "fast-check";
import type { App } from "../../src/app.js";
import { DomainError } from "../../src/domain/errors.js";
import type { RoleName } from "../../src/store/database.js";
import { PLATFORM_ADMIN } from "./server.js";

/*
 * A random tenant for property tests that hold an answer path to SpiceDB's
 * answers (test/store/content-view.property.test.ts,
 * write-checks.property.test.ts): random workspace trees, folders,
 * items of every kind, shares with users, groups and the organization,
 * workspace levels and guests, nested groups, organization admins, partner
 * shares and partner members, all through the domain, then random changes.
 */

export const KINDS = ["report", "board", "dashboard", "workbook"] as const;
export type Kind = (typeof KINDS)[number];
export const ROLES: RoleName[] = ["viewer", "sharer", "editor", "manager"];
/** u1–u3: members of the owner organization; p1 and u4: of the partner organization. */
export const USERS = ["owner", "u1", "u2", "u3", "u4", "p1"];
export type GroupName = "inner" | "mid" | "outer";
const NESTINGS: ReadonlyArray<readonly [GroupName, GroupName]> = [
  ["inner", "mid"],
  ["mid", "outer"],
  ["inner", "outer"],
];
export const SUBJECTS = ["u1", "u2", "u3", "g:inner", "g:mid", "g:outer", "org"] as const;
export type Subject = (typeof SUBJECTS)[number];

export type Op =
  | { kind: "workspace"; parent: number }
  | { kind: "folder"; ws: number; parent: number }
  | { kind: "content"; ws: number; folder: number; type: Kind }
  | { kind: "move"; what: "folder" | "content"; index: number; to: number }
  | { kind: "delete"; what: "folder" | "content" | "workspace"; index: number }
  | { kind: "share"; what: "folder" | "content"; index: number; subject: Subject; role: RoleName }
  | { kind: "unshare"; what: "folder" | "content"; index: number; subject: Subject }
  | { kind: "level"; subject: Subject; ws: number; level: "view" | "analyze" | "manage" | "none" }
  | { kind: "guest"; subject: Subject; ws: number; on: boolean }
  | { kind: "member"; group: GroupName; user: string; on: boolean }
  | { kind: "nest"; pair: number; on: boolean }
  | { kind: "admin"; on: boolean }
  | { kind: "partnerShares"; pick: number }
  | { kind: "partnerMember"; on: boolean };

const small = fc.integer({ min: 0, max: 7 });
const parentArb = fc.integer({ min: -1, max: 7 });
const subjectArb = fc.constantFrom(...SUBJECTS);
const workspaceArb = fc.record({ kind: fc.constant("workspace" as const), parent: parentArb });
const folderArb = fc.record({ kind: fc.constant("folder" as const), ws: small, parent: parentArb });
const contentArb = fc.record({ kind: fc.constant("content" as const), ws: small, folder: parentArb, type: fc.constantFrom(...KINDS) });
const shareArb = fc.record({
  kind: fc.constant("share" as const),
  what: fc.constantFrom("folder" as const, "content" as const),
  index: small,
  subject: subjectArb,
  role: fc.constantFrom(...ROLES),
});
const levelArb = fc.record({ kind: fc.constant("level" as const), subject: subjectArb, ws: small, level: fc.constantFrom("view" as const, "analyze" as const, "manage" as const, "none" as const) });

const guestArb = fc.record({ kind: fc.constant("guest" as const), subject: subjectArb, ws: small, on: fc.boolean() });

/** A workspace tree (the first one a root, the others anywhere), who may use it, folders, items and grants. */
export const setupArb: fc.Arbitrary<Op[]> = fc
  .tuple(
    fc.array(workspaceArb, { minLength: 2, maxLength: 4 }),
    fc.array(levelArb, { minLength: 1, maxLength: 4 }),
    fc.array(guestArb, { maxLength: 2 }),
    fc.array(folderArb, { minLength: 2, maxLength: 7 }),
    fc.array(contentArb, { minLength: 2, maxLength: 7 }),
    fc.array(shareArb, { minLength: 1, maxLength: 5 }),
  )
  .map(([[first, ...rest], ...parts]) => [{ ...first!, parent: -1 }, ...rest, ...parts.flat()]);

export const changeArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 1, arbitrary: workspaceArb },
  { weight: 2, arbitrary: folderArb },
  { weight: 2, arbitrary: contentArb },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("move" as const), what: fc.constantFrom("folder" as const, "content" as const), index: small, to: parentArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("delete" as const), what: fc.constantFrom("folder" as const, "content" as const, "workspace" as const), index: small }) },
  { weight: 4, arbitrary: shareArb },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("unshare" as const), what: fc.constantFrom("folder" as const, "content" as const), index: small, subject: subjectArb }) },
  { weight: 3, arbitrary: levelArb },
  { weight: 3, arbitrary: guestArb },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("member" as const), group: fc.constantFrom<GroupName>("inner", "mid", "outer"), user: fc.constantFrom("u1", "u2", "u3"), on: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("nest" as const), pair: fc.integer({ min: 0, max: NESTINGS.length - 1 }), on: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("admin" as const), on: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("partnerShares" as const), pick: fc.integer({ min: 0, max: 255 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("partnerMember" as const), on: fc.boolean() }) },
);

/** The tenant's fixed part: users, the owner organization (u1–u3 members), a partner organization (p1, u4). Returns the partner organization. */
export async function setUpTenant(app: App): Promise<string> {
  const { directory, catalog, partners } = app.domain;
  for (const u of ["owner", "u1", "u2", "u3", "u4"]) await directory.createUser(PLATFORM_ADMIN, { id: u, email: `${u}@view.example`, displayName: u });
  await directory.createOrganization(PLATFORM_ADMIN, { id: "opt", name: "Opt", channelPartner: false, adminUserIds: ["owner"] });
  for (const u of ["u1", "u2", "u3"]) await directory.addOrganizationMember("owner", "opt", { userId: u }, false);
  // The partnership: p1 accepts an invitation to one report and founds the partner organization.
  await directory.createWorkspace("owner", "opt", { id: "seed-w", name: "Seed" });
  await catalog.createContent("owner", { kind: "report", workspaceId: "seed-w", id: "seed-r", name: "Seed" });
  const invited = await partners.invite("owner", "opt", { email: "p1@partner-view.example", items: [{ type: "report", id: "seed-r" }] });
  const accepted = await partners.accept(invited.value.token!, { userId: "p1", displayName: "P1", organizationName: "Partner" });
  const partnerOrg = accepted.value.partner.partnership.partner_organization_id;
  await directory.addOrganizationMember("p1", partnerOrg, { userId: "u4" }, false);
  return partnerOrg;
}

/** What one run has made so far (deleted objects pruned). */
export interface TenantState {
  readonly groups: Readonly<Record<GroupName, string>>;
  readonly workspaces: readonly string[];
  readonly folders: ReadonlyArray<{ readonly id: string; readonly ws: string }>;
  readonly contents: ReadonlyArray<{ readonly id: string; readonly ws: string; readonly type: Kind }>;
}

/** After a step: the state, the op, its index, and the token of its change (undefined: nothing changed). */
export type AfterStep = (state: TenantState, op: Op, step: number, token: string | undefined) => Promise<void>;

/**
 * Plays the setup, then the changes, under the id prefix p; after every step
 * that changed something (refusals — R2, R6, cycles, objects gone after a
 * delete — change nothing and are skipped), calls after.
 */
export async function playRandomTenant(app: App, partnerOrg: string, p: string, setup: readonly Op[], changes: readonly Op[], after: AfterStep): Promise<void> {
  const { directory, catalog, sharing, partners } = app.domain;
  const groups: Record<GroupName, string> = { inner: `${p}-inner`, mid: `${p}-mid`, outer: `${p}-outer` };
  for (const id of Object.values(groups)) await directory.createGroup("owner", "opt", { id, name: id });
  await directory.addGroupMember("owner", groups.inner, { kind: "user", id: "u2" });
  await directory.addGroupMember("owner", groups.outer, { kind: "user", id: "u3" });
  await directory.addGroupMember("owner", groups.mid, { kind: "group", id: groups.inner });
  await directory.addGroupMember("owner", groups.outer, { kind: "group", id: groups.mid });
  const member = (s: Exclude<Subject, "org">) => (s.startsWith("g:") ? ({ kind: "group", id: groups[s.slice(2) as GroupName] } as const) : ({ kind: "user", id: s } as const));
  const grantee = (s: Subject) => (s === "org" ? ({ kind: "organization", id: "opt" } as const) : member(s));

  const workspaces: string[] = [];
  const folders: Array<{ id: string; ws: string }> = [];
  const contents: Array<{ id: string; ws: string; type: Kind }> = [];
  const ws = (i: number) => (workspaces.length === 0 ? undefined : workspaces[i % workspaces.length]);
  const folderIn = (w: string, i: number) => {
    const inWs = folders.filter((f) => f.ws === w);
    return i < 0 || inWs.length === 0 ? undefined : inWs[i % inWs.length];
  };
  const target = (what: "folder" | "content", i: number) => {
    if (what === "folder") return folders.length ? { type: "folder", id: folders[i % folders.length]!.id } : undefined;
    const c = contents[i % Math.max(1, contents.length)];
    return c ? { type: c.type, id: c.id } : undefined;
  };
  /** After a delete: what is left of the run's objects. */
  const prune = async () => {
    const keptWs = new Set((await app.domain.store.read.workspaces.getMany(workspaces)).map((w) => w.id));
    workspaces.splice(0, workspaces.length, ...workspaces.filter((w) => keptWs.has(w)));
    const keptF = new Set((await app.domain.store.read.folders.getMany(folders.map((f) => f.id))).map((f) => f.id));
    folders.splice(0, folders.length, ...folders.filter((f) => keptF.has(f.id)));
    const keptC = new Set((await app.domain.store.read.content.getMany(contents.map((c) => c.id))).map((c) => c.id));
    contents.splice(0, contents.length, ...contents.filter((c) => keptC.has(c.id)));
  };

  let n = 0;
  const ops = [...setup, ...changes];
  for (const [step, op] of ops.entries()) {
    let token: string | undefined;
    try {
      switch (op.kind) {
        case "workspace": {
          const id = `${p}-w${n++}`;
          const parentId = op.parent < 0 ? undefined : ws(op.parent);
          token = (await directory.createWorkspace("owner", "opt", { id, name: id, ...(parentId ? { parentId } : {}) })).token;
          workspaces.push(id);
          break;
        }
        case "folder": {
          const w = ws(op.ws);
          if (!w) continue;
          const id = `${p}-f${n++}`;
          token = (await catalog.createFolder("owner", { workspaceId: w, id, name: id, parentId: folderIn(w, op.parent)?.id })).token;
          folders.push({ id, ws: w });
          break;
        }
        case "content": {
          const w = ws(op.ws);
          if (!w) continue;
          const id = `${p}-c${n++}`;
          token = (await catalog.createContent("owner", { kind: op.type, workspaceId: w, id, name: id, folderId: folderIn(w, op.folder)?.id })).token;
          contents.push({ id, ws: w, type: op.type });
          break;
        }
        case "move": {
          const what = target(op.what, op.index);
          if (!what) continue;
          const w = (op.what === "folder" ? folders : contents).find((x) => x.id === what.id)!.ws;
          token = (await catalog.move("owner", what, folderIn(w, op.to)?.id)).token;
          break;
        }
        case "delete": {
          if (op.what === "workspace") {
            const w = ws(op.index);
            if (!w || workspaces.length < 2) continue;
            token = (await directory.deleteWorkspace("owner", w)).token;
          } else {
            const what = target(op.what, op.index);
            if (!what) continue;
            token = (await catalog.delete("owner", what)).token;
          }
          await prune();
          break;
        }
        case "share": {
          const what = target(op.what, op.index);
          if (!what) continue;
          token = (await sharing.share("owner", what, grantee(op.subject), op.role)).token;
          break;
        }
        case "unshare": {
          const what = target(op.what, op.index);
          if (!what) continue;
          token = (await sharing.unshare("owner", what, grantee(op.subject))).token;
          break;
        }
        case "level": {
          const w = ws(op.ws);
          if (!w || op.subject === "org") continue;
          token =
            op.level === "none"
              ? (await directory.removeWorkspacePermission("owner", w, member(op.subject))).token
              : (await directory.setWorkspacePermission("owner", w, member(op.subject), op.level)).token;
          break;
        }
        case "guest": {
          const w = ws(op.ws);
          if (!w || op.subject === "org") continue;
          const who = member(op.subject);
          token = (op.on ? await directory.addWorkspaceGuest("owner", w, who) : await directory.removeWorkspaceGuest("owner", w, who)).token;
          break;
        }
        case "member": {
          const member = { kind: "user", id: op.user } as const;
          token = (op.on ? await directory.addGroupMember("owner", groups[op.group], member) : await directory.removeGroupMember("owner", groups[op.group], member)).token;
          break;
        }
        case "nest": {
          const [inner, outer] = NESTINGS[op.pair]!;
          const member = { kind: "group", id: groups[inner] } as const;
          token = (op.on ? await directory.addGroupMember("owner", groups[outer], member) : await directory.removeGroupMember("owner", groups[outer], member)).token;
          break;
        }
        case "admin":
          token = (await directory.addOrganizationMember("owner", "opt", { userId: "u1" }, op.on)).token;
          break;
        case "partnerShares": {
          // A subset of this run's reports and boards (bit i of pick: the i-th of them).
          const shareable = contents.filter((c) => c.type === "report" || c.type === "board");
          const items = shareable.filter((_, i) => (op.pick >> i) & 1).map((c) => ({ type: c.type, id: c.id }));
          token = (await partners.setShares("owner", "opt", partnerOrg, { items, kinds: [] })).token;
          break;
        }
        case "partnerMember":
          token = op.on
            ? (await directory.addOrganizationMember("p1", partnerOrg, { userId: "u3" }, false)).token
            : (await directory.removeOrganizationMember("p1", partnerOrg, "u3")).token;
          break;
      }
    } catch (err) {
      // Refusals (R2, R6 eligibility, cycles, objects gone after a delete) are answers too; they change nothing.
      if (!(err instanceof DomainError)) throw err;
      continue;
    }
    await after({ groups, workspaces, folders, contents }, op, step, token);
  }
}
