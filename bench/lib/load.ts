/**
 * A closed-loop load generator: `clients` callers, each sending its next
 * request as soon as the previous answer arrives, taking work items in order
 * from one shared list until it is used up or the time is over. Latencies
 * are measured per call (ms, performance.now()).
 */

export interface LoadResult {
  readonly clients: number;
  readonly calls: number;
  readonly errors: number;
  /** First error message, if any. */
  readonly firstError?: string;
  readonly seconds: number;
  readonly perSecond: number;
  readonly p50_ms: number;
  readonly p90_ms: number;
  readonly p99_ms: number;
  readonly max_ms: number;
  /** Stopped by the time limit before the list ran out. */
  readonly timeLimited: boolean;
  /**
   * This process's CPU (user + system) per answered call, ms: the load
   * generator's share of a machine it shares with the servers it measures.
   */
  readonly clientCpuMsPerCall: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!);
}

export const round = (x: number, digits = 2) => Number(x.toFixed(digits));

export async function runLoad<T>(options: {
  readonly clients: number;
  readonly items: readonly T[];
  /** Stop taking new items after this long. */
  readonly maxMs: number;
  readonly call: (item: T, client: number) => Promise<unknown>;
}): Promise<LoadResult> {
  const { clients, items, maxMs, call } = options;
  const latencies: number[] = [];
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  let timeLimited = false;
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const worker = async (client: number) => {
    for (;;) {
      if (next >= items.length) return;
      if (performance.now() - started > maxMs) {
        timeLimited = true;
        return;
      }
      const item = items[next++]!;
      const t = performance.now();
      try {
        await call(item, client);
        latencies.push(performance.now() - t);
      } catch (err) {
        errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, i) => worker(i)));
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  latencies.sort((a, b) => a - b);
  return {
    clients,
    calls: latencies.length,
    errors,
    ...(firstError ? { firstError } : {}),
    seconds: round(seconds),
    perSecond: round(latencies.length / seconds, 1),
    p50_ms: percentile(latencies, 0.5),
    p90_ms: percentile(latencies, 0.9),
    p99_ms: percentile(latencies, 0.99),
    max_ms: round(latencies.at(-1) ?? Number.NaN),
    timeLimited,
    clientCpuMsPerCall: round((cpu.user + cpu.system) / 1000 / Math.max(1, latencies.length + errors), 3),
  };
}
