/**
 * `npm run bench:thread` (issue 8, engine work off the main thread): the
 * embedded engine in-thread and in its worker thread, on the same generated
 * tenant (a few thousand relationships, written straight into each engine):
 *
 * - a 1,000-item CheckBulkPermissions (1,000 distinct users): its duration,
 *   and the event loop's delay meanwhile (monitorEventLoopDelay, 1 ms
 *   resolution; max and p99), beside the same loop left idle for as long;
 * - the same delay while the tenant is written (writes of 1,000
 *   relationships, as a start-up rebuild makes them);
 * - single checks one after the other (p50/p90/p99): what the hop between
 *   threads adds to each call;
 * - the worker's first start (creating the engine until it answers), and a
 *   second one in the same process.
 *
 * Figures, never assertions. Prints a table and writes
 * bench/results/thread.json. BENCH_THREAD_RUNS (default 3) bulk checks per engine.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { createEmbeddedEngine } from "../src/engine/embedded.js";
import type { CheckItem, Engine, Relationship, SubjectRef } from "../src/engine/engine.js";
import { loadSchemaText } from "../src/engine/schema.js";
import { createThreadedEngine } from "../src/engine/threaded.js";

const RUNS = Number(process.env["BENCH_THREAD_RUNS"] ?? 3);
const SINGLE = Number(process.env["BENCH_THREAD_SINGLE"] ?? 300);

/**
 * 2,000 users in 100 groups (nested 4 deep), 10 workspaces, 400 folders
 * (chains up to 5 deep, with their ancestor closure), 1,500 dashboards.
 */
function tenant(): { relationships: Relationship[]; items: CheckItem[] } {
  const r: Relationship[] = [];
  const add = (type: string, id: string, relation: string, subject: SubjectRef) => r.push({ resource: { type, id }, relation, subject });
  const user = (i: number): SubjectRef => ({ type: "user", id: `u${i}` });
  const members = (g: number): SubjectRef => ({ type: "group", id: `g${g}`, relation: "member" });
  for (let i = 0; i < 2000; i++) add("group", `g${i % 100}`, "member", user(i));
  for (let g = 1; g < 100; g++) if (g % 4 !== 0) add("group", `g${g - 1}`, "member", members(g)); // chains of 4
  for (let w = 0; w < 10; w++) {
    add("workspace", `w${w}`, "viewer", members(w * 10));
    add("workspace", `w${w}`, "analyst", members(w * 10 + 1));
    // The workspace tree's closure, the workspace itself included (as sharegraph writes it).
    for (const relation of ["ancestor_or_self", "descendant_or_self", "relative"]) add("workspace", `w${w}`, relation, { type: "workspace", id: `w${w}` });
  }
  for (let f = 0; f < 400; f++) {
    const ws = { type: "workspace", id: `w${f % 10}` };
    add("folder", `f${f}`, "workspace", ws);
    const depth = f % 5;
    for (let a = 1; a <= depth; a++) add("folder", `f${f}`, "ancestor", { type: "folder", id: `f${f - a * 10}` });
    if (depth > 0) add("folder", `f${f}`, "parent", { type: "folder", id: `f${f - 10}` });
    if (f % 3 === 0) add("folder", `f${f}`, "viewer", members((f * 7) % 100));
  }
  for (let d = 0; d < 1500; d++) {
    add("dashboard", `d${d}`, "workspace", { type: "workspace", id: `w${d % 10}` });
    add("dashboard", `d${d}`, "folder", { type: "folder", id: `f${d % 400}` });
    if (d % 5 === 0) add("dashboard", `d${d}`, "viewer", user((d * 13) % 2000));
  }
  const items: CheckItem[] = Array.from({ length: 1000 }, (_, i) => ({
    resource: { type: "dashboard", id: `d${(i * 7) % 1500}` },
    permission: "view",
    subject: user(i * 2),
  }));
  return { relationships: r, items };
}

async function seed(engine: Engine, relationships: readonly Relationship[]): Promise<string> {
  let token = "";
  for (let i = 0; i < relationships.length; i += engine.maxUpdatesPerWrite) {
    token = await engine.write(relationships.slice(i, i + engine.maxUpdatesPerWrite).map((relationship) => ({ op: "touch", relationship })));
  }
  return token;
}

const ms = (ns: number) => Math.round(ns / 1e5) / 10;

/**
 * The event loop's delay while fn runs. A histogram's first sample after
 * enable() or reset() only sets its baseline: one is taken before fn, and
 * one more turn after it, so that a block that just ended is sampled too.
 */
async function loopDelayDuring<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number; maxDelayMs: number; p99DelayMs: number }> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  await sleep(20);
  // Forget the warm-up; the sample after a reset only sets a baseline again, so take one.
  histogram.reset();
  await sleep(3);
  const started = performance.now();
  const value = await fn();
  const took = performance.now() - started;
  await sleep(5);
  histogram.disable();
  return { value, ms: Math.round(took), maxDelayMs: ms(histogram.max), p99DelayMs: ms(histogram.percentile(99)) };
}

const { relationships, items } = tenant();
const schema = loadSchemaText();
const load = () => loadavg().map((l) => l.toFixed(2)).join(" ");
console.log(`tenant: ${relationships.length} relationships; bulk check of ${items.length} items; ${cpus().length} cores; load ${load()}`);

const starts: Record<string, number> = {};
let t = performance.now();
const threaded = await createThreadedEngine();
starts["threaded, first start in this process (ms)"] = Math.round(performance.now() - t);
t = performance.now();
const second = await createThreadedEngine();
starts["threaded, second start (ms)"] = Math.round(performance.now() - t);
await second.close();
t = performance.now();
const inThread = await createEmbeddedEngine();
starts["in-thread start (ms)"] = Math.round(performance.now() - t);

const rows: Array<Record<string, unknown>> = [];
const checks: Array<Record<string, unknown>> = [];
for (const [name, engine] of [
  ["threaded", threaded],
  ["in-thread", inThread],
] as const) {
  await engine.writeSchema(schema);
  const seeding = await loopDelayDuring(() => seed(engine, relationships));
  const token = seeding.value;
  rows.push({
    engine: name,
    run: `seed: ${Math.ceil(relationships.length / engine.maxUpdatesPerWrite)} writes`,
    "took (ms)": seeding.ms,
    allowed: "",
    "loop delay max (ms)": seeding.maxDelayMs,
    "loop delay p99 (ms)": seeding.p99DelayMs,
    "idle loop max (ms)": "",
    load: load(),
  });
  const consistency = { kind: "at_least_as_fresh", token } as const;
  await engine.checkBulk(items.slice(0, 10), consistency);
  // One check at a time: what the hop between threads adds to each call.
  const single: number[] = [];
  for (const item of items.slice(0, SINGLE)) {
    const started = performance.now();
    await engine.check(item, consistency);
    single.push(performance.now() - started);
  }
  single.sort((a, b) => a - b);
  const at = (p: number) => Math.round((single[Math.min(single.length - 1, Math.floor(p * single.length))] ?? 0) * 100) / 100;
  checks.push({ engine: name, checks: single.length, "p50 (ms)": at(0.5), "p90 (ms)": at(0.9), "p99 (ms)": at(0.99), load: load() });
  for (let run = 1; run <= RUNS; run++) {
    const bulk = await loopDelayDuring(() => engine.checkBulk(items, consistency));
    const allowed = bulk.value.results.filter((x) => x.allowed).length;
    const idle = await loopDelayDuring(() => sleep(bulk.ms));
    rows.push({
      engine: name,
      run,
      "took (ms)": bulk.ms,
      allowed,
      "loop delay max (ms)": bulk.maxDelayMs,
      "loop delay p99 (ms)": bulk.p99DelayMs,
      "idle loop max (ms)": idle.maxDelayMs,
      load: load(),
    });
  }
}
await threaded.close();
await inThread.close();

console.table(rows);
console.table(checks);
console.table([starts]);
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
writeFileSync(
  new URL("./results/thread.json", import.meta.url),
  `${JSON.stringify({ at: new Date().toISOString(), relationships: relationships.length, items: items.length, cores: cpus().length, rows, checks, starts }, null, 2)}\n`,
);
