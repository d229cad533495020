import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { createLogger } from "../logger.js";
import { DEFAULT_SPICEDB_BINARY, defaultDatastoreUri, isExecutableFile } from "./spicedb-config.js";
import { prepareDatastore, redactUri } from "./spicedb-datastore.js";
import { SpiceDbProcess, freePort } from "./spicedb-process.js";

const USAGE = `npm run spicedb:serve -- [options]

Prepares a local SpiceDB on Postgres and serves it until Ctrl-C: creates the
datastore's database if missing, runs \`spicedb datastore migrate head\`, starts
\`spicedb serve\` (plaintext gRPC on 127.0.0.1, no HTTP gateway or metrics port,
so several can run at once) and restarts it if it dies. Prints the variables
that point a sharegraph (SHAREGRAPH_ENGINE=remote) or the benchmarks at it.

  --datastore URI   postgres:// URI of the datastore (default: SPICEDB_DATASTORE_URI,
                    else DATABASE_URL's server with the database <name>_spicedb,
                    else postgres://postgres@127.0.0.1:5432/spicedb)
  --port N          gRPC port on 127.0.0.1 (default: a free one)
  --key KEY         preshared key (default: SPICEDB_TOKEN, else a random one)
  --pool N          Postgres connections for reads (default 10; writes get half, at least 3)
  --max-updates N   --write-relationships-max-updates-per-call (default 1000)
  --binary PATH     spicedb binary (default: SPICEDB_BINARY, else .spicedb/bin/spicedb)
`;

/** `npm run spicedb:serve`: a supervised local SpiceDB for development and benchmarks. */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      datastore: { type: "string" },
      port: { type: "string" },
      key: { type: "string" },
      pool: { type: "string" },
      "max-updates": { type: "string" },
      binary: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const env = process.env;
  const binary = values.binary ?? env["SPICEDB_BINARY"] ?? DEFAULT_SPICEDB_BINARY;
  if (!isExecutableFile(binary)) throw new Error(`no executable SpiceDB at ${binary}; build it with npm run spicedb:build (needs Go)`);
  const datastoreUri =
    values.datastore ?? env["SPICEDB_DATASTORE_URI"] ?? (env["DATABASE_URL"] ? defaultDatastoreUri(env["DATABASE_URL"]) : "postgres://postgres@127.0.0.1:5432/spicedb");
  const number = (value: string | undefined, fallback: number, name: string): number => {
    const n = value === undefined ? fallback : Number(value);
    if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new Error(`--${name}: expected a whole number up to 65535, got ${value}`);
    return n;
  };
  const log = createLogger(env["LOG_LEVEL"] ?? "info");
  const port = number(values.port, 0, "port") || (await freePort());
  const presharedKey = values.key ?? env["SPICEDB_TOKEN"] ?? randomBytes(24).toString("base64url");

  await prepareDatastore(binary, datastoreUri, log);
  const spicedb = new SpiceDbProcess(
    {
      binary,
      datastoreUri,
      port,
      presharedKey,
      poolSize: number(values.pool, 10, "pool"),
      maxUpdatesPerWrite: number(values["max-updates"], 1000, "max-updates"),
    },
    log,
  );
  let signals = 0;
  const stop = () => {
    if (++signals > 1) process.exit(1);
    spicedb.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  await spicedb.start();
  process.stderr.write(`SpiceDB serving on ${spicedb.endpoint}, datastore ${redactUri(datastoreUri)}; Ctrl-C stops it\n`);
  process.stdout.write(
    [
      "SHAREGRAPH_ENGINE=remote",
      `SPICEDB_ENDPOINT=${spicedb.endpoint}`,
      `SPICEDB_TOKEN=${presharedKey}`,
      "SPICEDB_INSECURE=true",
      "",
    ].join("\n"),
  );
}

main().catch((err: unknown) => {
  console.error(`spicedb:serve failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
