import type { SamplePair } from "../dataset.js";
import { runLoad, type LoadResult } from "../lib/load.js";
import { repeated, type SampleSlices } from "../lib/sample.js";

/** One way of answering `view` checks: sharegraph over gRPC, SpiceDB alone, the CTE. */
export type Checker = (pair: SamplePair, client: number) => Promise<boolean>;

export interface CheckLines {
  /** Distinct pairs, one client: each pair asked once in this process. */
  readonly singleCold: LoadResult;
  /** Distinct pairs, `concurrency` clients. */
  readonly concurrentCold: LoadResult;
  /** A set of pairs asked once just before (untimed), then repeated (decision cache, engine caches). */
  readonly singleWarm?: LoadResult;
  readonly concurrentWarm?: LoadResult;
}

export interface CheckLineOptions {
  readonly concurrency: number;
  /** Time limit of each line. */
  readonly seconds: number;
  readonly warm: boolean;
}

/** Answers to a list of pairs (not timed), `clients` at a time. */
export async function answers(check: Checker, pairs: readonly SamplePair[], clients = 8): Promise<boolean[]> {
  const out: boolean[] = new Array<boolean>(pairs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      while (next < pairs.length) {
        const i = next++;
        out[i] = await check(pairs[i]!, client);
      }
    }),
  );
  return out;
}

export async function checkLines(check: Checker, slices: SampleSlices, options: CheckLineOptions): Promise<CheckLines> {
  const ms = options.seconds * 1000;
  const singleCold = await runLoad({ clients: 1, items: slices.singleCold, maxMs: ms, call: check });
  const concurrentCold = await runLoad({ clients: options.concurrency, items: slices.concurrentCold, maxMs: ms, call: check });
  if (!options.warm) return { singleCold, concurrentCold };
  // The warm set is asked once, untimed, right before: a time-limited cold line may not have reached all of it.
  await answers(check, slices.warm, 8);
  const singleWarm = await runLoad({ clients: 1, items: repeated(slices.warm, 5_000), maxMs: ms, call: check });
  const concurrentWarm = await runLoad({ clients: options.concurrency, items: repeated(slices.warm, 200_000), maxMs: ms, call: check });
  return { singleCold, concurrentCold, singleWarm, concurrentWarm };
}
