/**
 * `npm run bench:start`: issue 10's first-hour figures, on this machine.
 *
 * In a fresh clone of this repository's HEAD (a temporary directory, removed
 * afterwards), as a person following the README would:
 *
 * 1. install: `npm install` (with whatever npm cache this machine has; the
 *    figure says so);
 * 2. first start: `npm start -- --demo` until the log says "serving" (the
 *    build, PGlite created and migrated, the embedded SpiceDB loaded, the
 *    demo tenant written), then SIGINT;
 * 3. later starts: `npm start -- --demo` again, BENCH_STARTS times (default
 *    3), each until "serving", then SIGINT: the build is skipped, PGlite
 *    opened, SpiceDB rebuilt from Postgres, the demo found already there.
 *
 * For each start, the phases from the server's own log lines: the process
 * until "database ready" (module loading + PGlite open + migrations), the
 * permission index (SpiceDB rebuild + demo), and npm + build before node
 * started. Targets (issue 10): a later start ≤ 5 s, install + first start
 * ≤ 90 s. Writes bench/results/first-hour.json and .md (the table, also
 * printed), with the load average, which on a shared 2-core machine says
 * how much of the time was someone else's.
 *
 * BENCH_SKIP_INSTALL=1 links this checkout's node_modules into the clone
 * instead of installing (for quick runs of the start figures alone).
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const starts = Number(process.env["BENCH_STARTS"] ?? 3);
const skipInstall = process.env["BENCH_SKIP_INSTALL"] === "1";
const TARGET_LATER_S = 5;
const TARGET_FIRST_S = 90;

interface StartFigure {
  /** From `npm start` to the "serving" line. */
  readonly totalS: number;
  /** From `npm start` to node's first log line: npm itself, the prestart build (skipped when up to date), node loading sharegraph's modules. */
  readonly npmAndBuildS: number;
  /** The server process alone, from its start to "serving" (its own clock). */
  readonly processS: number;
  /** PGlite open + migrations, from the "database ready" line. */
  readonly databaseS: number;
  /** Rebuilding the embedded SpiceDB from Postgres (+ the demo load on a first start), from "permission index ready". */
  readonly indexS: number;
  readonly built: boolean;
  readonly load: readonly number[];
}

const s = (ms: number) => Math.round(ms / 100) / 10;
const load = () => loadavg().map((l) => Math.round(l * 10) / 10);

function run(cmd: string, args: string[], cwd: string): number {
  const started = Date.now();
  const result = spawnSync(cmd, args, { cwd, stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, npm_config_fund: "false", npm_config_audit: "false" } });
  if (result.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${result.status})`);
  return Date.now() - started;
}

/** `npm start -- --demo` until "serving"; then SIGINT and wait for the exit. */
async function start(cwd: string, port: number): Promise<StartFigure> {
  const started = Date.now();
  const child = spawn("npm", ["start", "--", "--demo"], {
    cwd,
    env: { ...process.env, SHAREGRAPH_ADDR: `127.0.0.1:${port}`, LOG_FORMAT: "json", LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let firstLine: number | undefined;
  let databaseMs = 0;
  let indexMs = 0;
  let processMs = 0;
  let built = false;
  let buffer = "";
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
    if (stderr.includes("building dist/")) built = true;
  });
  const serving = new Promise<number>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      buffer += d.toString();
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const text = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (!text.startsWith("{")) continue;
        const line = JSON.parse(text) as Record<string, unknown>;
        firstLine ??= Number(line["time"]);
        if (line["msg"] === "database ready") databaseMs = Number(line["ms"] ?? 0);
        if (line["msg"] === "permission index ready") indexMs = Number(line["ms"] ?? 0);
        if (line["msg"] === "serving") {
          processMs = Number(line["sinceProcessStartMs"] ?? 0);
          resolve(Date.now());
        }
      }
    });
    child.once("exit", (code) => reject(new Error(`npm start exited (${code}) before serving:\n${stderr}`)));
  });
  const at = await serving;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  process.kill(-child.pid!, "SIGINT");
  await exited;
  return {
    totalS: s(at - started),
    npmAndBuildS: s((firstLine ?? at) - started),
    processS: s(processMs),
    databaseS: s(databaseMs),
    indexS: s(indexMs),
    built,
    load: load(),
  };
}

const dir = mkdtempSync(join(tmpdir(), "sharegraph-first-hour-"));
const report: Record<string, unknown> = { at: new Date().toISOString(), node: process.version, cpus: cpus().length, loadBefore: load() };
try {
  console.log(`fresh clone of ${ROOT} (HEAD) in ${dir}`);
  run("git", ["clone", "--quiet", "--no-hardlinks", ROOT, dir], ROOT);
  let installS: number | undefined;
  if (skipInstall) symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  else installS = s(run("npm", ["install", "--no-fund", "--no-audit"], dir));
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const first = await start(dir, port);
  const later: StartFigure[] = [];
  for (let i = 0; i < starts; i++) later.push(await start(dir, port));
  const sorted = later.map((l) => l.totalS).sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? NaN;
  Object.assign(report, {
    installS: installS ?? null,
    installNote: skipInstall ? "skipped (BENCH_SKIP_INSTALL=1)" : "npm install in a fresh clone, with this machine's npm cache",
    first,
    later,
    laterMedianS: median,
    firstHourS: installS !== undefined ? Math.round((installS + first.totalS) * 10) / 10 : null,
    targets: { laterStartS: TARGET_LATER_S, installAndFirstStartS: TARGET_FIRST_S },
    loadAfter: load(),
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const row = (name: string, f: StartFigure) =>
  `| ${name} | ${f.totalS} | ${f.processS} | ${f.npmAndBuildS}${f.built ? " (built)" : ""} | ${f.databaseS} | ${f.indexS} | ${f.load.join(" ")} |`;
const first = report["first"] as StartFigure;
const later = report["later"] as StartFigure[];
const md = [
  `# First hour (issue 10), ${String(report["at"])}`,
  "",
  `Node ${process.version}, ${cpus().length} CPUs, load before ${(report["loadBefore"] as number[]).join(" ")}, after ${(report["loadAfter"] as number[]).join(" ")}.`,
  "",
  `- install: ${report["installS"] ?? "—"} s (${String(report["installNote"])})`,
  `- install + first start: ${report["firstHourS"] ?? "—"} s (target ≤ ${TARGET_FIRST_S} s)`,
  `- later start, median of ${later.length}: ${String(report["laterMedianS"])} s (target ≤ ${TARGET_LATER_S} s)`,
  "",
  "| start (`npm start -- --demo` → serving) | total s | of which the server process s | to its first log line (npm, build, node, modules) s | database (PGlite open + migrate) s | permission index (+ demo) s | load after |",
  "|---|---|---|---|---|---|---|",
  row("first", first),
  ...later.map((l, i) => row(`later ${i + 1}`, l)),
  "",
].join("\n");
mkdirSync(new URL("results/", import.meta.url), { recursive: true });
writeFileSync(new URL("results/first-hour.json", import.meta.url), `${JSON.stringify(report, null, 2)}\n`);
writeFileSync(new URL("results/first-hour.md", import.meta.url), md);
console.log(md);
