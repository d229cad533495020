import type { LoadResult } from "./lib/load.js";
import type { LookupLine } from "./lines/lookup.js";

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
    "| line | cache | clients | calls | errors | checks/s | p50 ms | p90 ms | p99 ms | max ms |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const { line, cache, result: r } of rows) {
    out.push(`| ${line} | ${cache} | ${r.clients} | ${r.calls}${r.timeLimited ? " (time limit)" : ""} | ${r.errors} | ${fmt(r.perSecond)} | ${fmt(r.p50_ms)} | ${fmt(r.p90_ms)} | ${fmt(r.p99_ms)} | ${fmt(r.max_ms)} |`);
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
