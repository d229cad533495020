/**
 * Issue 8 (Scale): sharegraph with SHAREGRAPH_ENGINE=spicedb, a real
 * `spicedb serve` on a Postgres datastore that the App starts, supervises and
 * stops itself. Over gRPC: a write, then a check with its token; SpiceDB
 * killed → started again by the supervisor, and a write made meanwhile lands;
 * a restart of sharegraph keeps the datastore (no rebuild, old tokens work);
 * a fresh datastore, or one built from another system of record, is detected
 * and rebuilt; stopping leaves no process behind.
 *
 * Needs the binary (npm run spicedb:build) and a Postgres (TEST_DATABASE_URL);
 * otherwise skipped, and the title says why.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import pg from "pg";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Migrator } from "kysely";
import { loadSchemaText, transitionalSchema } from "../src/engine/schema.js";
import { dropDatabase } from "../src/engine/spicedb-datastore.js";
import { WorkspaceLevel } from "../src/gen/sharegraph/v1/directory_service_pb.js";
import { migrationProvider } from "../src/store/migrations/index.js";
import { Store } from "../src/store/store.js";
import { parseRelationship } from "../src/sync/relationship-text.js";
import { kyselyOf } from "./store/helpers.js";
import type { DatabaseTarget } from "../src/store/connect.js";
import { TEST_DATABASE_URL, freshTarget } from "./support/database.js";
import { PLATFORM_ADMIN, startTestServer, type TestServer } from "./support/server.js";
import { SPICEDB_BINARY, freshDatastoreUri, realSpiceDb, realSpiceDbTitle } from "./support/spicedb-server.js";

type LogEntry = { level: number; msg: string } & Record<string, unknown>;

const user = (id: string) => ({ type: "user", id, relation: "" });
const acme = { type: "organization", id: "acme" };
const atLeastAsFresh = (token: string) => ({ requirement: { case: "atLeastAsFresh" as const, value: token } });
const fullyConsistent = { requirement: { case: "fullyConsistent" as const, value: true } };

/** Live `spicedb serve` processes whose parent is this process (this file's App is the only one starting any). */
function spicedbChildren(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(ppid) !== process.pid || state === "Z") continue;
      const args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (args[0] === resolve(SPICEDB_BINARY) && args[1] === "serve") pids.push(Number(entry));
    } catch {
      // Gone while looking.
    }
  }
  return pids;
}

function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

async function until<T>(probe: () => T | undefined, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.skipIf(!realSpiceDb.available)(realSpiceDbTitle("SHAREGRAPH_ENGINE=spicedb: the App supervises a real SpiceDB"), () => {
  let target: DatabaseTarget;
  let disposeTarget: () => Promise<void> = async () => {};
  let datastoreUri: string;
  let server: TestServer | undefined;
  let logs: LogEntry[] = [];
  let annToken = "";
  let bobToken = "";

  /** A sharegraph on `target` whose SpiceDB uses datastoreUri; its log lines go to `logs`. */
  async function start(database: DatabaseTarget = target): Promise<TestServer> {
    logs = [];
    const logger = pino({ level: "debug" }, { write: (line: string) => void logs.push(JSON.parse(line) as LogEntry) });
    return startTestServer({
      env: {
        SHAREGRAPH_ENGINE: "spicedb",
        SPICEDB_BINARY,
        SPICEDB_DATASTORE_URI: datastoreUri,
        SPICEDB_DATASTORE_POOL_SIZE: "2",
      },
      database,
      overrides: { logger },
    });
  }

  const logged = (msg: string) => logs.filter((e) => e.msg === msg);

  async function stop(): Promise<void> {
    await server?.stop();
    server = undefined;
  }

  async function allowed(resource: { type: string; id: string }, permission: string, subject: string, consistency: object): Promise<boolean> {
    const r = await server!.clients().permission.checkPermission({ resource, permission, subject: user(subject), consistency });
    return r.allowed;
  }

  beforeAll(async () => {
    // The system of record must survive a restart: a Postgres schema, or PGlite in a data directory.
    if (TEST_DATABASE_URL) {
      const fresh = await freshTarget();
      target = fresh.target;
      disposeTarget = fresh.dispose;
    } else {
      const dir = await mkdtemp(join(tmpdir(), "sharegraph-spicedb-app-"));
      target = { kind: "pglite", dataDir: dir };
      disposeTarget = () => rm(dir, { recursive: true, force: true });
    }
    datastoreUri = freshDatastoreUri();
    server = await start();
  });

  afterAll(async () => {
    await stop();
    await disposeTarget();
    if (datastoreUri) await dropDatabase(datastoreUri);
  });

  it("starts SpiceDB on a datastore it creates, as a child process, and builds the index there", () => {
    expect(server!.app.domain.engine.kind).toBe("spicedb");
    expect(logged("SpiceDB datastore ready")).toMatchObject([{ created: true }]);
    expect(logged("SpiceDB datastore rebuilt from Postgres")).toHaveLength(1);
    expect(spicedbChildren()).toHaveLength(1);
  });

  it("a write, then a check with its token", async () => {
    const c = server!.clients();
    await c.directory.createUser({ actor: PLATFORM_ADMIN, userId: "ann", email: "ann@acme.example", displayName: "Ann" });
    annToken = (await c.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: "acme", name: "Acme", adminUserIds: ["ann"] })).consistencyToken;
    expect(await allowed(acme, "manage", "ann", atLeastAsFresh(annToken))).toBe(true);
    expect(await allowed(acme, "manage", "bob", atLeastAsFresh(annToken))).toBe(false);
  });

  it("SpiceDB killed → started again by the supervisor, and calls work again: writes, and checks with their tokens", async () => {
    const [before] = spicedbChildren();
    process.kill(before!, "SIGKILL");
    const after = await until(() => spicedbChildren().find((pid) => pid !== before), 10_000, "a new SpiceDB");
    expect(running(before!)).toBe(false);
    // Until it serves, calls answer UNAVAILABLE ("retry shortly"); a caller retries.
    await until(() => (logged("SpiceDB serving").length === 2 ? true : undefined), 10_000, "the new SpiceDB serving");
    const c = server!.clients();
    await c.directory.createUser({ actor: PLATFORM_ADMIN, userId: "bob", email: "bob@acme.example", displayName: "Bob" });
    bobToken = (await c.directory.addOrganizationMember({ actor: "ann", organizationId: "acme", userId: "bob", admin: true })).consistencyToken;
    expect(await allowed(acme, "manage", "bob", atLeastAsFresh(bobToken))).toBe(true);
    expect(await allowed(acme, "manage", "ann", atLeastAsFresh(annToken))).toBe(true);
    expect(spicedbChildren()).toEqual([after]);
    expect(logged("SpiceDB exited; restarting it")).toMatchObject([{ exit: "signal SIGKILL" }]);
    // Health said NOT_SERVING from the crash until the new process served, and says SERVING now.
    expect(logged("SpiceDB down: health is NOT_SERVING until it is restarted; calls that need it answer UNAVAILABLE")).toHaveLength(1);
    expect(logged("SpiceDB serving again: health is SERVING")).toHaveLength(1);
    expect(server!.app.health.down).toEqual([]);
    expect((await fetch(`${server!.baseUrl}/healthz`)).status).toBe(200);
  });

  it("stopping sharegraph stops its SpiceDB: no process left behind", async () => {
    const [pid] = spicedbChildren();
    await stop();
    expect(running(pid!)).toBe(false);
    expect(spicedbChildren()).toEqual([]);
  });

  it("a restart on the same datastore does not rebuild it; answers and tokens from before hold", async () => {
    server = await start();
    expect(logged("SpiceDB datastore ready")).toMatchObject([{ created: false }]);
    expect(logged("SpiceDB datastore rebuilt from Postgres")).toEqual([]);
    expect(await allowed(acme, "manage", "ann", atLeastAsFresh(annToken))).toBe(true);
    expect(await allowed(acme, "manage", "bob", atLeastAsFresh(bobToken))).toBe(true);
    expect(await server.clients().admin.reconcile({ dryRun: true })).toMatchObject({ missing: 0, extra: 0 });
  });

  it("an upgrade from nested groups (before migration 0011): the kept datastore gets the transitional schema, the outbox swaps the nested relationships for the closure, then the schema narrows", async () => {
    const c = server!.clients();
    await c.directory.createUser({ actor: PLATFORM_ADMIN, userId: "carol", email: "carol@acme.example", displayName: "Carol" });
    await c.directory.addOrganizationMember({ actor: "ann", organizationId: "acme", userId: "carol" });
    for (const id of ["analysts", "emea"]) await c.directory.createGroup({ actor: "ann", organizationId: "acme", groupId: id, name: id });
    await c.directory.addGroupMember({ actor: "ann", groupId: "emea", member: user("carol") });
    await c.directory.addGroupMember({ actor: "ann", groupId: "analysts", member: { type: "group", id: "emea", relation: "" } });
    await c.directory.createWorkspace({ actor: "ann", organizationId: "acme", workspaceId: "upgrade", name: "Upgrade" });
    await c.directory.setWorkspacePermission({ actor: "ann", workspaceId: "upgrade", subject: { type: "group", id: "analysts", relation: "" }, level: WorkspaceLevel.VIEW });
    const upgrade = { type: "workspace", id: "upgrade" };
    const emea = { type: "group", id: "emea", relation: "member" };
    const answers = async () => ({
      carol: await allowed(upgrade, "view", "carol", fullyConsistent),
      emea: (await server!.clients().permission.checkPermission({ resource: upgrade, permission: "view", subject: emea, consistency: fullyConsistent })).allowed,
    });
    expect(await answers()).toEqual({ carol: true, emea: true });

    // The datastore as a gateway before 0011 left it: the old schema, nesting as a subject set, no closure.
    const engine = server!.app.domain.engine;
    await engine.writeSchema(transitionalSchema(loadSchemaText()));
    const nested = parseRelationship("group:analysts#member@group:emea#member");
    const closure = ["group:analysts#member@user:carol", "group:analysts#member@user:group|emea", "group:analysts#member@user:group|analysts", "group:emea#member@user:group|emea"];
    await engine.write([{ op: "touch", relationship: nested }, ...closure.map((r) => ({ op: "delete" as const, relationship: parseRelationship(r) }))]);
    await stop();
    // …and the system of record before 0011.
    const store = await Store.open(target);
    try {
      const schema = target.kind === "postgres" ? target.schema : undefined;
      const down = await new Migrator({ db: kyselyOf(store), provider: migrationProvider, ...(schema ? { migrationTableSchema: schema } : {}) }).migrateTo("0010_cumulative_roles");
      expect(down.results?.map((r) => r.migrationName)).toEqual(["0012_content_by_folder_and_kind", "0011_group_closure"]);
    } finally {
      await store.close();
    }

    server = await start();
    expect(logged("database ready")).toMatchObject([{ applied: ["0011_group_closure", "0012_content_by_folder_and_kind"] }]);
    expect(logged("SpiceDB datastore rebuilt from Postgres")).toEqual([]);
    const groupDefinition = /definition group \{[^}]*\}/.exec(await server.app.domain.engine.readSchema())?.[0];
    expect(groupDefinition).toMatch(/relation member: user\b/);
    expect(groupDefinition).not.toContain("group#member");
    const left = [];
    for await (const r of server.app.domain.engine.readRelationships({ resourceType: "group", relation: "member", subject: { type: "group", relation: "member" } }, { kind: "fully_consistent" })) left.push(r);
    expect(left).toEqual([]);
    expect(await answers()).toEqual({ carol: true, emea: true });
    expect(await server.clients().admin.reconcile({ dryRun: true })).toMatchObject({ missing: 0, extra: 0 });
  });

  it("a fresh, empty datastore beside a system of record that is not empty is detected and rebuilt", async () => {
    await stop();
    await dropDatabase(datastoreUri);
    server = await start();
    expect(logged("SpiceDB datastore ready")).toMatchObject([{ created: true }]);
    expect(logged("SpiceDB datastore rebuilt from Postgres")).toMatchObject([{ relationships: expect.any(Number) }]);
    expect(await allowed(acme, "manage", "bob", fullyConsistent)).toBe(true);
    // A token from the old datastore is still accepted (answered fully consistent).
    expect(await allowed(acme, "manage", "ann", atLeastAsFresh(annToken))).toBe(true);
    expect(await server.clients().admin.reconcile({ dryRun: true })).toMatchObject({ missing: 0, extra: 0 });
  });

  it("after a rebuild the datastore's planner statistics describe the rebuilt table, not the empty one of before (ANALYZE)", async () => {
    // Still the server of the test above, which rebuilt into a fresh datastore.
    const [rebuilt] = logged("SpiceDB datastore rebuilt from Postgres") as unknown as Array<{ relationships: number }>;
    expect(rebuilt!.relationships).toBeGreaterThan(0);
    expect(logged("SpiceDB datastore: planner statistics refreshed after the rebuild (ANALYZE)")).toHaveLength(1);
    const client = new pg.Client({ connectionString: datastoreUri });
    await client.connect();
    try {
      // reltuples is what the planner believes: -1 or 0 until an ANALYZE has seen the rows.
      const { rows } = await client.query<{ reltuples: number }>("select reltuples from pg_class where relname = 'relation_tuple'");
      expect(rows[0]!.reltuples).toBeGreaterThanOrEqual(rebuilt!.relationships);
    } finally {
      await client.end();
    }
  });

  it("a datastore Postgres that cannot be reached fails start-up, naming it, and leaves no SpiceDB behind", async () => {
    await stop();
    const unreachable = new URL(datastoreUri);
    unreachable.port = "1";
    const failure = startTestServer({
      env: { SHAREGRAPH_ENGINE: "spicedb", SPICEDB_BINARY, SPICEDB_DATASTORE_URI: unreachable.toString() },
      database: target,
    });
    await expect(failure).rejects.toThrow(`could not prepare SpiceDB's datastore ${unreachable.toString()}: connect ECONNREFUSED 127.0.0.1:1`);
    expect(spicedbChildren()).toEqual([]);
  });

  it("a datastore built from another system of record is rebuilt, and what that one implied is removed", async () => {
    await stop();
    const other = await freshTarget();
    try {
      server = await start(other.target);
      expect(logged("SpiceDB datastore rebuilt from Postgres")).toHaveLength(1);
      expect(await allowed(acme, "manage", "ann", fullyConsistent)).toBe(false);
      expect(await allowed(acme, "manage", "bob", fullyConsistent)).toBe(false);
      expect(await server.clients().admin.reconcile({ dryRun: true })).toMatchObject({ missing: 0, extra: 0 });
      await stop();
    } finally {
      await other.dispose();
    }
  });
});
