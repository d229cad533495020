import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../gen/health/v1/health_pb.js";
import type { Logger } from "../logger.js";
import { isExecutableFile } from "./spicedb-config.js";

/**
 * A `spicedb serve` process that sharegraph starts and supervises itself
 * (SHAREGRAPH_ENGINE=spicedb): plaintext gRPC on a loopback port, a preshared
 * key passed through the environment (never on the command line), no HTTP
 * gateway, no metrics port, no telemetry, no release check, so that several
 * can run on one machine and none talks to the internet.
 *
 * Supervision: start() waits until gRPC health says SERVING; a process that
 * dies is started again after a backoff (doubling, capped); stop() sends
 * SIGTERM and SIGKILL after a bound. The process never outlives sharegraph:
 * on Linux it is started through `setpriv --pdeathsig KILL` (the kernel kills
 * it when its parent dies, however the parent dies); elsewhere a small `sh`
 * watchdog holding a pipe from sharegraph kills it when that pipe closes.
 */

/** How far into the past SpiceDB keeps revisions readable: a LookupResources cursor stays usable this long. */
export const GC_WINDOW = "24h";

export interface SpiceDbServeOptions {
  /** Path of the spicedb binary. */
  readonly binary: string;
  /** postgres:// URI of SpiceDB's datastore (migrated). */
  readonly datastoreUri: string;
  /** Loopback port for gRPC. */
  readonly port: number;
  readonly presharedKey: string;
  /** --write-relationships-max-updates-per-call. */
  readonly maxUpdatesPerWrite: number;
  /** Postgres connections SpiceDB may open for reads; writes get half, at least WRITE_POOL_MIN. */
  readonly poolSize: number;
  /** More `spicedb serve` flags, after ours (the last of a repeated flag wins): benchmarks and profiles. */
  readonly extraArgs?: readonly string[];
}

export interface SupervisionOptions {
  /** How long a start may take until gRPC health says SERVING. */
  readonly readyTimeoutMs: number;
  /** How long stop() waits after SIGTERM before SIGKILL. */
  readonly stopTimeoutMs: number;
  /** First restart delay after a crash; doubles per consecutive crash. */
  readonly restartBackoffMs: number;
  readonly maxRestartBackoffMs: number;
  /** A process that stayed up this long resets the backoff. */
  readonly stableAfterMs: number;
}

export const DEFAULT_SUPERVISION: SupervisionOptions = {
  readyTimeoutMs: 60_000,
  stopTimeoutMs: 10_000,
  restartBackoffMs: 500,
  maxRestartBackoffMs: 30_000,
  stableAfterMs: 30_000,
};

/**
 * SpiceDB's Postgres driver keeps one write-pool connection for its revision
 * heartbeat for as long as it runs, and takes another while garbage collection
 * runs: with fewer than three, writes stall (found the hard way: with one,
 * every WriteSchema hit its deadline).
 */
export const WRITE_POOL_MIN = 3;

/** The arguments of `spicedb serve`; secrets go in spicedbEnvironment(). */
export function serveArgs(o: SpiceDbServeOptions): string[] {
  const read = Math.max(1, o.poolSize);
  const write = Math.max(WRITE_POOL_MIN, Math.ceil(o.poolSize / 2));
  return [
    "serve",
    `--grpc-addr=127.0.0.1:${o.port}`,
    "--http-enabled=false",
    "--metrics-enabled=false",
    "--dispatch-cluster-enabled=false",
    "--telemetry-endpoint=",
    "--skip-release-check",
    "--datastore-engine=postgres",
    `--datastore-conn-pool-read-max-open=${read}`,
    `--datastore-conn-pool-read-min-open=${Math.min(2, read)}`,
    `--datastore-conn-pool-write-max-open=${write}`,
    `--datastore-conn-pool-write-min-open=2`,
    `--datastore-gc-window=${GC_WINDOW}`,
    `--write-relationships-max-updates-per-call=${o.maxUpdatesPerWrite}`,
    // The dispatch and namespace caches are on by default in `serve`; they stay on.
    "--log-format=json",
    "--log-level=info",
    ...(o.extraArgs ?? []),
  ];
}

/**
 * The child's environment: ours without any SPICEDB_* variable (SpiceDB reads
 * SPICEDB_<FLAG> as flags, and sharegraph's own SPICEDB_ENDPOINT… must not
 * leak into it), plus the datastore URI and the preshared key.
 */
export function spicedbEnvironment(secrets: { datastoreUri: string; presharedKey?: string }): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith("SPICEDB_")) env[name] = value;
  env["SPICEDB_DATASTORE_CONN_URI"] = secrets.datastoreUri;
  if (secrets.presharedKey) env["SPICEDB_GRPC_PRESHARED_KEY"] = secrets.presharedKey;
  return env;
}

/** A free loopback port (bound, noted, released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// ---------------------------------------------------------------------------
// Spawning without orphans
// ---------------------------------------------------------------------------

export type OrphanGuard = "pdeathsig" | "watchdog";

let setprivPath: string | null | undefined;

/** `setpriv` (util-linux) if it can set a parent-death signal here, else null. */
function findSetpriv(): string | null {
  if (setprivPath !== undefined) return setprivPath;
  setprivPath = null;
  if (process.platform !== "linux") return null;
  const dirs = (process.env["PATH"] ?? "").split(delimiter).concat(["/usr/bin", "/bin", "/usr/sbin", "/sbin"]);
  for (const dir of dirs) {
    const candidate = join(dir, "setpriv");
    if (!dir || !existsSync(candidate)) continue;
    try {
      execFileSync(candidate, ["--pdeathsig", "KILL", "--", "true"], { stdio: "ignore", timeout: 5_000 });
      setprivPath = candidate;
      break;
    } catch {
      // Too old for --pdeathsig, or not runnable: try the next one.
    }
  }
  return setprivPath;
}

/** The guard spawnGuarded uses by default on this machine. */
export function defaultOrphanGuard(): OrphanGuard {
  return findSetpriv() ? "pdeathsig" : "watchdog";
}

/**
 * Reads a line from stdin (a pipe from sharegraph): "exit" means the child
 * ended normally; end of file means sharegraph is gone, so kill the child.
 */
const WATCHDOG = 'IFS= read -r line; [ "$line" = exit ] || kill -KILL "$1" 2>/dev/null';

export interface GuardedChild {
  readonly child: ChildProcess;
  readonly guard: OrphanGuard;
  /** Resolves when the child has exited and its output is read (its watchdog, if any, is released). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawns `binary args` in its own process group (a terminal's Ctrl-C reaches
 * only sharegraph, which then stops it in order), with stdout and stderr
 * piped, killed by the kernel or the watchdog if sharegraph dies.
 */
export function spawnGuarded(
  binary: string,
  args: readonly string[],
  options: { env: NodeJS.ProcessEnv; cwd: string; guard?: OrphanGuard },
): GuardedChild {
  const guard = options.guard ?? defaultOrphanGuard();
  const setpriv = guard === "pdeathsig" ? findSetpriv() : null;
  if (guard === "pdeathsig" && !setpriv) throw new Error("setpriv --pdeathsig is not available on this machine");
  // The child runs in cwd: a relative path means the caller's working directory.
  const program = resolve(binary);
  const [command, argv] = setpriv ? [setpriv, ["--pdeathsig", "KILL", "--", program, ...args]] : [program, [...args]];
  const child = spawn(command, argv, { env: options.env, cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let watchdog: ChildProcess | undefined;
  if (guard === "watchdog" && child.pid !== undefined) {
    watchdog = spawn("/bin/sh", ["-c", WATCHDOG, "sharegraph-spicedb-watchdog", String(child.pid)], {
      stdio: ["pipe", "ignore", "ignore"],
      detached: true,
    });
    watchdog.on("error", () => {});
    watchdog.stdin?.on("error", () => {});
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    let done = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (done) return;
      done = true;
      watchdog?.stdin?.end("exit\n");
      resolve({ code, signal });
    };
    // "close", not "exit": by then its output is read to the end (error messages quote it).
    child.once("close", finish);
    // spawn failures (ENOENT, EACCES) emit "error" and no "close".
    child.once("error", () => finish(null, null));
  });
  return { child, guard, exited };
}

// ---------------------------------------------------------------------------
// Health
// ---------------------------------------------------------------------------

/** grpc.health.v1.Health/Check for the whole server (""); SpiceDB answers it without the preshared key. */
async function healthStatus(client: grpc.Client, timeoutMs: number): Promise<ServingStatus> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      (req: Uint8Array) => Buffer.from(req),
      (buf: Buffer) => fromBinary(HealthCheckResponseSchema, buf),
      toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: "" })),
      new grpc.Metadata(),
      { deadline: Date.now() + timeoutMs },
      (err, response) => (err || !response ? reject(err ?? new Error("empty health response")) : resolve(response.status)),
    );
  });
}

// ---------------------------------------------------------------------------
// The supervised process
// ---------------------------------------------------------------------------

const OUTPUT_LINES_KEPT = 20;

/**
 * SpiceDB's (zerolog) levels in ours: everything at debug (its warnings at
 * start-up are about features sharegraph does not use, e.g. Watch), except
 * its errors, which are our warnings.
 */
const LEVELS: Record<string, "debug" | "warn"> = {
  trace: "debug",
  debug: "debug",
  info: "debug",
  warn: "debug",
  error: "warn",
  fatal: "warn",
  panic: "warn",
};

export class SpiceDbStartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SpiceDbStartError";
  }
}

/**
 * One `spicedb serve`, kept running: start() resolves once it serves; after
 * a crash it is started again (same port, same key) with backoff; stop()
 * ends it for good.
 */
export class SpiceDbProcess {
  readonly endpoint: string;
  readonly #serve: SpiceDbServeOptions;
  readonly #supervision: SupervisionOptions;
  readonly #log: Logger;
  readonly #guard: OrphanGuard | undefined;
  readonly #recent: string[] = [];
  #current: GuardedChild | undefined;
  #cwd: string | undefined;
  #stopping = false;
  #stopped: Promise<void> | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #launching: Promise<void> | undefined;
  #crashes = 0;
  #restarts = 0;
  #ready = false;
  #readyWaiters: Array<() => void> = [];
  readonly #readinessListeners = new Set<(ready: boolean) => void>();

  constructor(serve: SpiceDbServeOptions, log: Logger, supervision: Partial<SupervisionOptions> = {}, guard?: OrphanGuard) {
    this.#serve = serve;
    this.#supervision = { ...DEFAULT_SUPERVISION, ...supervision };
    this.#log = log;
    this.#guard = guard;
    this.endpoint = `127.0.0.1:${serve.port}`;
  }

  /** The pid of the running process (undefined between a crash and its restart). */
  get pid(): number | undefined {
    return this.#current?.child.exitCode === null && this.#current.child.signalCode === null ? this.#current.child.pid : undefined;
  }

  /** How many times it was started again after dying. */
  get restarts(): number {
    return this.#restarts;
  }

  get guard(): OrphanGuard {
    return this.#current?.guard ?? this.#guard ?? defaultOrphanGuard();
  }

  /** Whether the current process has said SERVING (false while it is down or restarting). */
  get ready(): boolean {
    return this.#ready;
  }

  /** Called with false when a serving process dies and with true when one serves again; returns the unsubscribe. */
  onReadinessChange(listener: (ready: boolean) => void): () => void {
    this.#readinessListeners.add(listener);
    return () => this.#readinessListeners.delete(listener);
  }

  #setReady(ready: boolean): void {
    if (this.#ready === ready) return;
    this.#ready = ready;
    for (const listener of this.#readinessListeners) listener(ready);
  }

  /** Resolves when a process is serving (at once if one is). */
  whenReady(): Promise<void> {
    if (this.#ready) return Promise.resolve();
    return new Promise((resolve) => this.#readyWaiters.push(resolve));
  }

  /** Starts the process and waits until it serves; throws SpiceDbStartError (with its last output) otherwise. */
  async start(): Promise<void> {
    if (this.#stopping) throw new SpiceDbStartError("SpiceDB process already stopped");
    this.#cwd ??= await mkdtemp(join(tmpdir(), "sharegraph-spicedb-"));
    await this.#launch();
  }

  /** SIGTERM, then SIGKILL after stopTimeoutMs; no restart afterwards. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.#stopping = true;
      clearTimeout(this.#restartTimer);
      await this.#launching?.catch(() => {});
      const current = this.#current;
      if (current) await terminate(current, this.#supervision.stopTimeoutMs, this.#log);
      this.#ready = false;
      if (this.#cwd) await rm(this.#cwd, { recursive: true, force: true });
      this.#log.info({ endpoint: this.endpoint }, "SpiceDB stopped");
    })();
    return this.#stopped;
  }

  #launch(): Promise<void> {
    const launching = this.#spawnAndWait();
    this.#launching = launching;
    return launching.finally(() => {
      if (this.#launching === launching) this.#launching = undefined;
    });
  }

  async #spawnAndWait(): Promise<void> {
    const started = Date.now();
    if (!isExecutableFile(this.#serve.binary)) {
      throw new SpiceDbStartError(`could not run ${this.#serve.binary}: not an executable file (npm run spicedb:build builds one)`);
    }
    const spawned = spawnGuarded(this.#serve.binary, serveArgs(this.#serve), {
      env: spicedbEnvironment({ datastoreUri: this.#serve.datastoreUri, presharedKey: this.#serve.presharedKey }),
      cwd: this.#cwd ?? tmpdir(),
      ...(this.#guard ? { guard: this.#guard } : {}),
    });
    this.#current = spawned;
    let spawnError: Error | undefined;
    spawned.child.once("error", (err) => (spawnError = err));
    this.#pipeOutput(spawned.child);
    let exitedEarly = false;
    void spawned.exited.then((exit) => {
      exitedEarly = true;
      this.#onExit(spawned, exit, started);
    });

    const client = new grpc.Client(this.endpoint, grpc.credentials.createInsecure());
    try {
      const deadline = started + this.#supervision.readyTimeoutMs;
      for (;;) {
        if (this.#stopping) {
          await terminate(spawned, this.#supervision.stopTimeoutMs, this.#log);
          throw new SpiceDbStartError("SpiceDB was stopped while it was starting");
        }
        if (exitedEarly) {
          const exit = await spawned.exited;
          const why = spawnError ? `could not run ${this.#serve.binary}: ${spawnError.message}` : `exited (${describeExit(exit)}) before it was ready`;
          throw new SpiceDbStartError(`SpiceDB ${why}${this.#lastOutput()}`);
        }
        if (Date.now() > deadline) {
          await terminate(spawned, this.#supervision.stopTimeoutMs, this.#log);
          throw new SpiceDbStartError(
            `SpiceDB did not report SERVING on ${this.endpoint} within ${this.#supervision.readyTimeoutMs} ms${this.#lastOutput()}`,
          );
        }
        const status = await healthStatus(client, 1_000).catch(() => undefined);
        if (status === ServingStatus.SERVING) break;
        await Promise.race([sleep(100), spawned.exited]);
      }
    } finally {
      client.close();
    }
    this.#setReady(true);
    for (const resolve of this.#readyWaiters.splice(0)) resolve();
    this.#log.info({ endpoint: this.endpoint, pid: spawned.child.pid, guard: spawned.guard, ms: Date.now() - started }, "SpiceDB serving");
  }

  #onExit(spawned: GuardedChild, exit: { code: number | null; signal: NodeJS.Signals | null }, started: number): void {
    if (this.#current !== spawned) return;
    const wasReady = this.#ready;
    this.#setReady(false);
    if (this.#stopping || !wasReady) return; // stop() or #spawnAndWait handle these.
    const upMs = Date.now() - started;
    this.#crashes = upMs >= this.#supervision.stableAfterMs ? 1 : this.#crashes + 1;
    this.#log.warn({ exit: describeExit(exit), upMs, output: this.#recent.slice(-5) }, "SpiceDB exited; restarting it");
    this.#scheduleRestart();
  }

  #scheduleRestart(): void {
    if (this.#stopping) return;
    const delay = Math.min(this.#supervision.maxRestartBackoffMs, this.#supervision.restartBackoffMs * 2 ** Math.max(0, this.#crashes - 1));
    this.#log.info({ delayMs: delay, attempt: this.#crashes }, "SpiceDB restart scheduled");
    this.#restartTimer = setTimeout(() => {
      if (this.#stopping) return;
      this.#restarts++;
      this.#launch().catch((err: unknown) => {
        if (this.#stopping) return;
        this.#crashes++;
        this.#log.error({ err }, "SpiceDB restart failed");
        this.#scheduleRestart();
      });
    }, delay);
  }

  #pipeOutput(child: ChildProcess): void {
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream, crlfDelay: Infinity }).on("line", (line) => this.#logLine(line));
    }
  }

  #logLine(line: string): void {
    if (!line.trim()) return;
    this.#recent.push(line);
    if (this.#recent.length > OUTPUT_LINES_KEPT) this.#recent.shift();
    let entry: Record<string, unknown> | undefined;
    try {
      const parsed: unknown = JSON.parse(line);
      if (parsed && typeof parsed === "object") entry = parsed as Record<string, unknown>;
    } catch {
      // Not JSON: a Go panic or runtime message.
    }
    if (!entry) {
      this.#log.warn({ spicedb: line }, "SpiceDB output");
      return;
    }
    const { level, message, time: _time, ...fields } = entry;
    const ours = LEVELS[String(level)] ?? "warn";
    this.#log[ours]({ spicedb: fields }, `SpiceDB: ${typeof message === "string" ? message : ""}`);
  }

  #lastOutput(): string {
    const lines = this.#recent.slice(-8);
    return lines.length > 0 ? `; its last output:\n${lines.join("\n")}` : "";
  }
}

function describeExit(exit: { code: number | null; signal: NodeJS.Signals | null }): string {
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}

/** SIGTERM, wait up to boundMs, SIGKILL, wait. */
async function terminate(spawned: GuardedChild, boundMs: number, log: Logger): Promise<void> {
  const { child } = spawned;
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
    await spawned.exited;
    return;
  }
  child.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), boundMs)));
  const outcome = await Promise.race([spawned.exited, bound]);
  clearTimeout(timer);
  if (outcome === "timeout") {
    log.warn({ pid: child.pid, boundMs }, "SpiceDB did not stop after SIGTERM; sending SIGKILL");
    child.kill("SIGKILL");
    await spawned.exited;
  }
}
