import type { LoadResult } from "./lib/load.js";
import type { LookupLine } from "./lines/lookup.js";
import type { OpsLines } from "./lines/ops.js";
import type { StartupMeasure } from "./lines/startup.js";
import type { BulkWindow, LagWindow } from "./lines/eventloop.js";

/** One row of the check table. */
export interface CheckRow {
  readonly line: string;
  /** "cold" (distinct pairs, each asked once) or "warm" (a set already asked, repeated). */
  readonly cache: "cold" | "warm";
  readonly result: LoadResult;
}

const fmt = (x: number) => (Number.isFinite(x) ? String(x) : "–");
const load = (l: readonly number[]) => l.map((x) => x.toFixed(2)).join(" / ");

export function checkTable(rows: readonly CheckRow[]): string {
  const out = [
    "| line | cache | clients | calls | errors | checks/s | p50 ms | p90 ms | p99 ms | max ms | load generator CPU ms/call |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const { line, cache, result: r } of rows) {
    out.push(`| ${line} | ${cache} | ${r.clients} | ${r.calls}${r.timeLimited ? " (time limit)" : ""} | ${r.errors} | ${fmt(r.perSecond)} | ${fmt(r.p50_ms)} | ${fmt(r.p90_ms)} | ${fmt(r.p99_ms)} | ${fmt(r.max_ms)} | ${fmt(r.clientCpuMsPerCall)} |`);
  }
  return out.join("\n");
}

export function lookupTable(rows: ReadonlyArray<{ line: string; lookup: LookupLine }>): string {
  const out = [
    "| line | probe | expected | first result ms | all ms | results | distinct | each once | as expected |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const { line, lookup: l } of rows) {
    out.push(`| ${line} | ${l.probe} | ${l.expected} | ${fmt(l.firstResultMs)} | ${fmt(l.allMs)} | ${l.count} | ${l.distinct} | ${l.eachOnce ? "yes" : "NO"} | ${l.matchesExpected ? "yes" : `NO${l.error ? ` (${l.error})` : ""}`} |`);
  }
  return out.join("\n");
}

export function loadLine(label: string, start: readonly number[], end: readonly number[]): string {
  return `- ${label}: load average (1/5/15 min) ${load(start)} before, ${load(end)} after`;
}

/** The writes, start-up and event-loop lines (bench/lines/ops.ts), as markdown sections. */
export function opsMarkdown(ops: OpsLines): string[] {
  const out: string[] = [];
  const w = ops.writes;
  if (w) {
    out.push(
      "",
      "## Writes (Share/Unshare, AddGroupMember/RemoveGroupMember)",
      `sharegraph → ${w.engine === "spicedb" ? "supervised SpiceDB" : w.engine}, on real Postgres; each writer cycles Share → Unshare → AddGroupMember → RemoveGroupMember on its own items and its own group (${w.pairs.shares} items, ${w.pairs.memberships} memberships), acting as ${w.actor}. Server serving after ${(w.startMs / 1000).toFixed(1)} s${w.rebuiltRelationships ? ` (rebuilt ${w.rebuiltRelationships})` : ""}.`,
      "",
      "| writers | seconds | calls | writes/s | p50 ms | p90 ms | p99 ms | max ms | errors (by code) | Share p50 / p99 | Unshare p50 / p99 | AddGroupMember p50 / p99 | RemoveGroupMember p50 / p99 |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    );
    for (const p of [w.one, w.concurrent]) {
      const op = (o: keyof typeof p.byOp) => `${fmt(p.byOp[o].p50_ms)} / ${fmt(p.byOp[o].p99_ms)}`;
      const errors = p.errors ? `${p.errors} (${Object.entries(p.errorsByCode).map(([c, n]) => `${c} ${n}`).join(", ")})` : "0";
      out.push(`| ${p.writers} | ${p.seconds} | ${p.calls} | ${fmt(p.perSecond)} | ${fmt(p.p50_ms)} | ${fmt(p.p90_ms)} | ${fmt(p.p99_ms)} | ${fmt(p.max_ms)} | ${errors} | ${op("share")} | ${op("unshare")} | ${op("addGroupMember")} | ${op("removeGroupMember")} |`);
    }
    const r = w.restore.reconcile;
    const statements = [w.one, w.concurrent].filter((p) => p.statementsPerWrite).map((p) => `${p.writers} writer${p.writers === 1 ? "" : "s"}: ${p.statementsPerWrite!.sharegraph} in sharegraph's database, ${p.statementsPerWrite!.spicedb} in SpiceDB's datastore`);
    out.push(
      "",
      ...(statements.length ? [`Postgres statements per write (pg_stat_statements): ${statements.join("; ")}.`] : []),
      `Unrelated writes: at ${w.concurrent.writers} writers p50 is ${w.latencyRatio.p50}× and p99 ${w.latencyRatio.p99}× the 1-writer figure, throughput ${w.throughputRatio}× (1× latency: nobody waits; ${w.concurrent.writers}× latency at 1× throughput: fully serialized).${w.concurrent.shareNoOps + w.one.shareNoOps ? ` ${w.concurrent.shareNoOps + w.one.shareNoOps} shares were no-ops.` : ""}`,
      `Restore: ${w.restore.leftoverGrants} grants and ${w.restore.leftoverMemberships} memberships left by failed calls removed; grants ${w.restore.countsBefore.grants} → ${w.restore.countsAfter.grants}, memberships ${w.restore.countsBefore.groupMembers} → ${w.restore.countsAfter.groupMembers}; ` +
        ("error" in r ? `Reconcile dry run failed: ${r.error}` : `Reconcile dry run (${(r.ms / 1000).toFixed(1)} s): ${r.expected} expected, ${r.actual} in SpiceDB, **${r.missing} missing, ${r.extra} extra**${r.missingExamples.length + r.extraExamples.length ? ` (e.g. ${[...r.missingExamples, ...r.extraExamples].slice(0, 3).join("; ")})` : ""}`) +
        `; dataset ${w.restore.restored ? "restored" : "**NOT restored**"}.`,
      loadLine("writes line", w.loadavg.start, w.loadavg.end),
    );
  }
  const s = ops.startup;
  if (s) {
    out.push("", "## Start-up (spawn → \"serving\") and memory right after", "", "| engine | dataset | relationships | listening s | serving s | rebuilt | gateway RSS MB | SpiceDB RSS MB |", "|---|---|---|---|---|---|---|---|");
    const row = (label: string, m: StartupMeasure) =>
      out.push(`| ${label} | scale ${m.datasetScale} | ${m.relationships} | ${m.listeningMs !== undefined ? (m.listeningMs / 1000).toFixed(1) : "–"} | ${(m.servingMs / 1000).toFixed(1)} | ${m.rebuiltRelationships ?? "no"} | ${m.gatewayRssMb} | ${m.engine === "spicedb" ? m.spicedbRssMb : "–"} |`);
    if (s.supervised?.buildingStart) row("supervised SpiceDB, first start (builds its datastore)", s.supervised.buildingStart);
    if (s.supervised) row("supervised SpiceDB, datastore already built", s.supervised.measured);
    for (const m of s.embedded) row("embedded", m);
    const per = s.embeddedPer100k;
    if (per) {
      out.push(
        "",
        `Embedded, per 100k relationships: ${per.perSize.map((p) => `scale ${p.datasetScale}: ${(p.servingMs / 1000).toFixed(1)} s and ${p.rssMb} MB`).join("; ")}` +
          (per.marginal ? `; marginal between the two sizes (fixed cost left out): ${(per.marginal.servingMs / 1000).toFixed(1)} s and ${per.marginal.rssMb} MB per 100k` : "") +
          ".",
      );
    }
    out.push(loadLine("start-up line", s.loadavg.start, s.loadavg.end));
  }
  const e = ops.eventloop;
  if (e) {
    out.push(
      "",
      `## Event-loop delay (target: no block > ${e.targetMaxMs} ms)`,
      "",
      "| engine | dataset | start-up s | start-up max / p99 ms (probe; CPU main thread / process / wall ms) | longest start-up delays (s after spawn: ms, main-thread CPU ms in that 250 ms tick, phase) | listening → serving: max ms | /metrics scrapes while starting | bulk items (subjects) | bulk ms | bulk max / p99 ms (/metrics) | bulk max / p99 ms (probe; CPU main thread / process / wall ms) | longest delays in the bulk (s after the call: ms, CPU main thread / process ms in that tick) | /healthz slowest ms |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    );
    for (const x of e.engines) {
      const lag = (l: LagWindow | undefined) => (l ? `${fmt(l.max_ms)} / ${fmt(l.p99_ms)}${l.mainCpuMs !== undefined ? ` (${fmt(l.mainCpuMs)} / ${fmt(l.processCpuMs ?? Number.NaN)}${l.wallMs !== undefined ? ` / ${fmt(l.wallMs)}` : ""})` : ""}` : "–");
      const scrapes = x.startup.scrapes.length ? `${x.startup.scrapes.length}, max ${Math.max(...x.startup.scrapes.map((w) => w.max_ms))} ms` : "none (not listening before ready)";
      const ticks = x.startup.worstTicks.map((t) => `${(t.atMs / 1000).toFixed(1)}: ${t.max_ms}, ${t.mainCpuMs}, after "${t.after}"`).join("; ");
      const listening = x.startup.whileListening ? `${x.startup.whileListening.max_ms} (over ${(x.startup.whileListening.ms / 1000).toFixed(1)} s)` : "–";
      const settings = Object.entries(x.settings).map(([k, v]) => `${k}=${v}`).join(" ");
      const bulkCells = (b: BulkWindow) =>
        `${b.items} (${b.distinctSubjects})${b.error ? ` ERROR ${b.error}` : ""} | ${fmt(b.ms)} | ${lag(b.metrics)} | ${lag(b.probe)} | ${b.worstTicks.map((t) => `${(t.atMs / 1000).toFixed(1)}: ${t.max_ms}, ${t.mainCpuMs} / ${t.processCpuMs}`).join("; ")} | ${fmt(b.healthz.maxMs)} |`;
      out.push(
        `| ${x.engine}${settings ? ` (${settings})` : ""} | scale ${x.datasetScale} (${x.relationships}) | ${(x.startup.servingMs / 1000).toFixed(1)} | ${lag(x.startup.probe)} | ${ticks} | ${listening} | ${scrapes} | first: ${bulkCells(x.bulk)}`,
      );
      if (x.bulkAgain) out.push(`| ${x.engine}, same process | | | | | | | second, other pairs: ${bulkCells(x.bulkAgain)}`);
    }
    out.push("", e.note, ...e.engines.map((x) => loadLine(`event-loop line, ${x.engine}`, x.loadavg.start, x.loadavg.end)));
  }
  return out;
}
