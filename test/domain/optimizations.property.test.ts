import { readFileSync } from "node:fs";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app.js";
import { DomainError } from "../../src/domain/errors.js";
import { CUMULATIVE_RELATIONS, deriveAll } from "../../src/domain/graph.js";
import { createEmbeddedEngine } from "../../src/engine/embedded.js";
import type { CheckItem, Engine, Relationship, RelationshipUpdate, SubjectRef } from "../../src/engine/engine.js";
import type { RoleName } from "../../src/store/database.js";
import { formatRelationship, parseRelationship } from "../../src/sync/relationship-text.js";
import { PLATFORM_ADMIN, startTestServer, type TestServer } from "../support/server.js";

/*
 * The shortcuts never change an answer. sharegraph's schema finds inherited
 * roles through a folder-ancestor closure, and workspace permissions above
 * and below through workspace-ancestor and -descendant closures, that the
 * store maintains; reads are served at pinned snapshots through a decision
 * cache. Here random folder trees, workspace trees, moves, deletes, shares,
 * group and workspace changes go through the domain, and after every change
 * every question about every workspace, folder and item is asked twice: of
 * sharegraph at the change's token, and of a plain reference model
 * (test/fixtures/reference.zed: each level walks to its parent or children)
 * fed the same relationships without the closures.
 */

const USERS = ["u1", "u2", "u3"];
const ROLES: RoleName[] = ["viewer", "sharer", "editor", "manager"];
const CONTENT_PERMISSIONS = ["view", "share", "edit", "manage", "delete"];
const FOLDER_PERMISSIONS = [...CONTENT_PERMISSIONS, "see_name"];

type GroupOp =
  | { kind: "nest"; pair: number; on: boolean }
  | { kind: "member"; group: GroupName; user: string; on: boolean }
  | { kind: "drop"; group: GroupName };

type Op =
  | { kind: "folder"; parent: number; ws: number }
  | { kind: "content"; folder: number; ws: number }
  | { kind: "move"; what: "folder" | "content"; index: number; to: number }
  | { kind: "delete"; what: "folder" | "content"; index: number }
  | { kind: "share"; what: "folder" | "content"; index: number; subject: string; role: RoleName }
  | { kind: "unshare"; what: "folder" | "content"; index: number; subject: string }
  | { kind: "level"; user: string; ws: number; level: "view" | "analyze" | "manage" | "none" }
  | GroupOp;

type GroupName = "inner" | "mid" | "outer";
/** Nestings the random changes make and unmake: inner in mid, mid in outer, inner in outer. */
const NESTINGS: ReadonlyArray<readonly [GroupName, GroupName]> = [
  ["inner", "mid"],
  ["mid", "outer"],
  ["inner", "outer"],
];
const groupArb = fc.constantFrom<GroupName>("inner", "mid", "outer");
const nestArb = fc.record({ kind: fc.constant("nest" as const), pair: fc.integer({ min: 0, max: NESTINGS.length - 1 }), on: fc.boolean() });
const memberArb = fc.record({ kind: fc.constant("member" as const), group: groupArb, user: fc.constantFrom("u1", "u2", "u3"), on: fc.boolean() });
const dropArb = fc.record({ kind: fc.constant("drop" as const), group: groupArb });

const WORKSPACE_PERMISSIONS = ["manage", "analyze", "view", "view_in_tree", "view_all_content", "eligible", "eligible_native", "create_content", "change_permissions"];
/**
 * Relations that only sharegraph's closures write (folder ancestors; the
 * workspace tree's closure; the cumulative role relations beside each grant
 * and workspace level).
 */
const CLOSURE_RELATIONS = new Set(["ancestor", "ancestor_or_self", "descendant_or_self", "relative", ...CUMULATIVE_RELATIONS]);

const SUBJECTS = [...USERS, "g:outer", "g:mid", "g:inner"];
const index = fc.integer({ min: 0, max: 7 });
/** A random tree with grants: folders, items in them, roles on both. */
const setupArb: fc.Arbitrary<Op[]> = fc
  .tuple(
    fc.array(fc.record({ kind: fc.constant("folder" as const), parent: fc.integer({ min: -1, max: 7 }), ws: fc.integer({ min: 0, max: 1 }) }), { minLength: 2, maxLength: 7 }),
    fc.array(fc.record({ kind: fc.constant("content" as const), folder: fc.integer({ min: -1, max: 7 }), ws: fc.integer({ min: 0, max: 1 }) }), { minLength: 1, maxLength: 5 }),
    fc.array(
      fc.record({
        kind: fc.constant("share" as const),
        what: fc.constantFrom("folder" as const, "folder" as const, "content" as const),
        index,
        subject: fc.constantFrom(...SUBJECTS),
        role: fc.constantFrom(...ROLES),
      }),
      { minLength: 1, maxLength: 6 },
    ),
  )
  .map(([folders, contents, shares]) => [...folders, ...contents, ...shares]);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("folder" as const), parent: fc.integer({ min: -1, max: 7 }), ws: fc.integer({ min: 0, max: 1 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("content" as const), folder: fc.integer({ min: -1, max: 7 }), ws: fc.integer({ min: 0, max: 1 }) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("move" as const), what: fc.constantFrom("folder" as const, "folder" as const, "content" as const), index, to: fc.integer({ min: -1, max: 7 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("delete" as const), what: fc.constantFrom("folder" as const, "content" as const), index }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("share" as const),
      what: fc.constantFrom("folder" as const, "content" as const),
      index,
      subject: fc.constantFrom(...SUBJECTS),
      role: fc.constantFrom(...ROLES),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("unshare" as const), what: fc.constantFrom("folder" as const, "content" as const), index, subject: fc.constantFrom(...SUBJECTS) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("level" as const),
      user: fc.constantFrom(...USERS),
      ws: fc.integer({ min: 0, max: 1 }),
      level: fc.constantFrom("view" as const, "analyze" as const, "manage" as const, "none" as const),
    }),
  },
  { weight: 2, arbitrary: nestArb },
  { weight: 2, arbitrary: memberArb },
  { weight: 1, arbitrary: dropArb },
);

let server: TestServer;
let app: App;
let reference: Engine;
let referenceState = new Set<string>();
let run = 0;

beforeAll(async () => {
  server = await startTestServer();
  app = server.app;
  reference = await createEmbeddedEngine();
  await reference.writeSchema(readFileSync(new URL("../fixtures/reference.zed", import.meta.url), "utf8"));
  const { directory } = app.domain;
  await directory.createUser(PLATFORM_ADMIN, { id: "owner", email: "owner@opt.example", displayName: "Owner" });
  for (const u of USERS) await directory.createUser(PLATFORM_ADMIN, { id: u, email: `${u}@opt.example`, displayName: u });
  await directory.createOrganization(PLATFORM_ADMIN, { id: "opt", name: "Opt", channelPartner: false, adminUserIds: ["owner"] });
  for (const u of USERS) await directory.addOrganizationMember("owner", "opt", { userId: u }, false);
});

afterAll(async () => {
  await reference?.close();
  await server?.stop();
});

/**
 * Brings the reference engine to what the store implies, without the
 * closures: group membership as written (a nested group is a
 * `group#member` subject), not its closure.
 */
async function syncReference(): Promise<void> {
  const { derived, memberships } = await app.domain.store.transaction(async (tx) => ({ derived: await deriveAll(tx), memberships: await tx.all("group_members") }), "repeatable read");
  const groupClosure = (r: Relationship) => r.resource.type === "group" && (r.relation === "member" || r.relation === "within");
  const expected = new Set([
    ...derived.filter((r) => !CLOSURE_RELATIONS.has(r.relation) && !groupClosure(r)).map(formatRelationship),
    ...memberships.map((m) => (m.user_id !== null ? `group:${m.group_id}#member@user:${m.user_id}` : `group:${m.group_id}#member@group:${m.member_group_id}#member`)),
  ]);
  const updates: RelationshipUpdate[] = [
    ...[...referenceState].filter((r) => !expected.has(r)).map((r) => ({ op: "delete" as const, relationship: parseRelationship(r) })),
    ...[...expected].filter((r) => !referenceState.has(r)).map((r) => ({ op: "touch" as const, relationship: parseRelationship(r) })),
  ];
  for (let i = 0; i < updates.length; i += 1000) await reference.write(updates.slice(i, i + 1000));
  referenceState = expected;
}

/**
 * Three groups, inner (u2) in mid (nobody) in outer (u3), that random
 * changes nest in one another, fill, empty and delete; subjects "g:<name>"
 * are their members.
 */
async function makeGroups(p: string) {
  const { directory } = app.domain;
  const ids: Record<GroupName, string> = { inner: `${p}-inner`, mid: `${p}-mid`, outer: `${p}-outer` };
  for (const [name, id] of Object.entries(ids)) await directory.createGroup("owner", "opt", { id, name });
  await directory.addGroupMember("owner", ids.inner, { kind: "user", id: "u2" });
  await directory.addGroupMember("owner", ids.outer, { kind: "user", id: "u3" });
  // Nested from the start (inner in mid in outer), so that membership changes below reach groups two levels up.
  await directory.addGroupMember("owner", ids.mid, { kind: "group", id: ids.inner });
  await directory.addGroupMember("owner", ids.outer, { kind: "group", id: ids.mid });
  const subject = (s: string) => (s.startsWith("g:") ? ({ kind: "group", id: ids[s.slice(2) as GroupName] } as const) : ({ kind: "user", id: s } as const));
  const change = async (op: GroupOp): Promise<string> => {
    if (op.kind === "drop") return (await directory.deleteGroup("owner", ids[op.group])).token;
    if (op.kind === "member") {
      const member = { kind: "user", id: op.user } as const;
      return (op.on ? await directory.addGroupMember("owner", ids[op.group], member) : await directory.removeGroupMember("owner", ids[op.group], member)).token;
    }
    const [inner, outer] = NESTINGS[op.pair]!;
    const member = { kind: "group", id: ids[inner] } as const;
    return (op.on ? await directory.addGroupMember("owner", ids[outer], member) : await directory.removeGroupMember("owner", ids[outer], member)).token;
  };
  /** Who every question is asked about: each user, and the members of each group (a subject set in the reference). */
  const everyone: SubjectRef[] = [...USERS.map((id) => ({ type: "user", id })), ...Object.values(ids).map((id) => ({ type: "group", id, relation: "member" }))];
  return { ids, subject, change, everyone };
}

describe("closures and caches never change an answer", () => {
  it("R1: a folder moved under a shared folder passes the grant down to everything inside, at the move's token", async () => {
    const { directory, catalog, sharing, permissions } = app.domain;
    await directory.createWorkspace("owner", "opt", { id: "mv-w", name: "MV" });
    await directory.setWorkspacePermission("owner", "mv-w", { kind: "user", id: "u1" }, "view");
    await catalog.createFolder("owner", { workspaceId: "mv-w", id: "mv-shared", name: "Shared" });
    await catalog.createFolder("owner", { workspaceId: "mv-w", id: "mv-top", name: "Top" });
    await catalog.createFolder("owner", { workspaceId: "mv-w", id: "mv-sub", name: "Sub", parentId: "mv-top" });
    await catalog.createContent("owner", { kind: "dashboard", workspaceId: "mv-w", id: "mv-d", name: "D", folderId: "mv-sub" });
    await sharing.share("owner", { type: "folder", id: "mv-shared" }, { kind: "user", id: "u1" }, "viewer");
    const view = (id: string, type = "dashboard"): CheckItem => ({ resource: { type, id }, permission: "view", subject: { type: "user", id: "u1" } });
    const moved = await catalog.move("owner", { type: "folder", id: "mv-top" }, "mv-shared");
    const after = await permissions.checkBulk([view("mv-d"), view("mv-sub", "folder")], { kind: "at_least_as_fresh", token: moved.token });
    expect(after.results.map((r) => r.allowed)).toEqual([true, true]);
    const back = await catalog.move("owner", { type: "folder", id: "mv-top" }, undefined);
    const out = await permissions.checkBulk([view("mv-d"), view("mv-sub", "folder")], { kind: "at_least_as_fresh", token: back.token });
    expect(out.results.map((r) => r.allowed)).toEqual([false, false]);
  });

  it("R7: Reconcile derives the workspace closure from Postgres: a closure relationship lost from SpiceDB is found missing and written back", async () => {
    const { directory, permissions, index, engine } = app.domain;
    await directory.createWorkspace("owner", "opt", { id: "rc-top", name: "Top" });
    await directory.createWorkspace("owner", "opt", { id: "rc-mid", name: "Mid", parentId: "rc-top" });
    await directory.createWorkspace("owner", "opt", { id: "rc-low", name: "Low", parentId: "rc-mid" });
    const granted = await directory.setWorkspacePermission("owner", "rc-top", { kind: "user", id: "u1" }, "analyze");
    const analyze = { resource: { type: "workspace", id: "rc-low" }, permission: "analyze", subject: { type: "user", id: "u1" } };
    expect((await permissions.checkBulk([analyze], { kind: "at_least_as_fresh", token: granted.token })).results[0]!.allowed).toBe(true);

    const lost = "workspace:rc-low#ancestor_or_self@workspace:rc-top";
    await engine.write([{ op: "delete", relationship: parseRelationship(lost) }]);
    expect((await permissions.checkBulk([analyze], { kind: "fully_consistent" })).results[0]!.allowed).toBe(false);

    const report = await index.reconcile(false);
    expect(report.missing).toEqual([lost]);
    expect(report.extra).toEqual([]);
    expect((await permissions.checkBulk([analyze], { kind: "fully_consistent" })).results[0]!.allowed).toBe(true);
  });

  it("after every random change, sharegraph at the change's token answers as the reference model", async () => {
    const { directory, catalog, sharing, permissions } = app.domain;
    await fc.assert(
      fc.asyncProperty(setupArb, fc.array(opArb, { minLength: 3, maxLength: 8 }), async (setup, mutations) => {
        const p = `r${++run}`;
        const workspaces = [`${p}-w0`, `${p}-w1`];
        await directory.createWorkspace("owner", "opt", { id: workspaces[0]!, name: "W0" });
        await directory.createWorkspace("owner", "opt", { id: workspaces[1]!, name: "W1", parentId: workspaces[0] });
        const groups = await makeGroups(p);
        for (const u of USERS) await directory.setWorkspacePermission("owner", workspaces[0]!, { kind: "user", id: u }, "view");
        for (const g of Object.values(groups.ids)) await directory.setWorkspacePermission("owner", workspaces[0]!, { kind: "group", id: g }, "view");
        const folders: Array<{ id: string; ws: number }> = [];
        const contents: Array<{ id: string; ws: number }> = [];
        /** -1: the workspace root; else one of the workspace's folders (wrapping around). */
        const folderOf = (ws: number, i: number) => {
          const inWs = folders.filter((f) => f.ws === ws);
          return i < 0 || inWs.length === 0 ? undefined : inWs[i % inWs.length];
        };
        const subject = groups.subject;
        const target = (what: "folder" | "content", i: number) => {
          const list = what === "folder" ? folders : contents;
          const entry = list[i % Math.max(1, list.length)];
          return entry ? { type: what === "folder" ? "folder" : "dashboard", id: entry.id } : undefined;
        };
        let n = 0;
        const ops = [...setup, ...mutations];
        for (const [step, op] of ops.entries()) {
          const compare = step >= setup.length - 1;
          let token: string | undefined;
          try {
            switch (op.kind) {
              case "folder": {
                const parent = folderOf(op.ws, op.parent);
                const id = `${p}-f${n++}`;
                token = (await catalog.createFolder("owner", { workspaceId: workspaces[op.ws]!, id, name: id, parentId: parent?.id })).token;
                folders.push({ id, ws: op.ws });
                break;
              }
              case "content": {
                const folder = folderOf(op.ws, op.folder);
                const id = `${p}-d${n++}`;
                token = (await catalog.createContent("owner", { kind: "dashboard", workspaceId: workspaces[op.ws]!, id, name: id, folderId: folder?.id })).token;
                contents.push({ id, ws: op.ws });
                break;
              }
              case "move": {
                const what = target(op.what, op.index);
                if (!what) continue;
                const ws = (op.what === "folder" ? folders : contents).find((x) => x.id === what.id)!.ws;
                const to = folderOf(ws, op.to);
                token = (await catalog.move("owner", what, to?.id)).token;
                break;
              }
              case "delete": {
                const what = target(op.what, op.index);
                if (!what) continue;
                token = (await catalog.delete("owner", what)).token;
                // A folder goes with everything inside it.
                const kept = new Set((await app.domain.store.read.folders.getMany(folders.map((f) => f.id))).map((f) => f.id));
                folders.splice(0, folders.length, ...folders.filter((f) => kept.has(f.id)));
                const left = new Set((await app.domain.store.read.content.getMany(contents.map((c) => c.id))).map((c) => c.id));
                contents.splice(0, contents.length, ...contents.filter((c) => left.has(c.id)));
                break;
              }
              case "share": {
                const what = target(op.what, op.index);
                if (!what) continue;
                token = (await sharing.share("owner", what, subject(op.subject), op.role)).token;
                break;
              }
              case "unshare": {
                const what = target(op.what, op.index);
                if (!what) continue;
                token = (await sharing.unshare("owner", what, subject(op.subject))).token;
                break;
              }
              case "level":
                token =
                  op.level === "none"
                    ? (await directory.removeWorkspacePermission("owner", workspaces[op.ws]!, { kind: "user", id: op.user })).token
                    : (await directory.setWorkspacePermission("owner", workspaces[op.ws]!, { kind: "user", id: op.user }, op.level)).token;
                break;
              case "nest":
              case "member":
              case "drop":
                token = await groups.change(op);
                break;
            }
          } catch (err) {
            // Refusals (R2, cycles, unknown objects after a delete) are answers too; they change nothing.
            if (!(err instanceof DomainError)) throw err;
            continue;
          }
          if (!compare) continue;
          await syncReference();
          const items: CheckItem[] = [];
          for (const f of folders) for (const who of groups.everyone) for (const permission of FOLDER_PERMISSIONS) items.push({ resource: { type: "folder", id: f.id }, permission, subject: who });
          for (const c of contents) for (const who of groups.everyone) for (const permission of CONTENT_PERMISSIONS) items.push({ resource: { type: "dashboard", id: c.id }, permission, subject: who });
          if (items.length === 0) continue;
          const ours = await permissions.checkBulk(items, token ? { kind: "at_least_as_fresh", token } : { kind: "fully_consistent" });
          const theirs = await reference.checkBulk(items, { kind: "fully_consistent" });
          const differ = items.flatMap((item, i) =>
            ours.results[i]!.allowed === theirs.results[i]!.allowed
              ? []
              : [`${item.subject.type}:${item.subject.id} ${item.permission} ${item.resource.type}:${item.resource.id}: sharegraph ${ours.results[i]!.allowed}, reference ${theirs.results[i]!.allowed}`],
          );
          expect(differ, `after ${JSON.stringify(op)}`).toEqual([]);
        }
      }),
      { numRuns: 12, endOnFailure: true },
    );
  }, 600_000);
  it("R7: after every random change to a workspace tree, sharegraph at the change's token answers as the reference model", async () => {
    const { directory, catalog, sharing, permissions } = app.domain;
    type WsOp =
      | { kind: "workspace"; parent: number }
      | { kind: "delete"; index: number }
      | { kind: "level"; subject: string; index: number; level: "view" | "analyze" | "manage" | "none" }
      | { kind: "guest" | "see"; subject: string; index: number; on: boolean }
      | { kind: "content"; index: number; subject: string; role: RoleName }
      | GroupOp;
    const wsIndex = fc.integer({ min: 0, max: 9 });
    const subjectArb = fc.constantFrom(...SUBJECTS);
    const levelArb = fc.record({ kind: fc.constant("level" as const), subject: subjectArb, index: wsIndex, level: fc.constantFrom("view" as const, "analyze" as const, "manage" as const, "none" as const) });
    const contentArb = fc.record({ kind: fc.constant("content" as const), index: wsIndex, subject: subjectArb, role: fc.constantFrom(...ROLES) });
    /** -1: a new root; else one of the workspaces made so far (wrapping around). */
    const workspaceArb = fc.record({ kind: fc.constant("workspace" as const), parent: fc.integer({ min: -1, max: 9 }) });
    const treeArb: fc.Arbitrary<WsOp[]> = fc
      .tuple(fc.array(workspaceArb, { minLength: 2, maxLength: 6 }), fc.array(levelArb, { minLength: 1, maxLength: 5 }), fc.array(contentArb, { minLength: 1, maxLength: 4 }))
      .map(([workspaces, levels, contents]) => [...workspaces, ...levels, ...contents]);
    const changeArb: fc.Arbitrary<WsOp> = fc.oneof(
      { weight: 3, arbitrary: workspaceArb },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant("delete" as const), index: wsIndex }) },
      { weight: 4, arbitrary: levelArb },
      { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom("guest" as const, "see" as const), subject: subjectArb, index: wsIndex, on: fc.boolean() }) },
      { weight: 2, arbitrary: contentArb },
      { weight: 2, arbitrary: memberArb },
      { weight: 2, arbitrary: nestArb },
      { weight: 1, arbitrary: dropArb },
    );
    await fc.assert(
      fc.asyncProperty(treeArb, fc.array(changeArb, { minLength: 3, maxLength: 8 }), async (setup, changes) => {
        const p = `t${++run}`;
        const groups = await makeGroups(p);
        const subject = groups.subject;
        let workspaces: string[] = [];
        let contents: string[] = [];
        const pick = (i: number) => (workspaces.length === 0 ? undefined : workspaces[i % workspaces.length]);
        let n = 0;
        const ops = [...setup, ...changes];
        for (const [step, op] of ops.entries()) {
          const compare = step >= setup.length - 1;
          let token: string | undefined;
          try {
            switch (op.kind) {
              case "workspace": {
                const id = `${p}-w${n++}`;
                const parentId = op.parent < 0 ? undefined : pick(op.parent);
                token = (await directory.createWorkspace("owner", "opt", { id, name: id, ...(parentId ? { parentId } : {}) })).token;
                workspaces.push(id);
                break;
              }
              case "delete": {
                const id = pick(op.index);
                if (!id) continue;
                token = (await directory.deleteWorkspace("owner", id)).token;
                // The workspaces below go with it, and all content in them.
                const kept = new Set((await app.domain.store.read.workspaces.getMany(workspaces)).map((w) => w.id));
                workspaces = workspaces.filter((w) => kept.has(w));
                const left = new Set((await app.domain.store.read.content.getMany(contents)).map((c) => c.id));
                contents = contents.filter((c) => left.has(c));
                break;
              }
              case "level": {
                const id = pick(op.index);
                if (!id) continue;
                token =
                  op.level === "none"
                    ? (await directory.removeWorkspacePermission("owner", id, subject(op.subject))).token
                    : (await directory.setWorkspacePermission("owner", id, subject(op.subject), op.level)).token;
                break;
              }
              case "guest":
              case "see": {
                const id = pick(op.index);
                if (!id) continue;
                const who = subject(op.subject);
                token =
                  op.kind === "guest"
                    ? (op.on ? await directory.addWorkspaceGuest("owner", id, who) : await directory.removeWorkspaceGuest("owner", id, who)).token
                    : (op.on ? await directory.grantWorkspaceSee("owner", id, who) : await directory.revokeWorkspaceSee("owner", id, who)).token;
                break;
              }
              case "content": {
                const ws = pick(op.index);
                if (!ws) continue;
                const id = `${p}-d${n++}`;
                await catalog.createContent("owner", { kind: "dashboard", workspaceId: ws, id, name: id });
                contents.push(id);
                token = (await sharing.share("owner", { type: "dashboard", id }, subject(op.subject), op.role)).token;
                break;
              }
              case "member":
              case "nest":
              case "drop":
                token = await groups.change(op);
                break;
            }
          } catch (err) {
            // Refusals (R6 eligibility, unknown rows after a delete, duplicates) are answers too; they change nothing.
            if (!(err instanceof DomainError)) throw err;
            continue;
          }
          if (!compare) continue;
          await syncReference();
          const items: CheckItem[] = [];
          for (const w of workspaces) for (const who of groups.everyone) for (const permission of WORKSPACE_PERMISSIONS) items.push({ resource: { type: "workspace", id: w }, permission, subject: who });
          for (const c of contents) for (const who of groups.everyone) for (const permission of CONTENT_PERMISSIONS) items.push({ resource: { type: "dashboard", id: c }, permission, subject: who });
          if (items.length === 0) continue;
          const ours = await permissions.checkBulk(items, token ? { kind: "at_least_as_fresh", token } : { kind: "fully_consistent" });
          const theirs = await reference.checkBulk(items, { kind: "fully_consistent" });
          const differ = items.flatMap((item, i) =>
            ours.results[i]!.allowed === theirs.results[i]!.allowed
              ? []
              : [`${item.subject.type}:${item.subject.id} ${item.permission} ${item.resource.type}:${item.resource.id}: sharegraph ${ours.results[i]!.allowed}, reference ${theirs.results[i]!.allowed}`],
          );
          expect(differ, `after ${JSON.stringify(op)}`).toEqual([]);
        }
      }),
      { numRuns: 12, endOnFailure: true },
    );
  }, 600_000);
});
