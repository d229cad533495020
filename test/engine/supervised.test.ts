/**
 * Issue 8 (Scale): the supervised engine (SHAREGRAPH_ENGINE=spicedb), a real
 * `spicedb serve` on a Postgres datastore that sharegraph starts itself. Its
 * calls are the remote engine's, and the engine suite runs against a real
 * server in remote.test.ts; here is what supervision promises: it waits
 * until SpiceDB serves, starts it again when it dies (with a doubling
 * backoff), stops it with SIGTERM and SIGKILL after a bound, never leaves it
 * orphaned, logs its output through pino without secrets, and fails a start
 * with SpiceDB's own words.
 *
 * Needs the binary (npm run spicedb:build) and a Postgres (TEST_DATABASE_URL);
 * otherwise skipped, and the title says why.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EngineError } from "../../src/engine/engine.js";
import { loadSchemaText } from "../../src/engine/schema.js";
import { createDatabaseIfMissing, dropDatabase, prepareDatastore } from "../../src/engine/spicedb-datastore.js";
import {
  SpiceDbProcess,
  SpiceDbStartError,
  defaultOrphanGuard,
  freePort,
  type OrphanGuard,
} from "../../src/engine/spicedb-process.js";
import { createSupervisedEngine, supervisedDatastoreUri, type SupervisedSpiceDb, type SupervisedSpiceDbOptions } from "../../src/engine/supervised.js";
import { SPICEDB_BINARY, freshDatastoreUri, quietLogger, realSpiceDb, realSpiceDbTitle } from "../support/spicedb-server.js";

type LogEntry = { level: number; msg: string } & Record<string, unknown>;

/** A pino logger at debug whose lines are kept, parsed. */
function capturingLogger() {
  const entries: LogEntry[] = [];
  const log = pino({ level: "debug" }, { write: (line: string) => void entries.push(JSON.parse(line) as LogEntry) });
  return { log, entries };
}

/** The restart delays the supervisor scheduled, in order. */
function scheduledDelays(entries: readonly LogEntry[]): unknown[] {
  return entries.filter((e) => e.msg === "SpiceDB restart scheduled").map((e) => e.delayMs);
}

const DEBUG = 20;
const INFO = 30;
const WARN = 40;

/** Running, not a zombie (an orphan reparented to a PID 1 that does not reap would stay one). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Waits for cond, failing with `what` after ms (a bound against hangs, not a speed assertion). */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function cmdline(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
}

function environ(pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").filter(Boolean);
}

describe.skipIf(!realSpiceDb.available)(realSpiceDbTitle("supervised SpiceDB (spicedb serve on Postgres)"), () => {
  let datastoreUri: string;
  const options = (overrides: Partial<SupervisedSpiceDbOptions> = {}): SupervisedSpiceDbOptions => ({
    binary: SPICEDB_BINARY,
    datastoreUri,
    // The smallest pool there is: SpiceDB still gets the write connections it cannot work without.
    poolSize: 1,
    timeoutMs: 5_000,
    maxUpdatesPerWrite: 1000,
    supervision: { restartBackoffMs: 100, stopTimeoutMs: 5_000 },
    ...overrides,
  });

  beforeAll(() => {
    datastoreUri = freshDatastoreUri();
  });

  afterAll(async () => {
    if (datastoreUri) await dropDatabase(datastoreUri);
  });

  describe("one supervised SpiceDB", () => {
    let supervised: SupervisedSpiceDb;
    const logs = capturingLogger();

    beforeAll(async () => {
      // stableAfterMs: no uptime in this file resets the backoff, so its sequence is known.
      supervised = await createSupervisedEngine(
        options({ maxUpdatesPerWrite: 7, supervision: { restartBackoffMs: 100, maxRestartBackoffMs: 60_000, stableAfterMs: 600_000 } }),
        logs.log,
      );
      await supervised.engine.writeSchema(loadSchemaText());
    });

    afterAll(async () => {
      await supervised?.engine.close();
    });

    it("is kind 'spicedb', serves when start resolves, and gives SpiceDB its write limit as --write-relationships-max-updates-per-call", async () => {
      expect(supervised.engine.kind).toBe("spicedb");
      expect(supervised.process.ready).toBe(true);
      expect(supervised.engine.maxUpdatesPerWrite).toBe(7);
      const pid = supervised.process.pid!;
      const args = cmdline(pid);
      expect(args).toContain("serve");
      expect(args).toContain("--write-relationships-max-updates-per-call=7");
      expect(args).toContain(`--grpc-addr=${supervised.process.endpoint}`);
      expect(args).toEqual(expect.arrayContaining(["--datastore-conn-pool-read-max-open=1", "--datastore-conn-pool-write-max-open=3"]));
      expect(supervised.process.endpoint).toMatch(/^127\.0\.0\.1:\d+$/);
      // No second port: no HTTP gateway, no metrics, no dispatch cluster; no calls home.
      expect(args).toEqual(expect.arrayContaining(["--http-enabled=false", "--metrics-enabled=false", "--dispatch-cluster-enabled=false", "--telemetry-endpoint=", "--skip-release-check"]));
      // Caches stay on: nothing turns them off.
      expect(args.filter((a) => /cache-enabled=false|cache-max-cost=0\b/.test(a))).toEqual([]);
      expect(await supervised.engine.readSchema()).toContain("definition dashboard");
    });

    it("has SpiceDB's Postgres driver prepare its statements once per connection (default_query_exec_mode=cache_statement), unless the URI says otherwise", () => {
      expect(new URL(supervisedDatastoreUri(datastoreUri)).searchParams.get("default_query_exec_mode")).toBe("cache_statement");
      const pooler = `${datastoreUri}${datastoreUri.includes("?") ? "&" : "?"}default_query_exec_mode=simple_protocol`;
      expect(new URL(supervisedDatastoreUri(pooler)).searchParams.getAll("default_query_exec_mode")).toEqual(["simple_protocol"]);
      expect(environ(supervised.process.pid!).find((e) => e.startsWith("SPICEDB_DATASTORE_CONN_URI="))).toContain("default_query_exec_mode=cache_statement");
    });

    it("talks to a datastore on a loopback address without TLS, unless the URI asks for it; never changes it for another host", () => {
      expect(new URL(supervisedDatastoreUri("postgres://u@127.0.0.1:5432/db")).searchParams.get("sslmode")).toBe("disable");
      expect(new URL(supervisedDatastoreUri("postgres://u@localhost/db")).searchParams.get("sslmode")).toBe("disable");
      expect(new URL(supervisedDatastoreUri("postgres://u@127.0.0.1/db?sslmode=require")).searchParams.getAll("sslmode")).toEqual(["require"]);
      expect(new URL(supervisedDatastoreUri("postgres://u@db.internal:5432/db")).searchParams.has("sslmode")).toBe(false);
    });

    it("keeps its secrets off the command line and SpiceDB's flag variables of ours out of its environment", async () => {
      const pid = supervised.process.pid!;
      const env = environ(pid);
      const key = env.find((e) => e.startsWith("SPICEDB_GRPC_PRESHARED_KEY="))?.split("=")[1];
      expect(key).toMatch(/^[A-Za-z0-9_-]{32}$/);
      expect(env.find((e) => e.startsWith("SPICEDB_DATASTORE_CONN_URI="))).toBe(`SPICEDB_DATASTORE_CONN_URI=${supervisedDatastoreUri(datastoreUri)}`);
      expect(env.filter((e) => e.startsWith("SPICEDB_")).map((e) => e.split("=")[0]).sort()).toEqual(["SPICEDB_DATASTORE_CONN_URI", "SPICEDB_GRPC_PRESHARED_KEY"]);
      expect(cmdline(pid).join(" ")).not.toContain(key);
      expect(cmdline(pid).join(" ")).not.toContain(datastoreUri);
    });

    it("logs SpiceDB's output through pino at debug (its warnings too), never with the preshared key", () => {
      const spicedbLines = logs.entries.filter((e) => e.msg.startsWith("SpiceDB: "));
      expect(spicedbLines.find((e) => e.msg === "SpiceDB: grpc server started serving")).toMatchObject({ level: DEBUG, spicedb: { addr: supervised.process.endpoint } });
      expect(spicedbLines.every((e) => e.level === DEBUG)).toBe(true);
      const key = environ(supervised.process.pid!).find((e) => e.startsWith("SPICEDB_GRPC_PRESHARED_KEY="))!.split("=")[1]!;
      expect(JSON.stringify(logs.entries)).not.toContain(key);
      expect(logs.entries.some((e) => e.msg === "SpiceDB serving" && e.level === INFO)).toBe(true);
    });

    it("a SpiceDB killed with SIGKILL is started again on the same port, and calls work again", async () => {
      const before = supervised.process.pid!;
      const restarts = supervised.process.restarts;
      process.kill(before, "SIGKILL");
      await until(() => !supervised.process.ready, 10_000, "noticing the crash");
      await supervised.process.whenReady();
      expect(supervised.process.restarts).toBe(restarts + 1);
      expect(supervised.process.pid).not.toBe(before);
      expect(running(before)).toBe(false);
      const token = await supervised.engine.write([
        // view_role: the cumulative relation direct_view reads (graph.ts writes it beside every grant).
        { op: "touch", relationship: { resource: { type: "dashboard", id: "after-restart" }, relation: "view_role", subject: { type: "user", id: "ann" } } },
      ]);
      const check = { resource: { type: "dashboard", id: "after-restart" }, permission: "direct_view", subject: { type: "user", id: "ann" } };
      expect((await supervised.engine.check(check, { kind: "at_least_as_fresh", token })).allowed).toBe(true);
      const crash = logs.entries.find((e) => e.msg === "SpiceDB exited; restarting it");
      expect(crash).toMatchObject({ level: WARN, exit: "signal SIGKILL" });
    });

    it("crashing again and again, it is restarted after a doubling backoff (100, 200, 400, 800 ms here)", async () => {
      for (let i = 0; i < 3; i++) {
        await supervised.process.whenReady();
        process.kill(supervised.process.pid!, "SIGKILL");
        await until(() => !supervised.process.ready, 10_000, "noticing the crash");
      }
      await supervised.process.whenReady();
      // The previous test's crash was the first.
      expect(scheduledDelays(logs.entries)).toEqual([100, 200, 400, 800]);
      expect(await supervised.engine.readSchema()).toContain("definition dashboard");
    });

    it("closing the engine stops its SpiceDB (once, however often it is closed); calls afterwards fail with EngineError", async () => {
      const pid = supervised.process.pid!;
      await Promise.all([supervised.engine.close(), supervised.engine.close()]);
      await supervised.engine.close();
      expect(running(pid)).toBe(false);
      expect(logs.entries.filter((e) => e.msg === "SpiceDB stopped")).toHaveLength(1);
      await expect(supervised.engine.readSchema()).rejects.toBeInstanceOf(EngineError);
      await expect(supervised.engine.readSchema()).rejects.toMatchObject({ kind: "unavailable" });
    });
  });

  describe("restart backoff", () => {
    async function crashTwice(supervision: { maxRestartBackoffMs?: number; stableAfterMs: number }) {
      const logs = capturingLogger();
      const spicedb = new SpiceDbProcess(
        { binary: SPICEDB_BINARY, datastoreUri, port: await freePort(), presharedKey: "backoff-test-key-0123456789", maxUpdatesPerWrite: 1000, poolSize: 1 },
        logs.log,
        { restartBackoffMs: 100, ...supervision },
      );
      try {
        await spicedb.start();
        for (let i = 0; i < 2; i++) {
          process.kill(spicedb.pid!, "SIGKILL");
          await until(() => !spicedb.ready, 10_000, "noticing the crash");
          await spicedb.whenReady();
        }
      } finally {
        await spicedb.stop();
      }
      return scheduledDelays(logs.entries);
    }

    it("is capped at maxRestartBackoffMs", async () => {
      expect(await crashTwice({ maxRestartBackoffMs: 150, stableAfterMs: 600_000 })).toEqual([100, 150]);
    });

    it("starts over after a process that stayed up stableAfterMs", async () => {
      expect(await crashTwice({ stableAfterMs: 0 })).toEqual([100, 100]);
    });
  });

  describe("stop", () => {
    async function startProcess(stopTimeoutMs: number) {
      const logs = capturingLogger();
      const spicedb = new SpiceDbProcess(
        { binary: SPICEDB_BINARY, datastoreUri, port: await freePort(), presharedKey: "stop-test-key-0123456789", maxUpdatesPerWrite: 1000, poolSize: 1 },
        logs.log,
        { stopTimeoutMs },
      );
      await spicedb.start();
      return { spicedb, logs, pid: spicedb.pid! };
    }

    it("SIGTERM ends it gracefully; stop() is idempotent and it is not restarted", async () => {
      const { spicedb, logs, pid } = await startProcess(10_000);
      await Promise.all([spicedb.stop(), spicedb.stop()]);
      expect(running(pid)).toBe(false);
      expect(logs.entries.some((e) => e.msg === "SpiceDB: gracefully shutting down")).toBe(true);
      expect(logs.entries.some((e) => /SIGKILL|restart/.test(e.msg))).toBe(false);
      expect(spicedb.pid).toBeUndefined();
      await expect(spicedb.start()).rejects.toThrow(/stopped/);
    });

    it("a SpiceDB that does not react to SIGTERM (here: stopped with SIGSTOP) gets SIGKILL after the bound", async () => {
      const { spicedb, logs, pid } = await startProcess(300);
      process.kill(pid, "SIGSTOP");
      await spicedb.stop();
      expect(running(pid)).toBe(false);
      expect(logs.entries.find((e) => e.msg === "SpiceDB did not stop after SIGTERM; sending SIGKILL")).toMatchObject({ pid, boundMs: 300 });
      expect(logs.entries.some((e) => e.msg === "SpiceDB exited; restarting it")).toBe(false);
    });
  });

  describe("never an orphan", () => {
    // pdeathsig where setpriv can set it (Linux), and the watchdog used elsewhere.
    const guards: OrphanGuard[] = defaultOrphanGuard() === "pdeathsig" ? ["pdeathsig", "watchdog"] : ["watchdog"];
    const script = fileURLToPath(new URL("../support/spicedb-orphan-child.ts", import.meta.url));
    const root = fileURLToPath(new URL("../..", import.meta.url));

    it(`when the Node process that supervises it is killed with SIGKILL, its SpiceDB dies too (${guards.join(", ")})`, async () => {
      const parent = spawn(process.execPath, ["--import", "tsx", script, SPICEDB_BINARY, datastoreUri, ...guards], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      parent.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
      parent.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
      const exited = new Promise((resolve) => parent.once("exit", resolve));
      try {
        await until(() => out.endsWith("\n") || parent.exitCode !== null, 60_000, `the child supervisor starting SpiceDB (${err})`);
        const pids = out.trim().split(" ").map(Number);
        expect(pids, err).toHaveLength(guards.length);
        for (const pid of pids) {
          expect(running(pid)).toBe(true);
          expect(cmdline(pid)).toContain("serve");
        }
        parent.kill("SIGKILL");
        await exited;
        for (const pid of pids) await until(() => !running(pid), 10_000, `SpiceDB ${pid} dying with its parent`);
      } finally {
        if (parent.exitCode === null) parent.kill("SIGKILL");
      }
    });
  });

  describe("a start that fails says why", () => {
    it("a binary that is not there: could not run it", async () => {
      const spicedb = new SpiceDbProcess(
        { binary: "/nonexistent/spicedb", datastoreUri, port: await freePort(), presharedKey: "k".repeat(20), maxUpdatesPerWrite: 1000, poolSize: 1 },
        quietLogger(),
      );
      const failure = spicedb.start();
      await expect(failure).rejects.toBeInstanceOf(SpiceDbStartError);
      await expect(failure).rejects.toThrow("could not run /nonexistent/spicedb: not an executable file");
      await spicedb.stop();
    });

    it("a datastore database that does not exist: SpiceDB's own message (its error logged as our warning), and nothing left running", async () => {
      const missing = freshDatastoreUri();
      const logs = capturingLogger();
      const spicedb = new SpiceDbProcess(
        { binary: SPICEDB_BINARY, datastoreUri: missing, port: await freePort(), presharedKey: "k".repeat(20), maxUpdatesPerWrite: 1000, poolSize: 1 },
        logs.log,
      );
      await expect(spicedb.start()).rejects.toThrow(/exited \(code \d+\) before it was ready; its last output:[\s\S]*does not exist/);
      expect(spicedb.pid).toBeUndefined();
      expect(logs.entries.find((e) => e.msg === "SpiceDB: terminated with errors")).toMatchObject({ level: WARN, spicedb: { error: expect.stringContaining("does not exist") } });
      await spicedb.stop();
    });

    it("a datastore that was never migrated: not ready within the bound, killed, with SpiceDB's complaint", async () => {
      const bare = freshDatastoreUri();
      expect(await createDatabaseIfMissing(bare)).toBe(true);
      try {
        const spicedb = new SpiceDbProcess(
          { binary: SPICEDB_BINARY, datastoreUri: bare, port: await freePort(), presharedKey: "k".repeat(20), maxUpdatesPerWrite: 1000, poolSize: 1 },
          quietLogger(),
          { readyTimeoutMs: 1_500, stopTimeoutMs: 1_000 },
        );
        await expect(spicedb.start()).rejects.toThrow(/did not report SERVING .* within 1500 ms; its last output:[\s\S]*not migrated/);
        expect(spicedb.pid).toBeUndefined();
        await spicedb.stop();
      } finally {
        await dropDatabase(bare);
      }
    });

    it("prepareDatastore: an unreachable Postgres is named; the database is created only once and migrating again is a no-op", async () => {
      const closed = new URL(freshDatastoreUri());
      closed.port = String(await freePort());
      closed.password = "secret-pw";
      const failure = prepareDatastore(SPICEDB_BINARY, closed.toString(), quietLogger());
      await expect(failure).rejects.toThrow(new RegExp(`^could not prepare SpiceDB's datastore postgres://[^ ]*:\\*\\*\\*@127\\.0\\.0\\.1:${closed.port}/sg_spicedb_\\w+: .*ECONNREFUSED`));
      await expect(failure).rejects.not.toThrow(/secret-pw/);

      const uri = freshDatastoreUri();
      try {
        expect((await prepareDatastore(SPICEDB_BINARY, uri, quietLogger())).created).toBe(true);
        const again = await prepareDatastore(SPICEDB_BINARY, uri, quietLogger());
        expect(again.created).toBe(false);
        expect(await again.record.builtFor()).toBeUndefined();
        await again.record.markBuilt("postgres://db.example/sharegraph");
        expect(await (await prepareDatastore(SPICEDB_BINARY, uri, quietLogger())).record.builtFor()).toBe("postgres://db.example/sharegraph");
      } finally {
        await dropDatabase(uri);
      }
    });
  });
});
