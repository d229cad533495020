import { mkdirSync } from "node:fs";
import { PGlite } from "@electric-sql/pglite";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import type { Database } from "./database.js";
import { GuardedPool } from "./pg-pool.js";
import { PGliteDialect } from "./pglite-dialect.js";

export type DatabaseTarget =
  /** Real Postgres. schema: an optional schema to create and use (test isolation). */
  | {
      readonly kind: "postgres";
      readonly url: string;
      readonly schema?: string | undefined;
      readonly poolSize?: number | undefined;
      /** Connecting or waiting for a pooled connection (default 5 s). */
      readonly connectTimeoutMs?: number | undefined;
      /** Each statement (default 30 s). */
      readonly queryTimeoutMs?: number | undefined;
      /** How long closing waits for connections in use (default 2 s). */
      readonly closeTimeoutMs?: number | undefined;
      /** How often reachability is probed once watched (default 2 s). */
      readonly probeIntervalMs?: number | undefined;
    }
  /** PGlite in this process; dataDir undefined keeps it in memory. loadDataDir: a dump to start from. */
  | { readonly kind: "pglite"; readonly dataDir?: string | undefined; readonly loadDataDir?: Blob | undefined };

export interface OpenDatabase {
  readonly db: Kysely<Database>;
  readonly kind: DatabaseTarget["kind"];
  /** PGlite only: the underlying instance (for dumps in tests). */
  readonly pglite?: PGlite;
  /** Postgres only: the schema this database works in, when not the default. */
  readonly schema?: string | undefined;
  /** Postgres only: probes reachability; the listener hears each change. Returns how to stop listening. */
  readonly watchReachability?: (listener: (reachable: boolean) => void) => () => void;
  close(): Promise<void>;
}

// node-postgres returns int8 as text to be safe beyond 2^53; ours (identity
// ids, counts) stay far below that, and PGlite returns numbers, so match it.
const INT8_OID = 20;
const pgTypes = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export async function openDatabase(target: DatabaseTarget): Promise<OpenDatabase> {
  if (target.kind === "pglite") {
    if (target.dataDir) mkdirSync(target.dataDir, { recursive: true });
    const pglite = await PGlite.create({
      ...(target.dataDir ? { dataDir: target.dataDir } : {}),
      ...(target.loadDataDir ? { loadDataDir: target.loadDataDir } : {}),
    });
    const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
    return { db, kind: "pglite", pglite, close: () => db.destroy() };
  }

  const settings = {
    max: target.poolSize ?? 10,
    connectTimeoutMs: target.connectTimeoutMs ?? 5_000,
    queryTimeoutMs: target.queryTimeoutMs ?? 30_000,
    closeTimeoutMs: target.closeTimeoutMs ?? 2_000,
  };
  if (target.schema) await createSchema(target.url, target.schema, settings.connectTimeoutMs);
  const pool = new GuardedPool(
    { connectionString: target.url, types: pgTypes, ...(target.schema ? { options: `-c search_path=${target.schema}` } : {}) },
    settings,
  );
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    kind: "postgres",
    schema: target.schema,
    watchReachability: (listener) => pool.watch(target.probeIntervalMs ?? 2_000, listener),
    close: () => db.destroy(),
  };
}

async function createSchema(url: string, schema: string, connectTimeoutMs: number): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`invalid schema name ${schema}`);
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: connectTimeoutMs });
  await client.connect();
  try {
    await client.query(`create schema if not exists ${schema}`);
  } finally {
    await client.end();
  }
}

/** Drops a test schema created by openDatabase. */
export async function dropSchema(url: string, schema: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`invalid schema name ${schema}`);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`drop schema if exists ${schema} cascade`);
  } finally {
    await client.end();
  }
}

export async function ping(db: Kysely<Database>): Promise<void> {
  await sql`select 1`.execute(db);
}
