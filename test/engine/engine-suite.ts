/**
 * One test suite for every Engine implementation (in the spirit of OpenFGA's
 * storage test suite, which runs against every backend). embedded.test.ts and
 * remote.test.ts call engineSuite() with their own factory.
 *
 * The engine is made once per suite (beforeAll) with the real schema
 * (schema/sharegraph.zed). Tests never depend on each other's data: each one
 * builds its own objects under a fresh id prefix, so they can run in any
 * order against the shared datastore.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  EngineError,
  type CheckItem,
  type Consistency,
  type Engine,
  type EngineErrorKind,
  type ObjectRef,
  type Relationship,
  type RelationshipUpdate,
  type SubjectRef,
  type TraceNode,
} from "../../src/engine/engine.js";
import { describeSchema, loadSchemaText, transitionalSchema } from "../../src/engine/schema.js";
import { BULK_SLICE } from "../../src/engine/spicedb-engine.js";
import { withCumulativeRelations } from "../../src/domain/graph.js";

export interface EngineHandle {
  engine: Engine;
  /** Closes the engine and whatever backs it (idempotent is not required). */
  close(): Promise<void>;
}

const FULLY: Consistency = { kind: "fully_consistent" };
const MINIMIZE: Consistency = { kind: "minimize_latency" };
const fresh = (token: string): Consistency => ({ kind: "at_least_as_fresh", token });

// ---------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------

let sequence = 0;
const RUN = Date.now().toString(36);

/** A prefix no other test uses; SpiceDB ids allow [a-zA-Z0-9/_|\-=+]. */
function prefix(label: string): string {
  sequence += 1;
  return `${label}-${RUN}-${sequence}`;
}

const obj = (type: string, id: string): ObjectRef => ({ type, id });
const user = (id: string): SubjectRef => ({ type: "user", id });
const members = (groupId: string): SubjectRef => ({ type: "group", id: groupId, relation: "member" });
const asSubject = (o: ObjectRef): SubjectRef => ({ type: o.type, id: o.id });
const rel = (resource: ObjectRef, relation: string, subject: SubjectRef): Relationship => ({ resource, relation, subject });
/** A grant or workspace level with the cumulative relations sharegraph writes beside it (src/domain/graph.ts). */
const granted = (resource: ObjectRef, relation: string, subject: SubjectRef): Relationship[] => withCumulativeRelations(rel(resource, relation, subject));
const touch = (relationship: Relationship): RelationshipUpdate => ({ op: "touch", relationship });
const remove = (relationship: Relationship): RelationshipUpdate => ({ op: "delete", relationship });
const item = (resource: ObjectRef, permission: string, subject: SubjectRef): CheckItem => ({ resource, permission, subject });

/** Relationships as comparable strings, sorted. */
function texts(rels: Iterable<Relationship>): string[] {
  return [...rels]
    .map((r) => `${r.resource.type}:${r.resource.id}#${r.relation}@${r.subject.type}:${r.subject.id}${r.subject.relation ? `#${r.subject.relation}` : ""}`)
    .sort();
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of iterable) out.push(x);
  return out;
}

/** Rejects if the promise has not settled within ms: a hang fails fast instead of hitting the test timeout. */
async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Asserts the promise rejects with an EngineError (never a raw gRPC error) of the given kind. */
async function expectEngineError(promise: Promise<unknown>, kind: EngineErrorKind): Promise<EngineError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  expect(caught, "expected the call to fail").toBeDefined();
  expect(caught).toBeInstanceOf(EngineError);
  const err = caught as EngineError;
  expect(err.name).toBe("EngineError");
  expect(err.kind, err.message).toBe(kind);
  expect(err.message).not.toBe("");
  return err;
}

/**
 * A small sharegraph tenant:
 *
 *   organization acme: carol, dave, erin, wendy (mallory is an outsider)
 *   group staff ⊇ group analysts#member ⊇ group emea_team#member
 *     staff: erin;  analysts: dave;  emea_team: carol
 *   workspace emea (org acme): viewer staff#member, manager wendy
 *   folder q3 (in emea): viewer analysts#member; holds dashboard q3_revenue and report q3_pipeline
 *   dashboard q3_revenue: manager mallory (no workspace access, so the cap leaves her nothing)
 *
 * Expected: carol (via emea_team ⊂ analysts) and dave view q3_revenue and
 * q3_pipeline through the folder; erin sees the workspace but was granted
 * nothing on the content; wendy manages everything in the workspace.
 */
function tenant(p: string) {
  const o = {
    org: obj("organization", `${p}-acme`),
    staff: obj("group", `${p}-staff`),
    analysts: obj("group", `${p}-analysts`),
    emeaTeam: obj("group", `${p}-emea_team`),
    workspace: obj("workspace", `${p}-emea`),
    folder: obj("folder", `${p}-q3`),
    dashboard: obj("dashboard", `${p}-q3_revenue`),
    report: obj("report", `${p}-q3_pipeline`),
  };
  const u = {
    carol: user(`${p}-carol`),
    dave: user(`${p}-dave`),
    erin: user(`${p}-erin`),
    wendy: user(`${p}-wendy`),
    mallory: user(`${p}-mallory`),
  };
  const relationships: Relationship[] = [
    ...[u.carol, u.dave, u.erin, u.wendy].map((x) => rel(o.org, "member", x)),
    ...[o.staff, o.analysts, o.emeaTeam].map((g) => rel(g, "organization", asSubject(o.org))),
    rel(o.staff, "member", members(o.analysts.id)),
    rel(o.staff, "member", u.erin),
    rel(o.analysts, "member", members(o.emeaTeam.id)),
    rel(o.analysts, "member", u.dave),
    rel(o.emeaTeam, "member", u.carol),
    rel(o.workspace, "organization", asSubject(o.org)),
    ...workspaceSelf(o.workspace),
    ...granted(o.workspace, "viewer", members(o.staff.id)),
    ...granted(o.workspace, "manager", u.wendy),
    rel(o.folder, "workspace", asSubject(o.workspace)),
    ...granted(o.folder, "viewer", members(o.analysts.id)),
    rel(o.folder, "child_dashboard", asSubject(o.dashboard)),
    rel(o.folder, "child_report", asSubject(o.report)),
    rel(o.dashboard, "workspace", asSubject(o.workspace)),
    rel(o.dashboard, "folder", asSubject(o.folder)),
    rel(o.dashboard, "creator", u.wendy),
    ...granted(o.dashboard, "manager", u.mallory),
    rel(o.report, "workspace", asSubject(o.workspace)),
    rel(o.report, "folder", asSubject(o.folder)),
  ];
  return { ...o, ...u, relationships };
}

/** The workspace tree's closure of a workspace alone: the workspace itself (as sharegraph writes it, src/domain/graph.ts). */
function workspaceSelf(workspace: ReturnType<typeof obj>): Relationship[] {
  return ["ancestor_or_self", "descendant_or_self", "relative"].map((relation) => rel(workspace, relation, asSubject(workspace)));
}

/** n dashboards in one folder of one workspace, viewable by the group's members through the folder. */
function dashboardsInFolder(p: string, n: number) {
  const workspace = obj("workspace", `${p}-ws`);
  const folder = obj("folder", `${p}-folder`);
  const group = obj("group", `${p}-readers`);
  const reader = user(`${p}-reader`);
  const ids = Array.from({ length: n }, (_, i) => `${p}-dash-${String(i).padStart(3, "0")}`);
  const relationships: Relationship[] = [
    rel(group, "member", reader),
    ...granted(workspace, "viewer", members(group.id)),
    ...workspaceSelf(workspace),
    rel(folder, "workspace", asSubject(workspace)),
    ...granted(folder, "viewer", members(group.id)),
    ...ids.flatMap((id) => [
      rel(obj("dashboard", id), "workspace", asSubject(workspace)),
      rel(obj("dashboard", id), "folder", asSubject(folder)),
    ]),
  ];
  return { workspace, folder, group, reader, ids, relationships };
}

/**
 * Every path of granted nodes from root down to a relation node accepted by
 * `accept` (the relation that grants). SpiceDB evaluates the branches of a
 * union or intersection concurrently, so their order in the trace varies:
 * look at all paths, not the first one found.
 */
function grantingPaths(node: TraceNode, accept: (leaf: TraceNode) => boolean): TraceNode[][] {
  if (!node.hasPermission) return [];
  const here = !node.isPermission && accept(node) ? [[node]] : [];
  return [...here, ...node.children.flatMap((child) => grantingPaths(child, accept).map((path) => [node, ...path]))];
}

function allNodes(node: TraceNode): TraceNode[] {
  return [node, ...node.children.flatMap(allNodes)];
}

const label = (n: TraceNode): string => `${n.resource.type}:${n.resource.id}#${n.name}`;

// ---------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------

export function engineSuite(name: string, makeEngine: () => Promise<EngineHandle>): void {
  describe(name, () => {
    // The engine's mechanics (subject sets, nested dispatch, traces through them) are exercised with
    // nested groups written as group#member subjects, which the transitional schema still allows;
    // sharegraph itself writes the closure (src/domain/graph.ts, tested in test/domain).
    const schemaText = transitionalSchema(loadSchemaText());
    let handle: EngineHandle | undefined;
    let engine: Engine;

    /** Writes the relationships (in one call) and returns the write's token. */
    async function seed(relationships: readonly Relationship[]): Promise<string> {
      return engine.write(relationships.map(touch));
    }

    async function allowed(check: CheckItem, consistency: Consistency = FULLY): Promise<boolean> {
      return (await engine.check(check, consistency)).allowed;
    }

    beforeAll(async () => {
      handle = await makeEngine();
      engine = handle.engine;
      await engine.writeSchema(schemaText);
    });

    afterAll(async () => {
      await handle?.close();
    });

    it("names its kind and its write limit", () => {
      expect(engine.kind).toMatch(/^[a-z]+$/);
      expect(Number.isInteger(engine.maxUpdatesPerWrite)).toBe(true);
      expect(engine.maxUpdatesPerWrite).toBeGreaterThan(0);
    });

    describe("schema", () => {
      it("readSchema returns what writeSchema wrote: same definitions, relations and permissions", async () => {
        await engine.writeSchema(schemaText);
        const read = await engine.readSchema();
        const expected = describeSchema(schemaText);
        const actual = describeSchema(read);
        expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
        for (const [type, def] of expected) {
          expect([...(actual.get(type)?.relations ?? [])].sort(), `${type} relations`).toEqual([...def.relations].sort());
          expect([...(actual.get(type)?.permissions ?? [])].sort(), `${type} permissions`).toEqual([...def.permissions].sort());
        }
        expect(read).toContain("permission view_in_tree = relative->local_view");
      });

      it("writeSchema replaces the schema (an added definition reads back; the original restores)", async () => {
        const extended = `${schemaText}\n\ndefinition engine_suite_probe {\n    relation reader: user\n    permission read = reader\n}\n`;
        try {
          await engine.writeSchema(extended);
          const read = await engine.readSchema();
          expect(describeSchema(read).get("engine_suite_probe")?.permissions).toEqual(new Set(["read"]));
        } finally {
          await engine.writeSchema(schemaText);
        }
        expect(describeSchema(await engine.readSchema()).has("engine_suite_probe")).toBe(false);
      });

      it("an unparsable schema is refused with invalid_argument and the current schema stays", async () => {
        const err = await expectEngineError(engine.writeSchema("definition user { relation"), "invalid_argument");
        expect(err.message).toMatch(/parse error/);
        expect(describeSchema(await engine.readSchema()).has("dashboard")).toBe(true);
      });
    });

    describe("write", () => {
      it("returns a non-empty token, and TOUCH of the same relationships twice is idempotent", async () => {
        const t = tenant(prefix("touch"));
        const first = await seed(t.relationships);
        const second = await seed(t.relationships);
        expect(first).not.toBe("");
        expect(second).not.toBe("");
        const stored = await collect(engine.readRelationships({ resourceType: "folder", resourceId: t.folder.id }, fresh(second)));
        expect(texts(stored)).toEqual(texts(t.relationships.filter((r) => r.resource.id === t.folder.id)));
        expect(await allowed(item(t.dashboard, "view", t.carol), fresh(second))).toBe(true);
      });

      it("DELETE is idempotent: deleting twice, or deleting one that never existed, succeeds", async () => {
        const p = prefix("delete");
        const grant = rel(obj("dashboard", `${p}-d`), "viewer", user(`${p}-u`));
        const written = await engine.write([touch(grant)]);
        expect(await collect(engine.readRelationships({ resourceType: "dashboard", resourceId: `${p}-d` }, fresh(written)))).toHaveLength(1);
        const deleted = await engine.write([remove(grant)]);
        expect(deleted).not.toBe("");
        const again = await engine.write([remove(grant)]);
        expect(again).not.toBe("");
        const never = await engine.write([remove(rel(obj("dashboard", `${p}-never`), "editor", members(`${p}-nobody`)))]);
        expect(never).not.toBe("");
        expect(await collect(engine.readRelationships({ resourceType: "dashboard", resourceId: `${p}-d` }, fresh(again)))).toEqual([]);
      });

      it("applies touches and deletes of one call together", async () => {
        const p = prefix("mixed");
        const d = obj("dashboard", `${p}-d`);
        const before = rel(d, "viewer", user(`${p}-old`));
        const after = rel(d, "editor", user(`${p}-new`));
        await engine.write([touch(before)]);
        const token = await engine.write([remove(before), touch(after)]);
        expect(texts(await collect(engine.readRelationships({ resourceType: "dashboard", resourceId: d.id }, fresh(token))))).toEqual(
          texts([after]),
        );
      });

      it("is atomic: one bad update (unknown relation) fails the call and nothing of it is written", async () => {
        const p = prefix("atomic");
        const good = rel(obj("dashboard", `${p}-d`), "viewer", user(`${p}-u`));
        const bad = rel(obj("dashboard", `${p}-d`), "no_such_relation", user(`${p}-u`));
        await expectEngineError(engine.write([touch(good), touch(bad)]), "failed_precondition");
        expect(await collect(engine.readRelationships({ resourceType: "dashboard", resourceId: `${p}-d` }, FULLY))).toEqual([]);
      });

      it("accepts exactly maxUpdatesPerWrite updates in one call", async () => {
        const p = prefix("max");
        const reader = user(`${p}-reader`);
        const updates = Array.from({ length: engine.maxUpdatesPerWrite }, (_, i) =>
          touch(rel(obj("dashboard", `${p}-d${i}`), "viewer", reader)),
        );
        const token = await engine.write(updates);
        const stored = await collect(engine.readRelationships({ resourceType: "dashboard", subject: asSubject(reader) }, fresh(token)));
        expect(stored).toHaveLength(engine.maxUpdatesPerWrite);
      });

      it("refuses more than maxUpdatesPerWrite updates with invalid_argument and writes nothing", async () => {
        const p = prefix("over");
        const reader = user(`${p}-reader`);
        const updates = Array.from({ length: engine.maxUpdatesPerWrite + 1 }, (_, i) =>
          touch(rel(obj("dashboard", `${p}-d${i}`), "viewer", reader)),
        );
        const err = await expectEngineError(engine.write(updates), "invalid_argument");
        expect(err.message).toContain(String(engine.maxUpdatesPerWrite));
        expect(await collect(engine.readRelationships({ resourceType: "dashboard", subject: asSubject(reader) }, FULLY))).toEqual([]);
      });
    });

    describe("check", () => {
      it("allows and denies with fully_consistent: nested groups, folder inheritance, workspace caps", async () => {
        const t = tenant(prefix("check"));
        await seed(t.relationships);
        // Through folder q3 ← analysts ← emea_team (carol) or analysts (dave).
        expect(await allowed(item(t.dashboard, "view", t.carol))).toBe(true);
        expect(await allowed(item(t.dashboard, "view", t.dave))).toBe(true);
        expect(await allowed(item(t.report, "view", t.carol))).toBe(true);
        expect(await allowed(item(t.folder, "see_name", t.carol))).toBe(true);
        // erin may view the workspace but was granted nothing on the content.
        expect(await allowed(item(t.workspace, "view", t.erin))).toBe(true);
        expect(await allowed(item(t.dashboard, "view", t.erin))).toBe(false);
        // viewer does not imply edit.
        expect(await allowed(item(t.dashboard, "edit", t.carol))).toBe(false);
        // mallory holds manager on the dashboard but has no access to its workspace (R7 cap).
        expect(await allowed(item(t.dashboard, "granted_manage", t.mallory))).toBe(true);
        expect(await allowed(item(t.dashboard, "view", t.mallory))).toBe(false);
        expect(await allowed(item(t.dashboard, "manage", t.mallory))).toBe(false);
        // wendy, workspace MANAGE, manages all content of it.
        expect(await allowed(item(t.dashboard, "manage", t.wendy))).toBe(true);
        expect(await allowed(item(t.dashboard, "delete", t.wendy))).toBe(true);
        // Unknown object ids are simply denied.
        expect(await allowed(item(obj("dashboard", `${t.dashboard.id}-missing`), "view", t.carol))).toBe(false);
      });

      it("at_least_as_fresh(token of a write) sees that write, and a revoke's token never sees the old access", async () => {
        const p = prefix("fresh");
        const d = obj("dashboard", `${p}-d`);
        const ws = obj("workspace", `${p}-ws`);
        const frank = user(`${p}-frank`);
        const grant = granted(d, "viewer", frank);
        const written = await engine.write([
          touch(rel(d, "workspace", asSubject(ws))),
          ...workspaceSelf(ws).map(touch),
          ...granted(ws, "viewer", frank).map(touch),
          ...grant.map(touch),
        ]);
        expect(await engine.check(item(d, "view", frank), fresh(written))).toMatchObject({ allowed: true });
        const revoked = await engine.write(grant.map(remove));
        expect(revoked).not.toBe(written);
        expect(await engine.check(item(d, "view", frank), fresh(revoked))).toMatchObject({ allowed: false });
        expect(await engine.check(item(d, "view", frank), FULLY)).toMatchObject({ allowed: false });
      });

      it("at_exact_snapshot answers at exactly a write's snapshot, before and after a later revoke", async () => {
        const p = prefix("exact");
        const d = obj("dashboard", `${p}-d`);
        const grant = granted(d, "viewer", user(`${p}-u`));
        const written = await engine.write(grant.map(touch));
        const revoked = await engine.write(grant.map(remove));
        const check = item(d, "direct_view", user(`${p}-u`));
        expect(await engine.check(check, { kind: "at_exact_snapshot", token: written })).toMatchObject({ allowed: true });
        expect(await engine.check(check, { kind: "at_exact_snapshot", token: revoked })).toMatchObject({ allowed: false });
        const bulk = await engine.checkBulk([check, check], { kind: "at_exact_snapshot", token: written });
        expect(bulk.results.map((r) => r.allowed)).toEqual([true, true]);
      });

      it("returns a non-empty token under every consistency", async () => {
        const p = prefix("token");
        const written = await engine.write(granted(obj("dashboard", `${p}-d`), "viewer", user(`${p}-u`)).map(touch));
        const check = item(obj("dashboard", `${p}-d`), "direct_view", user(`${p}-u`));
        for (const consistency of [FULLY, fresh(written)]) {
          const result = await engine.check(check, consistency);
          expect(result.allowed, consistency.kind).toBe(true);
          expect(result.token, consistency.kind).toMatch(/\S/);
        }
        // minimize_latency may answer from a snapshot older than the write (SpiceDB's
        // quantization window), so only its token is asserted.
        expect((await engine.check(check, MINIMIZE)).token).toMatch(/\S/);
      });
    });

    describe("checkBulk", () => {
      it("keeps request order and mixes allowed and denied, with a token", async () => {
        const t = tenant(prefix("bulk"));
        const token = await seed(t.relationships);
        const items = [
          item(t.dashboard, "view", t.erin), // denied
          item(t.dashboard, "view", t.carol), // allowed
          item(t.dashboard, "manage", t.mallory), // denied
          item(t.dashboard, "manage", t.wendy), // allowed
          item(t.report, "view", t.dave), // allowed
          item(t.report, "edit", t.dave), // denied
          item(t.workspace, "view", t.erin), // allowed
        ];
        const result = await engine.checkBulk(items, fresh(token));
        expect(result.results).toEqual([false, true, false, true, true, false, true].map((a) => ({ allowed: a })));
        expect(result.token).toMatch(/\S/);
        // Reversed input, reversed answers.
        const reversed = await engine.checkBulk([...items].reverse(), fresh(token));
        expect(reversed.results.map((r) => r.allowed)).toEqual([true, false, true, true, false, true, false]);
      });

      it("answers more items than one request to SpiceDB carries (sent in slices) in request order, with one token", async () => {
        const t = tenant(prefix("bulkmany"));
        const token = await seed(t.relationships);
        // Carol may view the dashboard, erin may not: 2.5 slices, alternating, with a per-item error in the last slice.
        const count = BULK_SLICE * 2 + BULK_SLICE / 2;
        const items = Array.from({ length: count }, (_, i) =>
          i === count - 3 ? item(t.dashboard, "no_such_permission", t.carol) : item(t.dashboard, "view", i % 2 === 0 ? t.carol : t.erin),
        );
        const result = await engine.checkBulk(items, fresh(token));
        expect(result.results).toHaveLength(count);
        expect(result.results.map((r, i) => (i === count - 3 ? r.error !== undefined : r.allowed))).toEqual(items.map((_, i) => i === count - 3 || i % 2 === 0));
        expect(result.token).toMatch(/\S/);
      });

      it("answers an unknown permission with a per-item error while the other items still answer", async () => {
        const t = tenant(prefix("bulkerr"));
        const token = await seed(t.relationships);
        const result = await engine.checkBulk(
          [item(t.dashboard, "view", t.carol), item(t.dashboard, "no_such_permission", t.carol), item(t.dashboard, "view", t.erin)],
          fresh(token),
        );
        expect(result.results).toHaveLength(3);
        expect(result.results[0]).toEqual({ allowed: true });
        expect(result.results[1]?.allowed).toBe(false);
        expect(result.results[1]?.error).toMatch(/no_such_permission/);
        expect(result.results[2]).toEqual({ allowed: false });
      });

      it("fails the whole call with invalid_argument for a malformed object id (SpiceDB validates the request first)", async () => {
        const t = tenant(prefix("bulkbad"));
        await seed(t.relationships);
        const err = await expectEngineError(
          engine.checkBulk([item(t.dashboard, "view", t.carol), item(obj("dashboard", "not a valid id!"), "view", t.carol)], FULLY),
          "invalid_argument",
        );
        expect(err.message).toMatch(/object_id/);
      });

      it("answers no items with no results", async () => {
        expect((await engine.checkBulk([], FULLY)).results).toEqual([]);
      });
    });

    describe("checkWithTrace", () => {
      it("returns a trace whose root names the resource and permission and whose granted nodes reach the granting relation", async () => {
        const t = tenant(prefix("trace"));
        const token = await seed(t.relationships);
        const result = await engine.checkWithTrace(item(t.report, "view", t.carol), fresh(token));
        expect(result.allowed).toBe(true);
        expect(result.token).toMatch(/\S/);
        const root = result.trace;
        expect(root).toBeDefined();
        if (!root) return;
        expect(root).toMatchObject({ resource: t.report, name: "view", isPermission: true, hasPermission: true });
        expect(root.subject).toMatchObject(t.carol);
        // carol is granted by two paths: folder q3#viewer (read as its cumulative view_role) → group analysts#member →
        // group emea_team#member ∋ carol, and the workspace's VIEW through staff ⊇ analysts ⊇ emea_team. SpiceDB
        // stops a union at its first granted branch, and which branch answers first is not fixed, so the trace
        // holds one or both: every granted path to emea_team runs through analysts and one of the two grants.
        const paths = grantingPaths(root, (n) => n.resource.type === "group" && n.resource.id === t.emeaTeam.id && n.name === "member").map(
          (path) => path.map(label),
        );
        expect(paths.length, "a granted path to group emea_team#member").toBeGreaterThan(0);
        for (const labels of paths) {
          expect(labels[0]).toBe(`report:${t.report.id}#view`);
          expect(labels.slice(-2)).toEqual([`group:${t.analysts.id}#member`, `group:${t.emeaTeam.id}#member`]);
          // Either the folder's own grant (folder → analysts → emea_team) or the workspace's (… → staff → analysts → emea_team).
          const viaStaff = labels.includes(`group:${t.staff.id}#member`);
          if (viaStaff) expect(labels.some((l) => l.startsWith(`workspace:${t.workspace.id}#`)), labels.join(" → ")).toBe(true);
          else expect(labels.slice(-3)[0], labels.join(" → ")).toBe(`folder:${t.folder.id}#view_role`);
        }
        // The workspace side of the intersection (R7 cap) is granted too.
        const capPaths = grantingPaths(root, (n) => n.resource.id === t.workspace.id && n.name === "view_level");
        expect(capPaths.length).toBeGreaterThan(0);
      });

      it("for a denial returns a trace with nothing granted on the content side", async () => {
        const t = tenant(prefix("tracedeny"));
        const token = await seed(t.relationships);
        const result = await engine.checkWithTrace(item(t.report, "view", t.erin), fresh(token));
        expect(result.allowed).toBe(false);
        expect(result.trace).toMatchObject({ resource: t.report, name: "view", hasPermission: false });
        const granted = allNodes(result.trace!).filter((n) => n.hasPermission && n.resource.type === "report");
        expect(granted.map(label)).toEqual([]);
      });

      it("for a permission that is an alias (dashboard#view = member_view) the root still names the asked-for permission", async () => {
        const t = tenant(prefix("tracealias"));
        const token = await seed(t.relationships);
        const result = await engine.checkWithTrace(item(t.dashboard, "view", t.dave), fresh(token));
        expect(result.allowed).toBe(true);
        expect(result.trace?.resource).toEqual(t.dashboard);
        // SpiceDB traces the alias target (member_view); the engine keeps "view" at the root above it.
        expect(result.trace?.name).toBe("view");
        expect(result.trace?.children.map((c) => c.name)).toEqual(["member_view"]);
        const paths = result.trace ? grantingPaths(result.trace, (n) => n.resource.id === t.analysts.id && n.name === "member") : [];
        expect(paths.map((path) => path.map(label)).filter((labels) => labels.includes(`folder:${t.folder.id}#view_role`))).toHaveLength(1);
      });
    });

    describe("lookupResources", () => {
      it("streams every viewable id exactly once", async () => {
        const s = dashboardsInFolder(prefix("lr"), 25);
        const token = await seed(s.relationships);
        const found = await collect(engine.lookupResources({ resourceType: "dashboard", permission: "view", subject: s.reader }, fresh(token)));
        expect(found.map((r) => r.resourceId).sort()).toEqual(s.ids);
        for (const r of found) expect(r.token).toMatch(/\S/);
        // A non-member sees none of them.
        const outsider = await collect(
          engine.lookupResources({ resourceType: "dashboard", permission: "view", subject: user(`${s.reader.id}-outsider`) }, fresh(token)),
        );
        expect(outsider).toEqual([]);
      });

      it("respects limit and resumes with cursor: pages of 10, 10, 5 without duplicates or gaps", async () => {
        const s = dashboardsInFolder(prefix("page"), 25);
        const token = await seed(s.relationships);
        const pages: string[][] = [];
        let cursor: string | undefined;
        for (let guard = 0; guard < 10; guard++) {
          const page = await collect(
            engine.lookupResources({ resourceType: "dashboard", permission: "view", subject: s.reader, limit: 10, cursor }, fresh(token)),
          );
          for (const r of page) expect(r.cursor).not.toBe("");
          pages.push(page.map((r) => r.resourceId));
          if (page.length < 10) break;
          cursor = page.at(-1)?.cursor;
        }
        expect(pages.map((p) => p.length)).toEqual([10, 10, 5]);
        const all = pages.flat();
        expect(new Set(all).size).toBe(all.length);
        expect([...all].sort()).toEqual(s.ids);
      });

      it("past the last page, a cursor yields nothing", async () => {
        const s = dashboardsInFolder(prefix("end"), 10);
        const token = await seed(s.relationships);
        const page = await collect(
          engine.lookupResources({ resourceType: "dashboard", permission: "view", subject: s.reader, limit: 10 }, fresh(token)),
        );
        expect(page).toHaveLength(10);
        const cursor = page.at(-1)?.cursor;
        const rest = await collect(
          engine.lookupResources({ resourceType: "dashboard", permission: "view", subject: s.reader, limit: 10, cursor }, fresh(token)),
        );
        expect(rest).toEqual([]);
      });

      it("stops when the consumer breaks out of the loop (no hang) and the engine keeps answering", async () => {
        const s = dashboardsInFolder(prefix("break"), 40);
        const token = await seed(s.relationships);
        const seen = await within(
          5000,
          (async () => {
            const ids: string[] = [];
            for await (const r of engine.lookupResources({ resourceType: "dashboard", permission: "view", subject: s.reader }, fresh(token))) {
              ids.push(r.resourceId);
              if (ids.length === 3) break;
            }
            return ids;
          })(),
          "breaking out of lookupResources",
        );
        expect(seen).toHaveLength(3);
        // The same call still works afterwards, in full.
        const all = await collect(engine.lookupResources({ resourceType: "dashboard", permission: "view", subject: s.reader }, fresh(token)));
        expect(all).toHaveLength(40);
      });

      it("an abort signal ends the stream with an EngineError, mid-stream and when already aborted", async () => {
        const s = dashboardsInFolder(prefix("abort"), 40);
        const token = await seed(s.relationships);
        const query = { resourceType: "dashboard", permission: "view", subject: s.reader } as const;

        const controller = new AbortController();
        let seen = 0;
        await expectEngineError(
          within(
            5000,
            (async () => {
              for await (const _ of engine.lookupResources(query, fresh(token), controller.signal)) {
                seen += 1;
                if (seen === 2) controller.abort();
              }
            })(),
            "aborting lookupResources",
          ),
          "unavailable",
        );
        expect(seen).toBeGreaterThanOrEqual(2);
        expect(seen).toBeLessThan(40);

        let early = 0;
        await expectEngineError(
          within(
            5000,
            (async () => {
              for await (const _ of engine.lookupResources(query, fresh(token), AbortSignal.abort())) early += 1;
            })(),
            "lookupResources with an aborted signal",
          ),
          "unavailable",
        );
        expect(early).toBe(0);
      });
    });

    describe("lookupSubjects", () => {
      it("returns the users who may view, including through nested groups and workspace MANAGE", async () => {
        const t = tenant(prefix("ls"));
        const token = await seed(t.relationships);
        const found = await collect(engine.lookupSubjects({ resource: t.dashboard, permission: "view", subjectType: "user" }, fresh(token)));
        expect(found.map((s) => s.subjectId).sort()).toEqual([t.carol.id, t.dave.id, t.wendy.id].sort());
        for (const s of found) {
          expect(s.excludedIds).toEqual([]);
          expect(s.token).toMatch(/\S/);
        }
        // Group membership itself flattens nested groups.
        const staff = await collect(engine.lookupSubjects({ resource: t.staff, permission: "member", subjectType: "user" }, fresh(token)));
        expect(staff.map((s) => s.subjectId).sort()).toEqual([t.carol.id, t.dave.id, t.erin.id].sort());
      });

      it("returns groups for a subject relation (group#member)", async () => {
        const t = tenant(prefix("lsgroup"));
        const token = await seed(t.relationships);
        const found = await collect(
          engine.lookupSubjects(
            { resource: t.folder, permission: "viewer", subjectType: "group", subjectRelation: "member" },
            fresh(token),
          ),
        );
        const ids = found.map((s) => s.subjectId);
        expect(ids).toContain(t.analysts.id);
        expect(ids).not.toContain(t.staff.id);
      });

      it("returns a wildcard grant as subject id '*'", async () => {
        const p = prefix("wild");
        const org = obj("organization", `${p}-channel`);
        const token = await engine.write([touch(rel(org, "channel_partner", user("*")))]);
        const found = await collect(engine.lookupSubjects({ resource: org, permission: "channel_partner", subjectType: "user" }, fresh(token)));
        expect(found.map((s) => ({ id: s.subjectId, excluded: s.excludedIds }))).toEqual([{ id: "*", excluded: [] }]);
      });
    });

    describe("readRelationships", () => {
      it("filters by resource type and id, relation, and subject (with and without relation)", async () => {
        const t = tenant(prefix("read"));
        const token = await seed(t.relationships);
        const at = fresh(token);
        const expected = (f: (r: Relationship) => boolean) => texts(t.relationships.filter(f));

        const byId = await collect(engine.readRelationships({ resourceType: "dashboard", resourceId: t.dashboard.id }, at));
        expect(texts(byId)).toEqual(expected((r) => r.resource.id === t.dashboard.id));
        expect(byId).toHaveLength(7); // workspace, folder, creator, manager and its view_role, share_role, edit_role

        const byRelation = await collect(
          engine.readRelationships({ resourceType: "group", resourceId: t.analysts.id, relation: "member" }, at),
        );
        expect(texts(byRelation)).toEqual(expected((r) => r.resource.id === t.analysts.id && r.relation === "member"));

        const bySubject = await collect(
          engine.readRelationships({ resourceType: "organization", subject: { type: "user", id: t.carol.id } }, at),
        );
        expect(texts(bySubject)).toEqual([`organization:${t.org.id}#member@user:${t.carol.id}`]);

        const bySubjectRelation = await collect(
          engine.readRelationships({ resourceType: "group", subject: { type: "group", id: t.emeaTeam.id, relation: "member" } }, at),
        );
        expect(texts(bySubjectRelation)).toEqual([`group:${t.analysts.id}#member@group:${t.emeaTeam.id}#member`]);
        // The relation is kept on subject sets and absent on plain subjects.
        expect(bySubjectRelation[0]?.subject).toEqual(members(t.emeaTeam.id));
        expect(bySubject[0]?.subject).toEqual(t.carol);

        const subjectWithoutRelation = await collect(
          engine.readRelationships({ resourceType: "group", resourceId: t.staff.id, subject: { type: "user", relation: "" } }, at),
        );
        expect(texts(subjectWithoutRelation)).toEqual([`group:${t.staff.id}#member@user:${t.erin.id}`]);

        const none = await collect(engine.readRelationships({ resourceType: "dashboard", resourceId: `${t.dashboard.id}-missing` }, at));
        expect(none).toEqual([]);
      });
    });

    describe("deleteMatching", () => {
      it("removes exactly the matching relationships and returns a token later reads honour", async () => {
        const p = prefix("delmatch");
        const leaver = user(`${p}-leaver`);
        const stayer = user(`${p}-stayer`);
        const ds = [obj("dashboard", `${p}-d1`), obj("dashboard", `${p}-d2`)];
        const folder = obj("folder", `${p}-f`);
        const keep = [
          ...ds.flatMap((d) => granted(d, "viewer", stayer)),
          ...granted(folder, "viewer", leaver), // another type: not matched
          rel(ds[0]!, "folder", asSubject(folder)),
        ];
        const drop = ds.flatMap((d) => [...granted(d, "viewer", leaver), rel(d, "editor", leaver)]);
        await seed([...keep, ...drop]);

        const token = await engine.deleteMatching({ resourceType: "dashboard", subject: { type: "user", id: leaver.id } });
        expect(token).toMatch(/\S/);

        const left = [
          ...(await collect(engine.readRelationships({ resourceType: "dashboard", resourceId: ds[0]!.id }, fresh(token)))),
          ...(await collect(engine.readRelationships({ resourceType: "dashboard", resourceId: ds[1]!.id }, fresh(token)))),
          ...(await collect(engine.readRelationships({ resourceType: "folder", resourceId: folder.id }, fresh(token)))),
        ];
        expect(texts(left)).toEqual(texts(keep));
        expect(await allowed(item(ds[0]!, "direct_view", leaver), fresh(token))).toBe(false);
        expect(await allowed(item(ds[0]!, "direct_view", stayer), fresh(token))).toBe(true);
      });

      it("narrowed by resource id and relation, and matching nothing is fine", async () => {
        const p = prefix("delnarrow");
        const d = obj("dashboard", `${p}-d`);
        const rels = [rel(d, "viewer", user(`${p}-a`)), rel(d, "viewer", user(`${p}-b`)), rel(d, "editor", user(`${p}-a`))];
        await seed(rels);
        const token = await engine.deleteMatching({ resourceType: "dashboard", resourceId: d.id, relation: "viewer" });
        const left = await collect(engine.readRelationships({ resourceType: "dashboard", resourceId: d.id }, fresh(token)));
        expect(texts(left)).toEqual(texts([rels[2]!]));
        const nothing = await engine.deleteMatching({ resourceType: "dashboard", resourceId: `${p}-never` });
        expect(nothing).toMatch(/\S/);
      });
    });

    describe("errors are EngineErrors with SpiceDB's kind", () => {
      it("an unknown permission → failed_precondition (check, checkWithTrace, lookupResources, lookupSubjects)", async () => {
        const p = prefix("unknownperm");
        const d = obj("dashboard", `${p}-d`);
        const u = user(`${p}-u`);
        const err = await expectEngineError(engine.check(item(d, "no_such_permission", u), FULLY), "failed_precondition");
        expect(err.message).toMatch(/no_such_permission/);
        await expectEngineError(engine.checkWithTrace(item(d, "no_such_permission", u), FULLY), "failed_precondition");
        await expectEngineError(
          collect(engine.lookupResources({ resourceType: "dashboard", permission: "no_such_permission", subject: u }, FULLY)),
          "failed_precondition",
        );
        await expectEngineError(
          collect(engine.lookupSubjects({ resource: d, permission: "no_such_permission", subjectType: "user" }, FULLY)),
          "failed_precondition",
        );
      });

      it("an unknown object type → failed_precondition (check, readRelationships, deleteMatching)", async () => {
        await expectEngineError(engine.check(item(obj("spreadsheet", "s1"), "view", user("u1")), FULLY), "failed_precondition");
        await expectEngineError(collect(engine.readRelationships({ resourceType: "spreadsheet" }, FULLY)), "failed_precondition");
        await expectEngineError(engine.deleteMatching({ resourceType: "spreadsheet" }), "failed_precondition");
      });

      it("an invalid object id → invalid_argument (check, write, lookupResources)", async () => {
        const bad = obj("dashboard", "q3 revenue!");
        const err = await expectEngineError(engine.check(item(bad, "view", user("u1")), FULLY), "invalid_argument");
        expect(err.message).toMatch(/object_id/);
        await expectEngineError(engine.write([touch(rel(bad, "viewer", user("u1")))]), "invalid_argument");
        await expectEngineError(
          collect(engine.lookupResources({ resourceType: "dashboard", permission: "view", subject: user("not valid!") }, FULLY)),
          "invalid_argument",
        );
      });

      it("a subject type the relation does not allow → invalid_argument", async () => {
        const p = prefix("badsubject");
        await expectEngineError(
          engine.write([touch(rel(obj("dashboard", `${p}-d`), "viewer", { type: "workspace", id: `${p}-ws` }))]),
          "invalid_argument",
        );
      });

      it("a malformed consistency token → invalid_argument", async () => {
        await expectEngineError(engine.check(item(obj("dashboard", "d1"), "view", user("u1")), fresh("not-a-zedtoken")), "invalid_argument");
      });
    });

    describe("close", () => {
      it("close() is idempotent, and calls after close fail with an EngineError", async () => {
        const other = await makeEngine();
        try {
          await other.engine.writeSchema(schemaText);
          await other.engine.close();
          await other.engine.close();
          await Promise.all([other.engine.close(), other.engine.close()]);
          let caught: unknown;
          try {
            await other.engine.check(item(obj("dashboard", "d1"), "view", user("u1")), FULLY);
          } catch (err) {
            caught = err;
          }
          expect(caught).toBeInstanceOf(EngineError);
        } finally {
          await other.close();
        }
      });
    });
  });
}
