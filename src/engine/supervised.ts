import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import type { Logger } from "../logger.js";
import type { Engine } from "./engine.js";
import { createRemoteEngine } from "./remote.js";
import { SPICEDB_VERSION } from "./spicedb-config.js";
import { prepareDatastore, type DatastoreIndexRecord } from "./spicedb-datastore.js";
import { SpiceDbProcess, freePort, type OrphanGuard, type SupervisionOptions } from "./spicedb-process.js";

const execFileAsync = promisify(execFile);

export interface SupervisedSpiceDbOptions {
  /** Path of the spicedb binary (.spicedb/bin/spicedb by default, see .ci/build-spicedb). */
  readonly binary: string;
  /** postgres:// URI of SpiceDB's datastore; its database is created when missing. */
  readonly datastoreUri: string;
  /** Postgres connections SpiceDB may open for reads (writes get half). */
  readonly poolSize: number;
  /** Deadline of each call to SpiceDB. */
  readonly timeoutMs: number;
  /** Passed to SpiceDB as --write-relationships-max-updates-per-call, and the engine's own limit. */
  readonly maxUpdatesPerWrite: number;
  /** Tests: faster restarts, shorter bounds. */
  readonly supervision?: Partial<SupervisionOptions>;
  /** Tests: force the orphan guard (default: pdeathsig where setpriv can, else the watchdog). */
  readonly guard?: OrphanGuard;
}

export interface SupervisedSpiceDb {
  /** Kind "spicedb"; closing it stops the process. */
  readonly engine: Engine;
  readonly process: SpiceDbProcess;
  /** Whether (and from which system of record) the datastore's index was completely built. */
  readonly record: DatastoreIndexRecord;
  /** The datastore's database did not exist before this start. */
  readonly created: boolean;
}

/**
 * The URI `spicedb serve` gets: the datastore's, asking SpiceDB's Postgres
 * driver (pgx) to prepare each distinct statement once per connection. By
 * default SpiceDB sends unnamed statements that Postgres parses and plans
 * anew every time; a cold check runs ~70 of them, and planning was half of
 * Postgres's CPU per check (docs/PERFORMANCE.md: 17.6 → 9.2 ms). Left alone
 * when the URI already says how (e.g. `exec` or `simple_protocol` for a
 * PgBouncer in transaction mode, which cannot keep prepared statements).
 * On a loopback address, also without TLS unless the URI asks for it.
 */
export function supervisedDatastoreUri(uri: string): string {
  const url = new URL(uri);
  if (!url.searchParams.has("default_query_exec_mode")) url.searchParams.set("default_query_exec_mode", "cache_statement");
  // pgx's default sslmode=prefer negotiates TLS even on loopback, where it protects nothing: 9 % of SpiceDB's CPU was crypto/tls.
  if (!url.searchParams.has("sslmode") && LOOPBACK.has(url.hostname)) url.searchParams.set("sslmode", "disable");
  return url.toString();
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

/**
 * SHAREGRAPH_ENGINE=spicedb: prepares SpiceDB's Postgres datastore, starts
 * `spicedb serve` on a free loopback port with a fresh random preshared key,
 * and talks to it with the remote engine. The datastore persists across
 * starts (no rebuild from Postgres at every start, unlike the embedded engine).
 */
export async function createSupervisedEngine(options: SupervisedSpiceDbOptions, log: Logger): Promise<SupervisedSpiceDb> {
  const version = await spicedbVersion(options.binary);
  if (version === SPICEDB_VERSION) log.info({ binary: options.binary, version }, "SpiceDB binary");
  else log.warn({ binary: options.binary, version, expected: SPICEDB_VERSION }, "SpiceDB binary is not the version sharegraph is built and tested with");
  const { created, record } = await prepareDatastore(options.binary, options.datastoreUri, log);
  const presharedKey = randomBytes(24).toString("base64url");
  const spicedb = new SpiceDbProcess(
    {
      binary: options.binary,
      datastoreUri: supervisedDatastoreUri(options.datastoreUri),
      port: await freePort(),
      presharedKey,
      maxUpdatesPerWrite: options.maxUpdatesPerWrite,
      poolSize: options.poolSize,
    },
    log,
    options.supervision,
    options.guard,
  );
  try {
    await spicedb.start();
  } catch (err) {
    await spicedb.stop();
    throw err;
  }
  try {
    const engine = await createRemoteEngine({
      kind: "spicedb",
      endpoint: spicedb.endpoint,
      token: presharedKey,
      tls: "plaintext",
      timeoutMs: options.timeoutMs,
      maxUpdatesPerWrite: options.maxUpdatesPerWrite,
      onClose: () => spicedb.stop(),
    });
    return { engine, process: spicedb, record, created };
  } catch (err) {
    await spicedb.stop();
    throw err;
  }
}

/** "v1.56.2" from `spicedb version` ("spicedb v1.56.2"); what it printed otherwise. */
async function spicedbVersion(binary: string): Promise<string> {
  try {
    const { stdout } = await execFileAsync(binary, ["version"], { timeout: 10_000 });
    return stdout.trim().replace(/^spicedb /, "");
  } catch (err) {
    throw new Error(`could not run ${binary} version: ${err instanceof Error ? err.message : String(err)}`);
  }
}
