/**
 * The App's lifecycle: a restart on the same data keeps every relationship
 * (Postgres is the system of record; the embedded SpiceDB is rebuilt from
 * it), stop() is idempotent, and a start-up that fails closes what it
 * opened.
 *
 * PGlite mode restarts on the same data directory; with TEST_DATABASE_URL,
 * on the same Postgres schema.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { App } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { Role } from "../src/gen/sharegraph/v1/common_pb.js";
import { DirectoryService, WorkspaceLevel } from "../src/gen/sharegraph/v1/directory_service_pb.js";
import { HealthCheckResponse_ServingStatus as Status } from "../src/gen/health/v1/health_pb.js";
import { PermissionService } from "../src/gen/sharegraph/v1/permission_service_pb.js";
import type { DatabaseTarget } from "../src/store/connect.js";
import { TEST_DATABASE_URL, databaseKind, freshTarget } from "./support/database.js";
import { FaultyEngine } from "./support/faulty-engine.js";
import { ADMIN_KEY, PLATFORM_ADMIN, bearer, startTestServer, type Clients, type TestServer } from "./support/server.js";

type Ref = { type: string; id: string };
type Subject = { type: string; id: string; relation: string };

const user = (id: string): Subject => ({ type: "user", id, relation: "" });
const group = (id: string): Subject => ({ type: "group", id, relation: "member" });
const org = (id: string): Subject => ({ type: "organization", id, relation: "member" });
const atLeastAsFresh = (token: string) => ({ requirement: { case: "atLeastAsFresh" as const, value: token } });
const fullyConsistent = { requirement: { case: "fullyConsistent" as const, value: true } };

const QUIET = { LOG_LEVEL: "silent" };

async function codeOf(promise: Promise<unknown>): Promise<Code> {
  try {
    await promise;
  } catch (err) {
    return ConnectError.from(err).code;
  }
  throw new Error("expected the call to fail");
}

/** Sockets, servers and pipes this process holds (timers and in-flight requests come and go and are left out). */
function openHandles(): string[] {
  return process
    .getActiveResourcesInfo()
    .filter((r) => !/Timeout|Immediate|Req/.test(r))
    .sort();
}

async function settledHandles(expected: readonly string[]): Promise<string[]> {
  // Closing sockets leave the list a moment after close() resolves.
  const deadline = Date.now() + 5_000;
  let now = openHandles();
  while (JSON.stringify(now) !== JSON.stringify(expected) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    now = openHandles();
  }
  return now;
}

// ---- restart ----------------------------------------------------------------------

describe(`a restart on the same ${databaseKind === "pglite" ? "PGlite data directory" : "Postgres schema"}`, () => {
  const ws = { emea: { type: "workspace", id: "emea" }, sales: { type: "workspace", id: "emea-sales" } };
  const reports = { type: "folder", id: "reports" };
  const q3 = { type: "folder", id: "q3" };
  const dash = { type: "dashboard", id: "q3-dash" };
  const wb = { type: "workbook", id: "wb" };
  const r1 = { type: "report", id: "r1" };
  const people = ["alice", "bob", "carol", "dave", "erin", "frank", "gus"];
  const questions: Array<{ resource: Ref; permission: string; subject: Subject }> = [];
  for (const resource of [ws.emea, ws.sales]) for (const permission of ["view", "analyze", "manage"]) questions.push(...people.map((p) => ({ resource, permission, subject: user(p) })));
  for (const resource of [reports, q3]) for (const permission of ["see_name", "view", "share", "edit", "manage"]) questions.push(...people.map((p) => ({ resource, permission, subject: user(p) })));
  for (const resource of [dash, wb, r1]) for (const permission of ["view", "share", "edit", "manage"]) questions.push(...people.map((p) => ({ resource, permission, subject: user(p) })));
  const key = (q: (typeof questions)[number]) => `${q.resource.type}:${q.resource.id}#${q.permission}@${q.subject.id}`;

  let tmp: string;
  let target: DatabaseTarget;
  let dispose: () => Promise<void> = async () => {};
  let before: TestServer | undefined;
  let after: TestServer | undefined;
  let c: Clients;
  /** Answers noted before the restart, fully consistent. */
  let answers: Record<string, boolean>;
  let expectedRelationships = 0;
  let revokeToken = "";
  let readToken = "";
  let pendingToken = "";

  async function answer(clients: Clients): Promise<Record<string, boolean>> {
    const r = await clients.permission.checkBulkPermissions({ items: questions, consistency: fullyConsistent });
    expect(r.results.filter((x) => x.error !== "")).toEqual([]);
    return Object.fromEntries(questions.map((q, i) => [key(q), r.results[i]!.allowed]));
  }

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "sharegraph-restart-"));
    if (TEST_DATABASE_URL) {
      const fresh = await freshTarget();
      target = fresh.target;
      dispose = fresh.dispose;
    } else {
      target = { kind: "pglite", dataDir: join(tmp, "pglite") };
    }
    const spicedb = await FaultyEngine.create();
    before = await startTestServer({ database: target, env: { OUTBOX_APPLY_TIMEOUT_MS: "300" }, overrides: { engine: async () => spicedb } });
    c = before.clients();
    const d = c.directory;
    const admin = PLATFORM_ADMIN;
    for (const id of people) await d.createUser({ actor: admin, userId: id, email: `${id}@example.com`, displayName: id });
    await d.createOrganization({ actor: admin, organizationId: "acme", name: "Acme", adminUserIds: ["alice"] });
    for (const id of ["bob", "carol", "dave"]) await d.addOrganizationMember({ actor: "alice", organizationId: "acme", userId: id });
    await d.createOrganization({ actor: admin, organizationId: "globex", name: "Globex", channelPartner: true, adminUserIds: ["gus"] });
    await d.createGroup({ actor: "alice", organizationId: "acme", groupId: "analysts", name: "Analysts" });
    await d.createGroup({ actor: "alice", organizationId: "acme", groupId: "leads", name: "Leads" });
    await d.addGroupMember({ actor: "alice", groupId: "analysts", member: user("carol") });
    await d.addGroupMember({ actor: "alice", groupId: "leads", member: user("dave") });
    await d.addGroupMember({ actor: "alice", groupId: "analysts", member: { type: "group", id: "leads", relation: "" } });
    await d.createWorkspace({ actor: "alice", organizationId: "acme", workspaceId: "emea", name: "EMEA" });
    await d.createWorkspace({ actor: "alice", organizationId: "acme", workspaceId: "emea-sales", name: "EMEA Sales", parentWorkspaceId: "emea" });
    await d.setWorkspacePermission({ actor: "alice", workspaceId: "emea", subject: user("bob"), level: WorkspaceLevel.VIEW });
    await d.setWorkspacePermission({ actor: "alice", workspaceId: "emea", subject: group("analysts"), level: WorkspaceLevel.ANALYZE });
    await d.addWorkspaceGuest({ actor: "alice", workspaceId: "emea-sales", subject: user("erin") });
    await d.grantWorkspaceSee({ actor: "alice", workspaceId: "emea-sales", subject: user("frank") });
    await c.content.createFolder({ actor: "alice", workspaceId: "emea-sales", folderId: "reports", name: "Reports" });
    await c.content.createFolder({ actor: "alice", workspaceId: "emea-sales", folderId: "q3", name: "Q3", parentFolderId: "reports" });
    await c.content.createContent({ actor: "alice", kind: "dashboard", contentId: "q3-dash", name: "Q3 dashboard", workspaceId: "emea-sales", folderId: "q3" });
    await c.content.createContent({ actor: "carol", kind: "workbook", contentId: "wb", name: "Workbook", workspaceId: "emea" });
    await c.content.createContent({ actor: "alice", kind: "report", contentId: "r1", name: "Report 1", workspaceId: "emea-sales" });
    await c.content.share({ actor: "alice", resource: reports, subject: user("bob"), role: Role.VIEWER });
    await c.content.share({ actor: "alice", resource: dash, subject: group("analysts"), role: Role.EDITOR });
    await c.content.share({ actor: "carol", resource: wb, subject: org("acme"), role: Role.SHARER });
    // frank is only eligible (SEE): a grant gives him nothing until he can view the workspace.
    await c.content.share({ actor: "alice", resource: r1, subject: user("frank"), role: Role.VIEWER });
    await c.content.share({ actor: "alice", resource: r1, subject: user("dave"), role: Role.VIEWER });
    await c.content.share({ actor: "alice", resource: r1, subject: user("bob"), role: Role.MANAGER });
    revokeToken = (await c.content.unshare({ actor: "alice", resource: r1, subject: user("bob") })).consistencyToken;

    answers = await answer(c);
    const read = await c.permission.checkPermission({ resource: r1, permission: "view", subject: user("dave"), consistency: atLeastAsFresh(revokeToken) });
    expect(read.allowed).toBe(true);
    readToken = read.consistencyToken;
    const drift = await c.admin.reconcile({ dryRun: true });
    expect(drift).toMatchObject({ missing: 0, extra: 0 });
    expectedRelationships = drift.expectedRelationships;

    // Last, a change that only reaches Postgres: SpiceDB is down until the server stops.
    spicedb.breakWrites();
    pendingToken = (await d.removeWorkspacePermission({ actor: "alice", workspaceId: "emea", subject: user("bob") })).consistencyToken;
    expect((await c.admin.getOutboxStatus({})).pendingBatches).toBe(1);
    await before.stop();
    expect(spicedb.closeCalls).toBe(1);

    after = await startTestServer({ database: target });
    c = after.clients();
  });

  afterAll(async () => {
    await before?.stop();
    await after?.stop();
    await dispose();
    await rm(tmp, { recursive: true, force: true });
  });

  it("the answers noted before it include allowed and denied ones", () => {
    const values = Object.values(answers);
    expect(values.filter(Boolean).length).toBeGreaterThan(20);
    expect(values.filter((v) => !v).length).toBeGreaterThan(20);
    expect(answers).toMatchObject({
      "workspace:emea#analyze@dave": true,
      "workspace:emea-sales#view@erin": true,
      "workspace:emea-sales#analyze@erin": false,
      "folder:q3#view@bob": true,
      "dashboard:q3-dash#edit@dave": true,
      "dashboard:q3-dash#edit@bob": false,
      "workbook:wb#share@bob": true,
      "report:r1#view@dave": true,
      "report:r1#view@frank": false,
      "report:r1#manage@bob": false,
      "report:r1#view@gus": false,
    });
  });

  it("every answer is the same afterwards, except what the change committed while SpiceDB was down altered", async () => {
    const now = await answer(c);
    const changed = Object.keys(answers).filter((k) => answers[k] !== now[k]);
    // Bob's VIEW on emea was removed in Postgres just before the stop: it is gone after the restart.
    expect(changed.sort()).toEqual([
      "dashboard:q3-dash#view@bob",
      "folder:q3#see_name@bob",
      "folder:q3#view@bob",
      "folder:reports#see_name@bob",
      "folder:reports#view@bob",
      "workbook:wb#view@bob",
      "workbook:wb#share@bob",
      "workspace:emea#view@bob",
      "workspace:emea-sales#view@bob",
    ].sort());
    expect(changed.every((k) => answers[k] === true && now[k] === false)).toBe(true);
  });

  it("Reconcile finds SpiceDB equal to Postgres, with every relationship there", async () => {
    const drift = await c.admin.reconcile({ dryRun: true });
    expect(drift).toMatchObject({ missing: 0, extra: 0, missingExamples: [], extraExamples: [] });
    // Two relationships fewer: bob's VIEW on emea and the view_level written beside it.
    expect(drift.expectedRelationships).toBe(expectedRelationships - 2);
    expect(drift.actualRelationships).toBe(drift.expectedRelationships);
    expect((await c.admin.getOutboxStatus({})).pendingBatches).toBe(0);
  });

  it("tokens issued before it are still accepted as at_least_as_fresh", async () => {
    const check = (resource: Ref, permission: string, subject: Subject, token: string) =>
      c.permission.checkPermission({ resource, permission, subject, consistency: atLeastAsFresh(token) }).then((r) => r.allowed);
    expect(await check(r1, "manage", user("bob"), revokeToken)).toBe(false);
    expect(await check(r1, "view", user("dave"), readToken)).toBe(true);
    // The token of the change that had not reached SpiceDB before the stop.
    expect(await check(ws.emea, "view", user("bob"), pendingToken)).toBe(false);
    expect(await check(ws.emea, "analyze", user("carol"), pendingToken)).toBe(true);
  });

  it("the restarted server takes writes and reads its own tokens", async () => {
    const granted = await c.directory.setWorkspacePermission({ actor: "alice", workspaceId: "emea", subject: user("gus"), level: WorkspaceLevel.VIEW });
    const r = await c.permission.checkPermission({ resource: ws.sales, permission: "view", subject: user("gus"), consistency: atLeastAsFresh(granted.consistencyToken) });
    expect(r.allowed).toBe(true);
  });

  it("the next start listens while it rebuilds: health NOT_SERVING and reads UNAVAILABLE saying why, then SERVING with the same answers", async () => {
    const expected = await answer(c);
    await after!.stop();
    const spicedb = await FaultyEngine.create();
    spicedb.hold();
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const app = await App.create(loadConfig({ ...QUIET, SHAREGRAPH_ADDR: "127.0.0.1:0", SHAREGRAPH_API_KEYS: `${ADMIN_KEY}:admin` }), {
      database: target,
      engine: async () => spicedb,
      logger,
    });
    try {
      const { port } = await app.start();
      const base = `http://127.0.0.1:${port}`;
      const permission = createClient(PermissionService, createGrpcTransport({ baseUrl: base, interceptors: [bearer(ADMIN_KEY)] }));
      const health = await fetch(`${base}/healthz`);
      expect(health.status).toBe(503);
      expect(await health.text()).toBe("NOT_SERVING: permission index being rebuilt\n");
      expect(app.health.get("")).toBe(Status.NOT_SERVING);
      const refused = await permission.checkPermission({ resource: r1, permission: "view", subject: user("dave") }).catch((e: unknown) => ConnectError.from(e));
      expect(refused).toBeInstanceOf(ConnectError);
      expect((refused as ConnectError).code).toBe(Code.Unavailable);
      expect((refused as ConnectError).rawMessage).toMatch(/^sharegraph is starting: the permission index is being rebuilt from Postgres \(\d+ relationships so far\); retry shortly$/);
      expect(lines.map((l) => l["msg"])).toContain("listening; NOT_SERVING until the permission index is ready (reads answer UNAVAILABLE)");
      expect(lines.map((l) => l["msg"])).not.toContain("serving");

      spicedb.release();
      await app.ready;
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect(lines.map((l) => l["msg"])).toContain("serving");
      const r = await permission.checkBulkPermissions({ items: questions, consistency: fullyConsistent });
      expect(Object.fromEntries(questions.map((q, i) => [key(q), r.results[i]!.allowed]))).toEqual(expected);
    } finally {
      spicedb.release();
      await app.stop(500);
    }
  });
});

describe.skipIf(databaseKind !== "pglite")("the embedded default (SHAREGRAPH_DATA_DIR)", () => {
  it("keeps its PGlite data and its generated API keys across a restart", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sharegraph-datadir-"));
    const env = { ...QUIET, SHAREGRAPH_ADDR: "127.0.0.1:0", SHAREGRAPH_DATA_DIR: dir };
    let app: App | undefined;
    try {
      app = await App.create(loadConfig(env));
      await app.ready;
      expect(app.apiKeys.created).toBe(true);
      const keys = app.apiKeys.keys.map((k) => `${k.secret}:${k.scope}`);
      const adminKey = app.apiKeys.keys.find((k) => k.scope === "admin")!.secret;
      let { port } = await app.start();
      let transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}`, interceptors: [bearer(adminKey)] });
      const d = createClient(DirectoryService, transport);
      await d.createUser({ actor: PLATFORM_ADMIN, userId: "ann", email: "ann@example.com", displayName: "Ann" });
      await d.createOrganization({ actor: PLATFORM_ADMIN, organizationId: "acme", name: "Acme", adminUserIds: ["ann"] });
      await app.stop(500);

      app = await App.create(loadConfig(env));
      await app.ready;
      expect(app.apiKeys.created).toBe(false);
      expect(app.apiKeys.keys.map((k) => `${k.secret}:${k.scope}`)).toEqual(keys);
      ({ port } = await app.start());
      transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}`, interceptors: [bearer(adminKey)] });
      const p = createClient(PermissionService, transport);
      const r = await p.checkPermission({ resource: { type: "organization", id: "acme" }, permission: "manage", subject: user("ann"), consistency: fullyConsistent });
      expect(r.allowed).toBe(true);
      expect((await createClient(DirectoryService, transport).getUser({ userId: "ann" })).user?.email).toBe("ann@example.com");
    } finally {
      await app?.stop(500);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("the embedded engine's advised size (EMBEDDED_ADVISED_MAX_RELATIONSHIPS)", () => {
  const OUTGROWN = "this data has outgrown the embedded engine";

  async function startOn(target: DatabaseTarget, advisedMax: number, write?: (app: App) => Promise<void>): Promise<Array<Record<string, unknown>>> {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const app = await App.create(loadConfig({ ...QUIET, SHAREGRAPH_ADDR: "127.0.0.1:0", SHAREGRAPH_API_KEYS: `${ADMIN_KEY}:admin`, EMBEDDED_ADVISED_MAX_RELATIONSHIPS: String(advisedMax) }), {
      database: target,
      logger,
    });
    await app.ready;
    await write?.(app);
    await app.stop(500);
    return lines.filter((l) => typeof l["msg"] === "string" && (l["msg"] as string).startsWith(OUTGROWN));
  }

  it("warns at start-up, with the count and the advice, once the rebuilt index is larger; not below it", async () => {
    // A PGlite data directory of its own (a template copy would start empty each time).
    const dir = TEST_DATABASE_URL ? undefined : await mkdtemp(join(tmpdir(), "sharegraph-advised-"));
    const fresh = dir ? { target: { kind: "pglite" as const, dataDir: dir }, dispose: () => rm(dir, { recursive: true, force: true }) } : await freshTarget();
    try {
      // The first start rebuilds an empty index; what it writes is rebuilt from Postgres by the next ones.
      const writeSome = async (app: App) => {
        await app.domain.directory.createUser(PLATFORM_ADMIN, { id: "ann", email: "ann@example.com", displayName: "Ann" });
        await app.domain.directory.createOrganization(PLATFORM_ADMIN, { id: "acme", name: "Acme", channelPartner: false, adminUserIds: ["ann"] });
      };
      expect(await startOn(fresh.target, 1, writeSome)).toEqual([]);
      const warned = await startOn(fresh.target, 1);
      expect(warned).toHaveLength(1);
      expect(warned[0]).toMatchObject({ advisedMax: 1 });
      expect(warned[0]!["relationships"]).toBeGreaterThan(1);
      expect(warned[0]!["msg"]).toContain("SHAREGRAPH_ENGINE=spicedb");
      expect(await startOn(fresh.target, 100_000)).toEqual([]);
    } finally {
      await fresh.dispose();
    }
  });
});

// ---- stop -------------------------------------------------------------------------

describe("App.stop()", () => {
  it("is idempotent: concurrent and repeated calls share one shutdown, which closes the engine once", async () => {
    const spicedb = await FaultyEngine.create();
    const server = await startTestServer({ overrides: { engine: async () => spicedb } });
    const first = server.app.stop(500);
    const second = server.app.stop(500);
    expect(second).toBe(first);
    await Promise.all([first, second]);
    await server.app.stop(500);
    await server.stop();
    expect(spicedb.closeCalls).toBe(1);
  });

  it("leaves health NOT_SERVING for the server and every service, and the port closed", async () => {
    const server = await startTestServer();
    expect(server.app.health.get("")).toBe(Status.SERVING);
    await server.stop();

    const statuses = server.app.health.entries();
    expect(statuses.length).toBeGreaterThan(1);
    expect(statuses.filter(([, s]) => s !== Status.NOT_SERVING)).toEqual([]);
    const client = createClient(PermissionService, createGrpcTransport({ baseUrl: server.baseUrl, interceptors: [bearer(ADMIN_KEY)] }));
    expect(await codeOf(client.checkPermission({ resource: { type: "workspace", id: "w" }, permission: "view", subject: user("u") }))).toBe(Code.Unavailable);
  });
});

// ---- start-up failures ------------------------------------------------------------

describe("a start-up that fails", () => {
  const config = loadConfig({ ...QUIET, SHAREGRAPH_ADDR: "127.0.0.1:0", SHAREGRAPH_API_KEYS: `${ADMIN_KEY}:admin` });

  it("on an unreachable Postgres says so, never makes an engine, and leaves nothing open", async () => {
    const baseline = openHandles();
    let enginesMade = 0;
    const engine = async () => {
      enginesMade++;
      return FaultyEngine.create();
    };

    const failure = App.create(config, { database: { kind: "postgres", url: "postgres://postgres@127.0.0.1:1/sharegraph" }, engine });

    await expect(failure).rejects.toThrow(/database migration failed: the database is unreachable \(connect ECONNREFUSED 127\.0\.0\.1:1\)/);
    expect(enginesMade).toBe(0);
    expect(await settledHandles(baseline)).toEqual(baseline);
  });

  it("on a PGlite data directory that cannot be created names the path", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sharegraph-broken-"));
    try {
      await writeFile(join(dir, "not-a-dir"), "");
      const dataDir = join(dir, "not-a-dir", "pglite");
      const baseline = openHandles();

      await expect(App.create(config, { database: { kind: "pglite", dataDir } })).rejects.toThrow(new RegExp(`ENOTDIR.*${dataDir.replace(/[/.]/g, "\\$&")}`));
      expect(await settledHandles(baseline)).toEqual(baseline);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("after the database opened (SpiceDB refuses the schema) closes the engine and the database", async () => {
    const fresh = await freshTarget();
    try {
      const baseline = openHandles();
      const spicedb = await FaultyEngine.create();
      spicedb.breakSchemaWrites();

      await expect(App.create(config, { database: fresh.target, engine: async () => spicedb })).rejects.toThrow("injected fault: SpiceDB is down");

      expect(spicedb.closeCalls).toBe(1);
      // With Postgres, an unclosed pool would still hold its sockets.
      expect(await settledHandles(baseline)).toEqual(baseline);
    } finally {
      await fresh.dispose();
    }
  });
});
