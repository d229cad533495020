import { loadavg } from "node:os";
import { CteBaseline } from "../cte.js";
import type { Dataset } from "../dataset.js";
import { runLoad, type LoadResult } from "../lib/load.js";
import { sliceSample } from "../lib/sample.js";
import { answers } from "./checks.js";
import { cteLookup, type LookupLine } from "./lookup.js";

export interface CteSession {
  readonly agreementAnswers: boolean[];
  /** Cold only (the CTE has no decision cache): 1 client on the single-client slice, then each concurrency on the concurrent slice. */
  readonly checks: Record<string, LoadResult>;
  readonly lookups: LookupLine[];
  readonly loadavg: { start: number[]; end: number[] };
}

/** The recursive-CTE baseline on the dataset's own database (bench/cte.ts). */
export async function cteSession(dataset: Dataset, options: { concurrency: readonly number[]; seconds: number; progress: (line: string) => void }): Promise<CteSession> {
  const start = loadavg();
  const cte = new CteBaseline(dataset.databaseUrl, Math.max(8, ...options.concurrency));
  try {
    const check = (pair: Dataset["sample"][number]) => cte.check(pair.userId, pair.resource);
    const slices = sliceSample(dataset.sample);
    const agreementAnswers = await answers(check, slices.agreement);
    const ms = options.seconds * 1000;
    const checks: Record<string, LoadResult> = {};
    checks["1"] = await runLoad({ clients: 1, items: slices.singleCold, maxMs: ms, call: check });
    for (const clients of options.concurrency) checks[String(clients)] = await runLoad({ clients, items: slices.concurrentCold, maxMs: ms, call: check });
    options.progress("CTE: checks done");
    const lookups: LookupLine[] = [];
    for (const probe of dataset.probes) lookups.push(await cteLookup(cte, probe));
    options.progress("CTE: lookups done");
    return { agreementAnswers, checks, lookups, loadavg: { start, end: loadavg() } };
  } finally {
    await cte.close();
  }
}
