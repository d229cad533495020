/**
 * Which relations a cold check reads, counted statement by statement
 * (PERFORMANCE.md, round 3): a fresh `spicedb serve` on the datastore,
 * BENCH_TRACE_CHECKS (300) sampled checks from BENCH_TRACE_OFFSET (3000)
 * asked one at a time at one snapshot, with Postgres logging every statement
 * of that datastore's database (`log_statement=all`, set for the run and
 * reset after); the log lines of the run are read from BENCH_PG_LOG
 * (default /var/log/postgresql/postgresql-15-main.log) and counted by
 * resource type and relation.
 *
 *   BENCH_SCALE=0.2 BENCH_SEED=7 BENCH_DATASTORE_URL=… npx tsx bench/statement-trace.ts
 *
 * Prints the answers' digest (the same questions must get the same answers
 * on each datastore compared) and the counts as Markdown.
 */
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import pg from "pg";
import { DEFAULT_SPICEDB_BINARY } from "../src/engine/spicedb-config.js";
import { freePort, SpiceDbProcess } from "../src/engine/spicedb-process.js";
import { supervisedDatastoreUri } from "../src/engine/supervised.js";
import { createLogger } from "../src/logger.js";
import { ensureDataset } from "./dataset.js";
import { headSnapshot, spicedbChecker, spicedbClients } from "./lib/clients.js";

const env = process.env;
const checks = Number(env["BENCH_TRACE_CHECKS"] ?? 300);
const offset = Number(env["BENCH_TRACE_OFFSET"] ?? 3000);
const logFile = env["BENCH_PG_LOG"] ?? "/var/log/postgresql/postgresql-15-main.log";
const dataset = await ensureDataset();
const datastoreUrl = env["BENCH_DATASTORE_URL"] ?? dataset.spicedbDatastoreUrl;
const databaseName = new URL(datastoreUrl).pathname.slice(1);

const admin = new pg.Client({ connectionString: dataset.databaseUrl });
await admin.connect();
await admin.query(`alter database "${databaseName}" set log_statement = 'all'`);
const logStart = statSync(logFile).size;
const answers: boolean[] = [];
try {
  const key = randomBytes(16).toString("hex");
  const spicedb = new SpiceDbProcess(
    { binary: env["SPICEDB_BINARY"] ?? DEFAULT_SPICEDB_BINARY, datastoreUri: supervisedDatastoreUri(datastoreUrl), port: await freePort(), presharedKey: key, maxUpdatesPerWrite: 1000, poolSize: 10, extraArgs: [] },
    createLogger("warn"),
  );
  await spicedb.start();
  const zed = spicedbClients(spicedb.endpoint, key, 1);
  try {
    const check = spicedbChecker(zed, await headSnapshot(zed[0]!, dataset.platformAdmin));
    for (const pair of dataset.sample.slice(offset, offset + checks)) answers.push(await check(pair, 0));
  } finally {
    for (const c of zed) c.close();
    await spicedb.stop();
  }
} finally {
  await admin.query(`alter database "${databaseName}" reset log_statement`);
  await admin.end();
}

// "LOG:  execute <name>: SELECT … FROM relation_tuple WHERE … namespace = $5 AND relation = $6 …", then "DETAIL:  parameters: $1 = '…', …".
const lines = readFileSync(logFile, "utf8").slice(logStart).split("\n");
const counts = new Map<string, number>();
let total = 0;
for (const [i, line] of lines.entries()) {
  if (!line.includes(`@${databaseName} LOG:  execute`) || !line.includes("FROM relation_tuple WHERE")) continue;
  total++;
  const params = new Map([...(lines[i + 1] ?? "").matchAll(/\$(\d+) = '([^']*)'/g)].map((m) => [m[1]!, m[2]!]));
  const param = (column: string) => params.get(new RegExp(`[^_]${column} = \\$(\\d+)`).exec(line)?.[1] ?? "") ?? "?";
  const key = `${param("namespace")}#${param("relation")}${/userset_namespace = \$/.test(line) ? " (one subject)" : ""}`;
  counts.set(key, (counts.get(key) ?? 0) + 1);
}
const byType = new Map<string, number>();
for (const [key, n] of counts) byType.set(key.split("#")[0]!, (byType.get(key.split("#")[0]!) ?? 0) + n);
const perCheck = (n: number) => (n / Math.max(1, answers.length)).toFixed(1);
process.stdout.write(
  [
    `${databaseName}: ${answers.length} checks (${answers.filter(Boolean).length} allowed; answers digest ${createHash("sha256").update(answers.map(Number).join("")).digest("hex").slice(0, 12)}), ${total} relation reads, ${perCheck(total)} per check`,
    "",
    "| resource type | reads per check |",
    "|---|---|",
    ...[...byType].sort((a, b) => b[1] - a[1]).map(([type, n]) => `| ${type} | ${perCheck(n)} |`),
    "",
    "| relation | reads per check |",
    "|---|---|",
    ...[...counts].sort((a, b) => b[1] - a[1]).map(([key, n]) => `| ${key} | ${perCheck(n)} |`),
    "",
  ].join("\n"),
);
