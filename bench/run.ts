/**
 * `npm run bench`: issue 8's benchmark at a real tenant's size.
 *
 * 1. The dataset (bench/dataset.ts): generated deterministically through
 *    the store and the outbox into a Postgres database of its own, or reused.
 *    BENCH_SCALE=1 (default): 10,000 users, 1,000 groups, 50 workspaces,
 *    10,000 folders, 100,000 items, ~1M relationships; 0.1 / 0.01 for quick runs.
 * 2. Lines, one after the other (never two at once on this machine):
 *    - sharegraph, SHAREGRAPH_ENGINE=spicedb (a supervised `spicedb serve` on
 *      Postgres): a server process (`node --import tsx src/main.ts`), checks
 *      over gRPC: 1 client and BENCH_CLIENTS (64) clients, cold (distinct
 *      pairs, each asked once) and warm (256 pairs asked once just before,
 *      then repeated: the decision cache); LookupResources for the probe users who see
 *      ≈10 / ≈1,000 / ≈10,000 items (four kinds, streamed in parallel).
 *    - The same with VIEW_CHECKS_FROM=postgres (pgview): `view` on content
 *      answered from Postgres (src/store/content-view.ts), compared with the
 *      line above on the agreement slice.
 *    - SpiceDB alone: the same datastore served with the same flags, the same
 *      checks sent with @authzed/authzed-node, twice (a fresh process each):
 *      at one exact snapshot, as sharegraph sends them (→ the gateway's
 *      overhead ratio), and with minimize_latency, as a plain client would.
 *    - The recursive CTE on Postgres (bench/cte.ts) at 1 and BENCH_CTE_CLIENTS
 *      clients, and its lookups. Before any timing its answers are compared
 *      with sharegraph's on an agreement slice of the sample; every
 *      disagreement is reported.
 *    - sharegraph, SHAREGRAPH_ENGINE=embedded, on a dataset of
 *      BENCH_EMBEDDED_SCALE (default: 0.1 when BENCH_SCALE is larger — the
 *      embedded engine rebuilds everything in memory at start; "off" skips it).
 * 3. bench/results/<BENCH_NAME or scale-<scale>>.json and .md (the table,
 *    also printed), with the machine's load average before and after each line.
 *
 * Each sharegraph server first gets one write through the API (a group
 * created, deleted at the end). It was needed before sharegraph took a read
 * snapshot at start-up itself (without one, a restart with the datastore kept
 * and nothing written since left the decision cache unused);
 * BENCH_PIN_WRITE=0 measures without it.
 *
 * Other knobs: BENCH_SECONDS (time limit per timed line, default 30),
 * BENCH_AGREEMENT (pairs compared before timing, default 2,000),
 * BENCH_SERVER_<NAME> (sets <NAME> in the servers' environment),
 * BENCH_CLIENT (the check lines' client library through sharegraph: grpc-js, the
 * default, as authzed-node in the SpiceDB-alone line; or connect),
 * BENCH_LINES (comma list of spicedb, pgview, alone, cte, embedded, writes, startup,
 * eventloop, firsthour; default all; writes, startup, eventloop:
 * bench/lines/ops.ts; firsthour: issue 10's install and start-up figures,
 * bench/first-hour.ts in a fresh clone, BENCH_SKIP_INSTALL and BENCH_STARTS apply),
 * SPICEDB_BINARY (default .spicedb/bin/spicedb), BENCH_DATABASE_URL (the
 * Postgres server, default postgres://postgres@127.0.0.1:5432/postgres).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { DEFAULT_SPICEDB_BINARY, isExecutableFile } from "../src/engine/spicedb-config.js";
import { CteBaseline } from "./cte.js";
import { ensureDataset, scaleFromEnv, type Dataset } from "./dataset.js";
import { compareAnswers, type Agreement } from "./lib/agreement.js";
import { round } from "./lib/load.js";
import { sliceSample } from "./lib/sample.js";
import { answers } from "./lines/checks.js";
import { cteSession, type CteSession } from "./lines/cte-line.js";
import { engineAloneSession, type EngineAloneSession } from "./lines/engine-alone.js";
import { firstHourLine } from "./lines/first-hour-line.js";
import { opsLines } from "./lines/ops.js";
import { sharegraphSession, type SharegraphSession } from "./lines/sharegraph.js";
import { checkTable, loadLine, lookupTable, opsMarkdown, type CheckRow } from "./report.js";

const env = process.env;
const scale = scaleFromEnv();
const seconds = Number(env["BENCH_SECONDS"] ?? 30);
const concurrency = Number(env["BENCH_CLIENTS"] ?? 64);
const cteClients = (env["BENCH_CTE_CLIENTS"] ?? "16,64").split(",").map(Number);
const embeddedSetting = env["BENCH_EMBEDDED_SCALE"] ?? String(Math.min(scale, 0.1));
const lines = new Set((env["BENCH_LINES"] ?? "spicedb,pgview,alone,cte,embedded,writes,startup,eventloop,firsthour").split(",").map((s) => s.trim()));
const name = env["BENCH_NAME"] ?? `scale-${scale}`;
const binary = env["SPICEDB_BINARY"] ?? DEFAULT_SPICEDB_BINARY;
const resultsDir = new URL("./results/", import.meta.url);
mkdirSync(resultsDir, { recursive: true });
const progress = (line: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line} (load ${loadavg()[0]!.toFixed(2)})\n`);
const pinWrite = env["BENCH_PIN_WRITE"] !== "0";
const options = { concurrency, seconds, warm: true, progress };
const notes: string[] = [];

const loadStart = loadavg();
const dataset = await ensureDataset({ scale });
const slices = sliceSample(dataset.sample);
progress(`dataset ${dataset.databaseName}: ${dataset.counts.relationships} relationships; sample ${dataset.sample.length} (agreement ${slices.agreement.length}, single ${slices.singleCold.length}, concurrent ${slices.concurrentCold.length}, warm ${slices.warm.length})`);

let supervised: SharegraphSession | undefined;
let viewFromPostgres: SharegraphSession | undefined;
let alone: EngineAloneSession | undefined;
let aloneLatency: EngineAloneSession | undefined;
let cte: CteSession | undefined;
let embedded: (SharegraphSession & { agreementWithCte: Agreement; dataset: Pick<Dataset, "databaseName" | "scale" | "counts"> }) | undefined;
const spicedbAvailable = isExecutableFile(binary);
if (!spicedbAvailable) notes.push(`no SpiceDB binary at ${binary}: the supervised-engine and engine-alone lines did not run`);

if (spicedbAvailable && lines.has("spicedb")) {
  supervised = await sharegraphSession(dataset, "spicedb", { SPICEDB_BINARY: binary }, { ...options, pinWrite, logFile: new URL(`${name}-spicedb.log`, resultsDir).pathname });
}
if (spicedbAvailable && lines.has("pgview")) {
  const env = { SPICEDB_BINARY: binary, VIEW_CHECKS_FROM: "postgres" };
  viewFromPostgres = await sharegraphSession(dataset, "spicedb", env, { ...options, pinWrite, logFile: new URL(`${name}-pgview.log`, resultsDir).pathname });
}
if (spicedbAvailable && lines.has("alone")) {
  alone = await engineAloneSession(dataset, binary, { ...options, consistency: "exact_snapshot", count: true });
  aloneLatency = await engineAloneSession(dataset, binary, { ...options, consistency: "minimize_latency", count: false });
}
if (lines.has("cte")) cte = await cteSession(dataset, { concurrency: cteClients, seconds, progress });

if (lines.has("embedded") && embeddedSetting !== "off") {
  const embeddedScale = Number(embeddedSetting);
  const small = embeddedScale === scale ? dataset : await ensureDataset({ scale: embeddedScale });
  if (embeddedScale !== scale) notes.push(`the embedded engine was measured on the scale-${embeddedScale} dataset (${small.counts.relationships} relationships), not scale ${scale}: it rebuilds the whole index in memory at every start (BENCH_EMBEDDED_SCALE)`);
  const session = await sharegraphSession(small, "embedded", {}, { ...options, pinWrite, logFile: new URL(`${name}-embedded.log`, resultsDir).pathname });
  const reference = new CteBaseline(small.databaseUrl, 8);
  const cteAnswers = await answers((p) => reference.check(p.userId, p.resource), sliceSample(small.sample).agreement);
  await reference.close();
  embedded = { ...session, agreementWithCte: compareAnswers(sliceSample(small.sample).agreement, session.agreementAnswers, cteAnswers), dataset: { databaseName: small.databaseName, scale: small.scale, counts: small.counts } };
}

const firstHour = lines.has("firsthour") ? firstHourLine(progress) : undefined;
if (firstHour?.error) notes.push(`first hour: ${firstHour.error}`);

const ops = await opsLines({ dataset, lines, binary: spicedbAvailable ? binary : undefined, seconds, embeddedSetting, name, resultsDir, progress, notes });

// Agreement: sharegraph (supervised engine, else embedded on this dataset) is the reference.
const reference = supervised?.agreementAnswers ?? (embedded && embedded.datasetScale === scale ? embedded.agreementAnswers : undefined);
const agreement = {
  cteVsSharegraph: reference && cte ? compareAnswers(slices.agreement, reference, cte.agreementAnswers) : undefined,
  viewFromPostgresVsSharegraph: reference && viewFromPostgres ? compareAnswers(slices.agreement, reference, viewFromPostgres.agreementAnswers) : undefined,
  engineAloneVsSharegraph: reference && alone ? compareAnswers(slices.agreement, reference, alone.agreementAnswers) : undefined,
  engineAloneMinimizeLatencyVsSharegraph: reference && aloneLatency ? compareAnswers(slices.agreement, reference, aloneLatency.agreementAnswers) : undefined,
  embeddedVsCte: embedded?.agreementWithCte,
};

const ratio = (a: number | undefined, b: number | undefined) => (a && b ? round(a / b, 3) : undefined);
const overhead =
  supervised && alone
    ? {
        concurrentColdThroughput: ratio(supervised.checks.concurrentCold.perSecond, alone.checks.concurrentCold.perSecond),
        concurrentWarmThroughput: ratio(supervised.checks.concurrentWarm?.perSecond, alone.checks.concurrentWarm?.perSecond),
        singleColdThroughput: ratio(supervised.checks.singleCold.perSecond, alone.checks.singleCold.perSecond),
        concurrentColdThroughputVsMinimizeLatency: ratio(supervised.checks.concurrentCold.perSecond, aloneLatency?.checks.concurrentCold.perSecond),
        note: "throughput through sharegraph / throughput of the same checks sent straight to SpiceDB at one exact snapshot, as sharegraph sends them (target ≥ 0.8); the last figure compares with minimize_latency, what a plain SpiceDB client sends",
      }
    : undefined;

const strip = <T extends { agreementAnswers: boolean[] }>(s: T | undefined) => (s ? { ...s, agreementAnswers: undefined } : undefined);
const report = {
  name,
  date: new Date().toISOString(),
  node: process.version,
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, totalMemGb: round(totalmem() / 2 ** 30, 1), loadavgStart: loadStart, loadavgEnd: loadavg() },
  settings: {
    scale,
    seconds,
    concurrency,
    cteClients,
    embeddedScale: embeddedSetting,
    pinWrite,
    agreement: slices.agreement.length,
    spicedbBinary: spicedbAvailable ? binary : null,
    serverEnv: Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith("BENCH_SERVER_"))),
  },
  dataset: {
    databaseName: dataset.databaseName,
    scale: dataset.scale,
    seed: dataset.seed,
    counts: dataset.counts,
    generationMs: dataset.generationMs,
    generatedAt: dataset.generatedAt,
    reusedThisRun: dataset.reused,
    probes: dataset.probes,
    sample: { size: dataset.sample.length, agreement: slices.agreement.length, singleCold: slices.singleCold.length, concurrentCold: slices.concurrentCold.length, warmSet: slices.warm.length },
  },
  agreement,
  lines: { sharegraphSpicedb: strip(supervised), sharegraphViewFromPostgres: strip(viewFromPostgres), spicedbAlone: strip(alone), spicedbAloneMinimizeLatency: strip(aloneLatency), cte: strip(cte), sharegraphEmbedded: strip(embedded), ...ops, firstHour: firstHour?.report },
  gatewayOverhead: overhead,
  notes,
};
writeFileSync(new URL(`${name}.json`, resultsDir), `${JSON.stringify(report, null, 2)}\n`);

// The table.
const rows: CheckRow[] = [];
const addSession = (label: string, s: SharegraphSession | EngineAloneSession | undefined) => {
  if (!s) return;
  rows.push({ line: label, cache: "cold", result: s.checks.singleCold }, { line: label, cache: "cold", result: s.checks.concurrentCold });
  if (s.checks.singleWarm) rows.push({ line: label, cache: "warm", result: s.checks.singleWarm });
  if (s.checks.concurrentWarm) rows.push({ line: label, cache: "warm", result: s.checks.concurrentWarm });
};
const via = (s: SharegraphSession | undefined) => (s ? `, ${s.checkClient} client` : "");
addSession(`sharegraph → supervised SpiceDB (Postgres)${via(supervised)}`, supervised);
addSession(`sharegraph, view from Postgres (VIEW_CHECKS_FROM=postgres)${via(viewFromPostgres)}`, viewFromPostgres);
addSession("SpiceDB alone (authzed-node), one exact snapshot", alone);
addSession("SpiceDB alone (authzed-node), minimize_latency", aloneLatency);
if (cte) for (const r of Object.values(cte.checks)) rows.push({ line: "recursive CTE on Postgres", cache: "cold", result: r });
addSession(`sharegraph → embedded SpiceDB (scale ${embedded?.datasetScale})${via(embedded)}`, embedded);
const lookups = [
  ...(supervised ? supervised.lookups.first.map((lookup) => ({ line: "sharegraph → supervised SpiceDB", lookup })) : []),
  ...(supervised ? supervised.lookups.again.map((lookup) => ({ line: "same, again", lookup })) : []),
  ...(viewFromPostgres ? viewFromPostgres.lookups.first.map((lookup) => ({ line: "sharegraph, view from Postgres", lookup })) : []),
  ...(viewFromPostgres ? viewFromPostgres.lookups.again.map((lookup) => ({ line: "same, again", lookup })) : []),
  ...(cte ? cte.lookups.map((lookup) => ({ line: "recursive CTE", lookup })) : []),
  ...(embedded ? embedded.lookups.first.map((lookup) => ({ line: `sharegraph → embedded (scale ${embedded.datasetScale})`, lookup })) : []),
];
const agreementLine = (label: string, a: Agreement | undefined) =>
  a ? `- ${label}: ${a.agree} of ${a.pairs} agree, ${a.disagree} disagree (reference: ${a.allowed} allowed, ${a.denied} denied)${a.disagreements.length ? `; first: ${JSON.stringify(a.disagreements[0])}` : ""}` : undefined;
const c = dataset.counts;
const md = [
  `# sharegraph benchmark: ${name} (${report.date})`,
  "",
  `Dataset ${dataset.databaseName} (scale ${scale}): ${c.users} users, ${c.groups} groups (${c.groupMembers} memberships), ${c.workspaces} workspaces (${c.workspacePermissions} workspace permissions), ${c.folders} folders up to ${c.maxFolderDepth} deep, ${c.content} items, ${c.grants} grants; **${c.relationships} relationships** in ${c.outboxBatches} outbox batches${supervised?.rebuiltRelationships ? `, ${supervised.rebuiltRelationships} written to SpiceDB by the rebuild at first start` : ""}${alone?.relationshipsInEngine !== undefined ? `, ${alone.relationshipsInEngine} read back from SpiceDB` : ""}. Generated in ${(dataset.generationMs / 1000).toFixed(0)} s${dataset.reused ? " (by an earlier run; reused)" : ""}.`,
  `Machine: ${report.machine.cpus} CPUs, ${report.machine.totalMemGb} GB, shared with other work; time limit ${seconds} s per line.${Object.keys(report.settings.serverEnv).length ? ` Server settings: ${JSON.stringify(report.settings.serverEnv)}.` : ""}`,
  "",
  "## Agreement (before timing)",
  ...[agreementLine("recursive CTE vs sharegraph", agreement.cteVsSharegraph), agreementLine("sharegraph with view from Postgres vs sharegraph", agreement.viewFromPostgresVsSharegraph), agreementLine("SpiceDB alone (exact snapshot) vs sharegraph", agreement.engineAloneVsSharegraph), agreementLine("SpiceDB alone (minimize_latency) vs sharegraph", agreement.engineAloneMinimizeLatencyVsSharegraph), agreementLine(`embedded sharegraph vs CTE (scale ${embedded?.datasetScale})`, agreement.embeddedVsCte)].filter(Boolean),
  "",
  "## CheckPermission (view)",
  "cold: distinct (user, item) pairs, each asked once by that process; warm: 256 pairs asked once just before (untimed), then repeated. One load generator in this process, on the same machine.",
  "",
  checkTable(rows),
  "",
  overhead
    ? `Gateway overhead, throughput through sharegraph / SpiceDB alone at the same exact snapshot: ${overhead.concurrentColdThroughput} at ${concurrency} clients cold, ${overhead.concurrentWarmThroughput} warm (sharegraph's decision cache), ${overhead.singleColdThroughput} at 1 client cold; against SpiceDB alone with minimize_latency: ${overhead.concurrentColdThroughputVsMinimizeLatency} at ${concurrency} clients cold.`
    : "Gateway overhead: not measured.",
  "",
  "## LookupResources (view, four kinds streamed in parallel)",
  "",
  lookupTable(lookups),
  "",
  "## Start-up, memory, caches",
  ...[supervised, embedded].filter((x) => x !== undefined).map((x) => `- ${x.engine}: ${x.pinWrite.made ? `one write through the API right after start (${x.pinWrite.ms} ms) pinned the reads` : "no write after start (reads not pinned unless the start rebuilt the index)"}; decision cache ${JSON.stringify(x.decisionCache)}`),
  ...(supervised ? [`- supervised SpiceDB: serving after ${(supervised.startMs / 1000).toFixed(1)} s${supervised.rebuiltRelationships ? " (including a rebuild of the datastore)" : " (datastore kept, outbox drained)"}; RSS gateway ${supervised.rssAfter.gatewayMb} MB, SpiceDB ${supervised.rssAfter.childrenMb} MB after the lines`] : []),
  ...(embedded ? [`- embedded (scale ${embedded.datasetScale}, ${embedded.dataset.counts.relationships} relationships): serving after ${(embedded.startMs / 1000).toFixed(1)} s; RSS ${embedded.rssAfter.gatewayMb} MB after the lines`] : []),
  "",
  ...opsMarkdown(ops),
  "",
  ...(firstHour?.markdown ? ["## The first hour (issue 10; bench/first-hour.ts)", "", firstHour.markdown, ""] : []),
  "## Load",
  loadLine("whole run", loadStart, report.machine.loadavgEnd),
  ...(supervised ? [loadLine("sharegraph → supervised SpiceDB", supervised.loadavg.start, supervised.loadavg.end)] : []),
  ...(alone ? [loadLine("SpiceDB alone, exact snapshot", alone.loadavg.start, alone.loadavg.end)] : []),
  ...(aloneLatency ? [loadLine("SpiceDB alone, minimize_latency", aloneLatency.loadavg.start, aloneLatency.loadavg.end)] : []),
  ...(cte ? [loadLine("CTE", cte.loadavg.start, cte.loadavg.end)] : []),
  ...(embedded ? [loadLine("sharegraph → embedded", embedded.loadavg.start, embedded.loadavg.end)] : []),
  ...(notes.length ? ["", "## Notes", ...notes.map((n) => `- ${n}`)] : []),
  "",
].join("\n");
writeFileSync(new URL(`${name}.md`, resultsDir), md);
console.log(md);
console.log(`written: bench/results/${name}.json and ${name}.md`);
process.exit(0);
