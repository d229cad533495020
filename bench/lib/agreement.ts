import type { SamplePair } from "../dataset.js";

export interface Agreement {
  readonly pairs: number;
  readonly agree: number;
  readonly disagree: number;
  readonly allowed: number;
  readonly denied: number;
  /** Every disagreement (up to 50), with both answers. */
  readonly disagreements: ReadonlyArray<{ pair: SamplePair; reference: boolean; other: boolean }>;
  /** Allowed / asked per sample path (as answered by the reference). */
  readonly byPath: Record<string, { asked: number; allowed: number }>;
}

/** Compares `other` answers with `reference` answers on the same pairs. */
export function compareAnswers(pairs: readonly SamplePair[], reference: readonly boolean[], other: readonly boolean[]): Agreement {
  const disagreements: Array<{ pair: SamplePair; reference: boolean; other: boolean }> = [];
  const byPath: Record<string, { asked: number; allowed: number }> = {};
  let agree = 0;
  pairs.forEach((pair, i) => {
    const path = (byPath[pair.path] ??= { asked: 0, allowed: 0 });
    path.asked++;
    if (reference[i]) path.allowed++;
    if (reference[i] === other[i]) agree++;
    else if (disagreements.length < 50) disagreements.push({ pair, reference: Boolean(reference[i]), other: Boolean(other[i]) });
  });
  const allowed = reference.filter(Boolean).length;
  return { pairs: pairs.length, agree, disagree: pairs.length - agree, allowed, denied: reference.length - allowed, disagreements, byPath };
}
