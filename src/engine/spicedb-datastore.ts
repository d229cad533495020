import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import pg from "pg";
import type { Logger } from "../logger.js";
import { databaseNameOf } from "./spicedb-config.js";
import { spawnGuarded, spicedbEnvironment } from "./spicedb-process.js";

/**
 * SpiceDB's Postgres datastore for the supervised engine: its own database
 * (created when missing), SpiceDB's migrations, and a one-row table of ours,
 * `sharegraph_index`, that says the relationships in it were completely
 * written from a given system of record. A datastore without that row (just
 * created, or a rebuild that never finished) is rebuilt at start-up; one that
 * has it only needs the outbox drained.
 */

/** The same server's maintenance database (to create or drop another one). */
function maintenanceUri(uri: string): string {
  const url = new URL(uri);
  url.pathname = "/postgres";
  return url.toString();
}

/** A URI for logs: no password. */
export function redactUri(uri: string): string {
  const url = new URL(uri);
  if (url.password) url.password = "***";
  return url.toString();
}

async function withClient<T>(uri: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: uri });
  client.on("error", () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Creates the datastore's database when it does not exist; true if it did not. */
export async function createDatabaseIfMissing(uri: string): Promise<boolean> {
  const name = databaseNameOf(uri);
  return withClient(maintenanceUri(uri), async (client) => {
    const found = await client.query("select 1 from pg_database where datname = $1", [name]);
    if (found.rowCount) return false;
    try {
      await client.query(`create database "${name}"`);
      return true;
    } catch (err) {
      // Another process created it between the look and the create.
      if ((err as { code?: string }).code === "42P04") return false;
      throw err;
    }
  });
}

/** Drops the datastore's database (tests), ending its other connections first. */
export async function dropDatabase(uri: string): Promise<void> {
  const name = databaseNameOf(uri);
  await withClient(maintenanceUri(uri), async (client) => {
    await client.query(`drop database if exists "${name}" with (force)`);
  });
}

/** `spicedb datastore migrate head` on the datastore; throws with SpiceDB's own words when it fails. */
export async function migrateDatastore(binary: string, uri: string, log: Logger): Promise<void> {
  const cwd = await mkdtemp(join(tmpdir(), "sharegraph-spicedb-migrate-"));
  try {
    const spawned = spawnGuarded(binary, ["datastore", "migrate", "head", "--datastore-engine=postgres", "--log-format=json", "--skip-release-check"], {
      env: spicedbEnvironment({ datastoreUri: uri }),
      cwd,
    });
    let spawnError: Error | undefined;
    spawned.child.once("error", (err) => (spawnError = err));
    const output: string[] = [];
    for (const stream of [spawned.child.stdout, spawned.child.stderr]) {
      if (stream) createInterface({ input: stream, crlfDelay: Infinity }).on("line", (line) => output.push(line));
    }
    const exit = await spawned.exited;
    for (const line of output) log.debug({ spicedb: line }, "SpiceDB migrate");
    if (spawnError) throw new Error(`could not run ${binary}: ${spawnError.message}`);
    if (exit.code !== 0) {
      const messages = output.map((line) => messageOf(line)).filter(Boolean).slice(-5);
      throw new Error(`SpiceDB datastore migration failed (${exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`}): ${messages.join("; ")}`);
    }
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
}

function messageOf(line: string): string {
  try {
    const entry = JSON.parse(line) as { message?: unknown; error?: unknown };
    return [entry.message, entry.error].filter((x) => typeof x === "string" && x).join(": ");
  } catch {
    return line;
  }
}

/**
 * The record of a complete build of the index in this datastore. builtFor()
 * names the system of record it was built from (undefined: never completely
 * built); markBuilt() is called after a rebuild that finished.
 */
export class DatastoreIndexRecord {
  constructor(private readonly uri: string) {}

  async ensureTable(): Promise<void> {
    await withClient(this.uri, (client) =>
      client.query(`create table if not exists sharegraph_index (
        singleton boolean primary key default true check (singleton),
        system_of_record text not null,
        built_at timestamptz not null default now()
      )`),
    );
  }

  async builtFor(): Promise<string | undefined> {
    return withClient(this.uri, async (client) => {
      const result = await client.query<{ system_of_record: string }>("select system_of_record from sharegraph_index");
      return result.rows[0]?.system_of_record;
    });
  }

  /** After a rebuild: the statistics of the tables it filled (analyzeDatastore). */
  analyze(): Promise<void> {
    return analyzeDatastore(this.uri);
  }

  async markBuilt(systemOfRecord: string): Promise<void> {
    await withClient(this.uri, (client) =>
      client.query(
        `insert into sharegraph_index (singleton, system_of_record) values (true, $1)
         on conflict (singleton) do update set system_of_record = excluded.system_of_record, built_at = now()`,
        [systemOfRecord],
      ),
    );
  }
}

/**
 * Refreshes Postgres's planner statistics of SpiceDB's tables. SpiceDB's
 * queries are only as good as their plans: after a bulk rebuild the
 * statistics still describe the empty tables of before until autovacuum
 * gets to them (never, where autovacuum is off), and every check then pays
 * for index scans that read thousands of rows to return a few
 * (docs/PERFORMANCE.md: 36 → 25 ms of Postgres CPU per cold check).
 */
export async function analyzeDatastore(uri: string): Promise<void> {
  await withClient(uri, (client) => client.query("analyze relation_tuple, relation_tuple_transaction"));
}

/** Whether autovacuum, which also keeps planner statistics current, runs on the datastore's server. */
export async function autovacuumRuns(uri: string): Promise<boolean> {
  return withClient(uri, async (client) => {
    const result = await client.query<{ autovacuum: string }>("show autovacuum");
    return result.rows[0]?.autovacuum === "on";
  });
}

/**
 * Makes the datastore ready for `spicedb serve`: its database (created if
 * missing), SpiceDB's migrations (a no-op when at head), our record table.
 */
export async function prepareDatastore(binary: string, uri: string, log: Logger): Promise<{ created: boolean; record: DatastoreIndexRecord }> {
  const started = Date.now();
  try {
    const created = await createDatabaseIfMissing(uri);
    await migrateDatastore(binary, uri, log);
    const record = new DatastoreIndexRecord(uri);
    await record.ensureTable();
    log.info({ datastore: redactUri(uri), created, ms: Date.now() - started }, "SpiceDB datastore ready");
    if (!(await autovacuumRuns(uri))) {
      log.warn(
        { datastore: redactUri(uri) },
        "autovacuum is off on SpiceDB's Postgres: its planner statistics go stale as relationships change and checks slow down; turn autovacuum on, or run ANALYZE on relation_tuple regularly",
      );
    }
    return { created, record };
  } catch (err) {
    throw new Error(`could not prepare SpiceDB's datastore ${redactUri(uri)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}
