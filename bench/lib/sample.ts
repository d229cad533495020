import type { SamplePair } from "../dataset.js";

/**
 * Disjoint slices of the dataset's (shuffled) check sample, so that a "cold"
 * line never asks a pair an earlier line of the same process asked:
 * agreement (answers compared with the CTE), single-client cold, concurrent
 * cold; warm lines repeat a small set. The agreement slice has
 * BENCH_AGREEMENT pairs (default 2,000), at most a sixth of the sample.
 */
export interface SampleSlices {
  readonly agreement: readonly SamplePair[];
  readonly singleCold: readonly SamplePair[];
  readonly concurrentCold: readonly SamplePair[];
  readonly warm: readonly SamplePair[];
}

export function sliceSample(sample: readonly SamplePair[], agreementSize = Number(process.env["BENCH_AGREEMENT"] ?? 2_000)): SampleSlices {
  const n = sample.length;
  const agreement = Math.min(agreementSize, Math.floor(n / 6));
  const single = Math.min(3_000, Math.floor(n / 4));
  return {
    agreement: sample.slice(0, agreement),
    singleCold: sample.slice(agreement, agreement + single),
    concurrentCold: sample.slice(agreement + single),
    warm: sample.slice(agreement, agreement + Math.min(256, single)),
  };
}

/** The warm set repeated to `calls` items. */
export function repeated<T>(items: readonly T[], calls: number): T[] {
  return Array.from({ length: calls }, (_, i) => items[i % items.length]!);
}
