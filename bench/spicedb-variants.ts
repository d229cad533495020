/**
 * `npm run bench:spicedb`: SpiceDB alone on the bench tenant's datastore,
 * once per variant of `spicedb serve` flags, to find out where a cold check's
 * time goes and whether SpiceDB's own options shorten it (issue 8, "also
 * evaluate").
 *
 * Needs the dataset and the SpiceDB datastore that `npm run bench` leaves
 * behind (the supervised line builds it at its first start). Each variant is
 * a fresh `spicedb serve` (cold caches) and gets, at one exact snapshot as
 * sharegraph asks:
 *  - agreement: BENCH_AGREEMENT_VARIANTS (300) sampled checks compared with
 *    the recursive CTE (a variant that answers differently is reported, and
 *    its figures mean nothing);
 *  - cold checks, 1 client and BENCH_CLIENTS (64), BENCH_SECONDS (20) each,
 *    with the CPU seconds SpiceDB and Postgres spent per check and the
 *    statements Postgres ran per check (pg_stat_database.xact_commit of the
 *    datastore's database: SpiceDB reads outside transactions, one per
 *    statement);
 *  - LookupResources (view, the four content kinds streamed in parallel) for
 *    the probe users, first result and all;
 *  - with BENCH_PROFILE=1, a CPU profile of SpiceDB during the 64-client line
 *    (Go's pprof on the metrics port), kept as bench/results/<name>-<variant>.pprof
 *    with `go tool pprof -top` beside it.
 *
 * BENCH_VARIANTS: comma list of names below (default: all).
 * BENCH_DATASTORE_URL: another SpiceDB datastore of the same tenant (a copy
 * kept from before a schema change, say) instead of the dataset's own.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { loadavg } from "node:os";
import pg from "pg";
import { v1 } from "@authzed/authzed-node";
import { prepareDatastore } from "../src/engine/spicedb-datastore.js";
import { DEFAULT_SPICEDB_BINARY } from "../src/engine/spicedb-config.js";
import { freePort, SpiceDbProcess } from "../src/engine/spicedb-process.js";
import { supervisedDatastoreUri } from "../src/engine/supervised.js";
import { createLogger } from "../src/logger.js";
import { CteBaseline } from "./cte.js";
import { ensureDataset, scaleFromEnv, type Probe, type SamplePair } from "./dataset.js";
import { headSnapshot, spicedbChecker, spicedbClients } from "./lib/clients.js";
import { round, runLoad, type LoadResult } from "./lib/load.js";
import { sliceSample } from "./lib/sample.js";
import { answers } from "./lines/checks.js";

const VARIANTS: Record<string, { readonly args: readonly string[]; readonly why: string; readonly uriParams?: string; readonly env?: Readonly<Record<string, string>> }> = {
  default: { args: [], why: "what sharegraph's supervised engine runs: its flags, and its datastore URI (statements prepared once per connection)" },
  "unprepared": {
    args: [],
    uriParams: "default_query_exec_mode=exec",
    why: "SpiceDB's own default: unnamed statements, parsed and planned every time (sharegraph's supervised engine before this change)",
  },
  "gogc-400": { args: [], env: { GOGC: "400" }, why: "Go's collector runs a quarter as often (it took ~15 % of SpiceDB's CPU), for more memory" },
  "tls-loopback": {
    args: [],
    uriParams: "sslmode=prefer",
    why: "pgx's default sslmode: TLS to Postgres even on loopback (sharegraph's supervised engine before this change)",
  },
  "generic-plans": {
    args: [],
    uriParams: "plan_cache_mode=force_generic_plan",
    why: "as default, and Postgres plans each prepared statement once",
  },
  "query-plan": { args: ["--experimental-query-plan=check,lr,ls"], why: "SpiceDB's experimental query-plan engine for checks and lookups" },
  "query-plan-lr": { args: ["--experimental-query-plan=lr"], why: "the query-plan engine for LookupResources only" },
  lr3: { args: ["--experimental-lookup-resources-version=lr3"], why: "SpiceDB's experimental LookupResources v3 (streams as it finds)" },
  "concurrency-4": { args: ["--dispatch-concurrency-limit=4"], why: "fewer goroutines per request on 2 cores" },
};

const KINDS = ["dashboard", "report", "board", "workbook"] as const;
const env = process.env;
const seconds = Number(env["BENCH_SECONDS"] ?? 20);
const clients = Number(env["BENCH_CLIENTS"] ?? 64);
const agreementSize = Number(env["BENCH_AGREEMENT_VARIANTS"] ?? 300);
const profile = env["BENCH_PROFILE"] === "1";
const name = env["BENCH_NAME"] ?? "spicedb-variants";
const binary = env["SPICEDB_BINARY"] ?? DEFAULT_SPICEDB_BINARY;
const chosen = (env["BENCH_VARIANTS"] ?? Object.keys(VARIANTS).join(",")).split(",").map((s) => s.trim());
const resultsDir = new URL("./results/", import.meta.url);
mkdirSync(resultsDir, { recursive: true });
const progress = (line: string) => process.stderr.write(`[variants ${new Date().toISOString().slice(11, 19)}] ${line} (load ${loadavg()[0]!.toFixed(2)})\n`);

const dataset = await ensureDataset({ scale: scaleFromEnv() });
const slices = sliceSample(dataset.sample);
const agreementPairs = slices.agreement.slice(0, agreementSize);
const cte = new CteBaseline(dataset.databaseUrl, 8);
const reference = await answers((p) => cte.check(p.userId, p.resource), agreementPairs);
await cte.close();
const datastoreUrl = env["BENCH_DATASTORE_URL"] ?? dataset.spicedbDatastoreUrl;
const datastoreName = new URL(datastoreUrl).pathname.slice(1);
const admin = new pg.Client({ connectionString: dataset.databaseUrl });
await admin.connect();

const line = (r: LoadResult) => `${round(r.perSecond, 1)}/s, p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms${r.errors ? `, ${r.errors} errors` : ""}`;

const results = [];
for (const variantName of chosen) {
  const variant = VARIANTS[variantName];
  if (!variant) throw new Error(`unknown variant ${variantName}; known: ${Object.keys(VARIANTS).join(", ")}`);
  progress(`${variantName}: starting spicedb serve ${variant.args.join(" ")}`);
  // The child inherits our environment (SpiceDbProcess passes it on, minus SPICEDB_*).
  const saved = Object.fromEntries(Object.keys(variant.env ?? {}).map((k) => [k, process.env[k]]));
  Object.assign(process.env, variant.env ?? {});
  try {
    results.push({ variant: variantName, args: variant.args, uriParams: variant.uriParams ?? "", env: variant.env ?? {}, why: variant.why, ...(await measure(variantName, variant.args, variant.uriParams)) });
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
await admin.end();

writeFileSync(new URL(`${name}.json`, resultsDir), `${JSON.stringify({ name, date: new Date().toISOString(), dataset: { databaseName: dataset.databaseName, relationships: dataset.counts.relationships, datastore: datastoreName }, seconds, clients, results }, null, 2)}\n`);
const md = [
  `# SpiceDB alone, by serve flags (${new Date().toISOString()})`,
  "",
  `Dataset ${dataset.databaseName}: ${dataset.counts.relationships} relationships as generated; datastore ${datastoreName}. Each variant a fresh \`spicedb serve\` on the same Postgres datastore, checks at one exact snapshot, ${seconds} s per line.`,
  "",
  "| variant | agrees with CTE | cold, 1 client | cold, " + clients + " clients | SpiceDB CPU ms/check | Postgres CPU ms/check | statements/check | lookups 10 / 1k / 10k: first, all ms |",
  "|---|---|---|---|---|---|---|---|",
  ...results.map((r) =>
    `| ${r.variant} \`${[...Object.entries(r.env).map(([k, v]) => `${k}=${v}`), ...r.args, r.uriParams ? `?${r.uriParams}` : ""].join(" ").trim()}\` | ${r.agreement.agree}/${r.agreement.pairs} | ${line(r.single)} | ${line(r.concurrent)} | ${r.cpu.spicedbMsPerCheck} | ${r.cpu.postgresMsPerCheck} | ${r.cpu.statementsPerCheck} | ${r.lookups.map((l) => `${l.expected}: ${l.firstMs}, ${l.allMs}${l.eachOnce && l.matches ? "" : " (wrong)"}${l.error ? ` (${l.error})` : ""}`).join("; ")} |`,
  ),
  "",
].join("\n");
writeFileSync(new URL(`${name}.md`, resultsDir), md);
process.stdout.write(md);

async function measure(variantName: string, args: readonly string[], uriParams: string | undefined) {
  const log = createLogger("warn");
  await prepareDatastore(binary, datastoreUrl, log);
  const key = randomBytes(16).toString("hex");
  const metricsPort = await freePort();
  const extraArgs = [...args, ...(profile ? ["--metrics-enabled=true", `--metrics-addr=127.0.0.1:${metricsPort}`] : [])];
  // The variant's parameters first: supervisedDatastoreUri() leaves a default_query_exec_mode that is there.
  const datastoreUri = supervisedDatastoreUri(uriParams ? `${datastoreUrl}${datastoreUrl.includes("?") ? "&" : "?"}${uriParams}` : datastoreUrl);
  const spicedb = new SpiceDbProcess({ binary, datastoreUri, port: await freePort(), presharedKey: key, maxUpdatesPerWrite: 1000, poolSize: 10, extraArgs }, log);
  await spicedb.start();
  const zed = spicedbClients(spicedb.endpoint, key, 8);
  try {
    const consistency = await headSnapshot(zed[0]!, dataset.platformAdmin);
    const check = spicedbChecker(zed, consistency);
    const got = await answers(check, agreementPairs);
    const disagree = got.filter((a, i) => a !== reference[i]).length;
    const agreement = { pairs: agreementPairs.length, agree: agreementPairs.length - disagree };
    progress(`${variantName}: agreement ${agreement.agree}/${agreement.pairs}`);

    const single = await runLoad({ clients: 1, items: slices.singleCold, maxMs: seconds * 1000, call: check });
    progress(`${variantName}: cold 1 client ${line(single)}`);

    const spicedbPid = spicedb.pid;
    const before = { spicedb: cpuSeconds(spicedbPid), postgres: postgresCpuSeconds(), statements: await statements() };
    const profiling = profile ? fetchProfile(metricsPort, Math.max(5, seconds - 5)) : undefined;
    const concurrent = await runLoad({ clients, items: slices.concurrentCold, maxMs: seconds * 1000, call: check });
    const after = { spicedb: cpuSeconds(spicedbPid), postgres: postgresCpuSeconds(), statements: await statements() };
    const perCheck = (a: number, b: number) => round(((a - b) * 1000) / Math.max(1, concurrent.calls), 2);
    const cpu = {
      spicedbMsPerCheck: perCheck(after.spicedb, before.spicedb),
      postgresMsPerCheck: perCheck(after.postgres, before.postgres),
      statementsPerCheck: round((after.statements - before.statements) / Math.max(1, concurrent.calls), 1),
    };
    progress(`${variantName}: cold ${clients} clients ${line(concurrent)}; per check: SpiceDB ${cpu.spicedbMsPerCheck} ms CPU, Postgres ${cpu.postgresMsPerCheck} ms CPU, ${cpu.statementsPerCheck} statements`);
    let profileTop: string | undefined;
    if (profiling) {
      const bytes = await profiling;
      const file = new URL(`${name}-${variantName}.pprof`, resultsDir).pathname;
      writeFileSync(file, bytes);
      try {
        profileTop = execFileSync("go", ["tool", "pprof", "-top", "-nodecount=40", binary, file], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
        writeFileSync(`${file}.top.txt`, profileTop);
      } catch {
        profileTop = undefined;
      }
    }

    const lookups = [];
    for (const probe of dataset.probes) lookups.push(await lookup(zed[0]!, consistency, probe));
    progress(`${variantName}: lookups ${lookups.map((l) => `${l.expected}: first ${l.firstMs} ms, all ${l.allMs} ms`).join("; ")}`);
    return { agreement, single, concurrent, cpu, lookups, loadavgEnd: loadavg(), ...(profileTop ? { profileTop: profileTop.split("\n").slice(0, 30) } : {}) };
  } finally {
    for (const c of zed) c.close();
    await spicedb.stop();
  }
}

async function lookup(client: v1.ZedClientInterface, consistency: v1.Consistency, probe: Probe) {
  const started = performance.now();
  let first = Number.NaN;
  const ids: string[] = [];
  let error: string | undefined;
  await Promise.all(
    KINDS.map(
      (kind) =>
        new Promise<void>((resolve) => {
          const stream = client.lookupResources(
            v1.LookupResourcesRequest.create({
              consistency,
              resourceObjectType: kind,
              permission: "view",
              subject: v1.SubjectReference.create({ object: v1.ObjectReference.create({ objectType: "user", objectId: probe.userId }) }),
            }),
          );
          stream.on("data", (r: v1.LookupResourcesResponse) => {
            if (Number.isNaN(first)) first = performance.now() - started;
            ids.push(`${kind}:${r.resourceObjectId}`);
          });
          stream.on("error", (err: Error) => {
            error ??= `${kind}: ${err.message}`;
            resolve();
          });
          stream.on("end", () => resolve());
        }),
    ),
  );
  const distinct = new Set(ids).size;
  return {
    probe: probe.name,
    expected: probe.expected,
    firstMs: round(first, 1),
    allMs: round(performance.now() - started, 1),
    results: ids.length,
    eachOnce: distinct === ids.length,
    matches: distinct === probe.expected,
    ...(error ? { error } : {}),
  };
}

function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** Every postgres process on this machine (the datastore's backends come and go with SpiceDB's pool). */
function postgresCpuSeconds(): number {
  let total = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (!stat.includes("(postgres)")) continue;
      const fields = stat.split(") ")[1]!.split(" ");
      total += (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      // gone
    }
  }
  return total;
}

async function statements(): Promise<number> {
  await admin.query("select pg_stat_clear_snapshot()");
  const r = await admin.query<{ n: string }>("select xact_commit + xact_rollback as n from pg_stat_database where datname = $1", [datastoreName]);
  return Number(r.rows[0]?.n ?? Number.NaN);
}

async function fetchProfile(port: number, profileSeconds: number): Promise<Uint8Array> {
  const res = await fetch(`http://127.0.0.1:${port}/debug/pprof/profile?seconds=${profileSeconds}`);
  if (!res.ok) throw new Error(`pprof: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

export type { SamplePair };
