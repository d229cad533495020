/**
 * Test fixture: a REAL SpiceDB server (`spicedb serve`, built by
 * .ci/build-spicedb) on a real Postgres datastore. Each call prepares a fresh
 * datastore database (`sg_spicedb_<random>`, created and migrated), starts the
 * server on a free loopback port, and stop() ends it and drops the database.
 * Share one per test file (sharedSpiceDbServer): migrations and start-up cost
 * about a second.
 *
 * It needs the binary (SPICEDB_BINARY, default .spicedb/bin/spicedb) and a
 * Postgres for the datastore (TEST_SPICEDB_DATASTORE_URL, else
 * TEST_DATABASE_URL; the database in the URL is only used to reach the server).
 * Without them `realSpiceDb.reason` says why, and the tests that need it are
 * skipped with that reason in their name.
 */
import { randomBytes } from "node:crypto";
import { afterAll } from "vitest";
import { dropDatabase, prepareDatastore } from "../../src/engine/spicedb-datastore.js";
import { SpiceDbProcess, freePort, type SupervisionOptions } from "../../src/engine/spicedb-process.js";
import { createLogger, type Logger } from "../../src/logger.js";
import { realSpiceDbAvailability } from "./spicedb-availability.js";

const availability = realSpiceDbAvailability();
export const SPICEDB_BINARY = availability.binary;
const DATASTORE_SERVER = availability.datastoreServer;
export const realSpiceDb: { readonly available: boolean; readonly reason: string } = availability;

/** A describe() title that says when, and why, its tests are skipped. */
export function realSpiceDbTitle(title: string): string {
  return realSpiceDb.available ? title : `${title} — skipped: ${realSpiceDb.reason}`;
}

/** The test logger: silent unless TEST_LOG_LEVEL says otherwise. */
export function quietLogger(): Logger {
  return createLogger(process.env["TEST_LOG_LEVEL"] ?? "silent");
}

/** A URI for a datastore database of its own on the test Postgres server. */
export function freshDatastoreUri(): string {
  if (!DATASTORE_SERVER) throw new Error(realSpiceDb.reason);
  const url = new URL(DATASTORE_SERVER);
  url.pathname = `/sg_spicedb_${randomBytes(5).toString("hex")}`;
  return url.toString();
}

export interface SpiceDbServer {
  /** 127.0.0.1:PORT, plaintext gRPC. */
  readonly endpoint: string;
  readonly token: string;
  readonly datastoreUri: string;
  readonly maxUpdatesPerWrite: number;
  readonly process: SpiceDbProcess;
  /** Stops the server and drops its datastore database. */
  stop(): Promise<void>;
}

export interface SpiceDbServerOptions {
  readonly token?: string;
  /** --write-relationships-max-updates-per-call; 1000 by default. */
  readonly maxUpdatesPerWrite?: number;
  /** A datastore to reuse (prepared if needed, not dropped on stop). */
  readonly datastoreUri?: string;
  readonly supervision?: Partial<SupervisionOptions>;
  readonly logger?: Logger;
}

export async function startSpiceDbServer(options: SpiceDbServerOptions = {}): Promise<SpiceDbServer> {
  const log = options.logger ?? quietLogger();
  const owned = options.datastoreUri === undefined;
  const datastoreUri = options.datastoreUri ?? freshDatastoreUri();
  const token = options.token ?? `test-${randomBytes(12).toString("hex")}`;
  const maxUpdatesPerWrite = options.maxUpdatesPerWrite ?? 1000;
  await prepareDatastore(SPICEDB_BINARY, datastoreUri, log);
  const spicedb = new SpiceDbProcess(
    { binary: SPICEDB_BINARY, datastoreUri, port: await freePort(), presharedKey: token, maxUpdatesPerWrite, poolSize: 3 },
    log,
    options.supervision,
  );
  const drop = async () => {
    if (owned) await dropDatabase(datastoreUri);
  };
  try {
    await spicedb.start();
  } catch (err) {
    await spicedb.stop();
    await drop();
    throw err;
  }
  return {
    endpoint: spicedb.endpoint,
    token,
    datastoreUri,
    maxUpdatesPerWrite,
    process: spicedb,
    async stop() {
      await spicedb.stop();
      await drop();
    },
  };
}

let shared: Promise<SpiceDbServer> | undefined;

/**
 * One server for the whole test file, started on first use and stopped after
 * the file's tests (call it at least once from the file's top level, so that
 * the afterAll hook is registered there).
 */
export function sharedSpiceDbServer(): () => Promise<SpiceDbServer> {
  afterAll(async () => {
    const server = await shared?.catch(() => undefined);
    shared = undefined;
    await server?.stop();
  });
  return () => (shared ??= startSpiceDbServer());
}
