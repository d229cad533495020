import type { Probe } from "../dataset.js";
import type { PermissionClient } from "../lib/clients.js";
import { round } from "../lib/load.js";
import type { CteBaseline } from "../cte.js";

const KINDS = ["dashboard", "report", "board", "workbook"] as const;

export interface LookupLine {
  readonly probe: string;
  readonly userId: string;
  readonly expected: number;
  /** The four content kinds looked up at once, one stream each. */
  readonly firstResultMs: number;
  readonly allMs: number;
  readonly count: number;
  readonly distinct: number;
  /** Every resource came exactly once. */
  readonly eachOnce: boolean;
  readonly matchesExpected: boolean;
  readonly error?: string;
}

/** LookupResources (unpaged stream, view) for a probe user over every content kind, streams in parallel. */
export async function sharegraphLookup(client: PermissionClient, probe: Probe): Promise<LookupLine> {
  const started = performance.now();
  let first = Number.NaN;
  const ids: string[] = [];
  let error: string | undefined;
  await Promise.all(
    KINDS.map(async (kind) => {
      try {
        for await (const r of client.lookupResources({ resourceType: kind, permission: "view", subject: { type: "user", id: probe.userId, relation: "" } }, { timeoutMs: 600_000 })) {
          if (Number.isNaN(first)) first = performance.now() - started;
          ids.push(`${kind}:${r.resourceId}`);
        }
      } catch (err) {
        error ??= `${kind}: ${err instanceof Error ? err.message : String(err)}`;
      }
    }),
  );
  return summary(probe, first, performance.now() - started, ids, error);
}

/** The same question answered by the CTE (one query per kind, in parallel). */
export async function cteLookup(cte: CteBaseline, probe: Probe): Promise<LookupLine> {
  const started = performance.now();
  let first = Number.NaN;
  const ids: string[] = [];
  await Promise.all(
    KINDS.map(async (kind) => {
      const found = await cte.lookup(probe.userId, kind);
      if (Number.isNaN(first) && found.length > 0) first = performance.now() - started;
      ids.push(...found.map((id) => `${kind}:${id}`));
    }),
  );
  return summary(probe, first, performance.now() - started, ids, undefined);
}

function summary(probe: Probe, first: number, all: number, ids: readonly string[], error: string | undefined): LookupLine {
  const distinct = new Set(ids).size;
  return {
    probe: probe.name,
    userId: probe.userId,
    expected: probe.expected,
    firstResultMs: round(first),
    allMs: round(all),
    count: ids.length,
    distinct,
    eachOnce: distinct === ids.length,
    matchesExpected: distinct === probe.expected && !error,
    ...(error ? { error } : {}),
  };
}
