import { compactKey } from "../engine/decision-cache.js";
import type { ViewQuestion } from "../store/content-view.js";

export interface ViewDecisionOptions {
  /** Answers kept per generation; past it, the generation starts over. */
  readonly maxEntries: number;
  /** An answer is not given from memory once its generation is older than this (READ_MAX_STALENESS_MS). */
  readonly maxAgeMs: number;
}

export interface ViewDecisionStats {
  hits: number;
  misses: number;
}

interface Generation {
  /** When the oldest answer in it was asked. */
  startedAt: number;
  readonly answers: Map<string, boolean>;
}

/**
 * Remembers `view` answers Postgres gave (VIEW_CHECKS_FROM=postgres), as
 * the decision cache does for SpiceDB's. A SpiceDB answer is exact at its
 * snapshot; a Postgres answer reflects everything committed when it was
 * asked, so the key is the token the answer carries: the newest batch this
 * gateway knows applied (ConsistencyTokens.current()), taken before the
 * question is asked. Every answer remembered under a key was computed after
 * that batch committed, so it reflects at least what its token names; a
 * write this gateway makes (or learns is applied) changes the token before
 * its caller is answered, so nobody who saw a write reads an answer from
 * before it; and no answer is given from memory once its generation is
 * older than maxAgeMs — the bound a minimize_latency read of SpiceDB's
 * pinned snapshot has, which also covers changes committed by other
 * gateways. Callers do not use it for fully consistent reads.
 */
export class ViewDecisionCache {
  readonly stats: ViewDecisionStats = { hits: 0, misses: 0 };
  /** Key → generation; insertion order = age. The previous key is kept for readers that took it a moment before. */
  readonly #generations = new Map<string, Generation>();

  constructor(
    private readonly options: ViewDecisionOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /** The answers to the questions under `key`: from memory where known, the rest from `ask`, one call for all of them. */
  async answer(key: string, questions: readonly ViewQuestion[], ask: (missing: readonly ViewQuestion[]) => Promise<boolean[]>): Promise<boolean[]> {
    const known = this.#fresh(key)?.answers;
    const keys = questions.map(questionKey);
    const results = keys.map((k) => known?.get(k));
    const missing = results.flatMap((r, i) => (r === undefined ? [i] : []));
    this.stats.hits += questions.length - missing.length;
    this.stats.misses += missing.length;
    if (missing.length === 0) return results as boolean[];
    const askedAt = this.now();
    const asked = await ask(missing.map((i) => questions[i]!));
    const generation = this.#generation(key, askedAt);
    missing.forEach((questionIndex, j) => {
      const allowed = asked[j]!;
      results[questionIndex] = allowed;
      if (generation.answers.size >= this.options.maxEntries) generation.answers.clear();
      generation.answers.set(keys[questionIndex]!, allowed);
    });
    return results as boolean[];
  }

  /** The key's generation while it is young enough; an old one is dropped. */
  #fresh(key: string): Generation | undefined {
    const generation = this.#generations.get(key);
    if (generation && this.now() - generation.startedAt > this.options.maxAgeMs) {
      this.#generations.delete(key);
      return undefined;
    }
    return generation;
  }

  /** The key's generation, dated no later than `askedAt`: no answer in it is older than the generation. */
  #generation(key: string, askedAt: number): Generation {
    let generation = this.#fresh(key);
    if (generation) {
      generation.startedAt = Math.min(generation.startedAt, askedAt);
    } else {
      generation = { startedAt: askedAt, answers: new Map() };
      this.#generations.set(key, generation);
      for (const old of this.#generations.keys()) {
        if (this.#generations.size <= 2) break;
        this.#generations.delete(old);
      }
    }
    return generation;
  }
}

/** Ids cannot hold a newline (QUERY_ID_PATTERN), so no two questions share a key; long ones are kept as a digest. */
function questionKey(q: ViewQuestion): string {
  return compactKey(`${q.kind}\n${q.contentId}\n${q.userId}`);
}
