/**
 * Issue 8: `view` answers from Postgres remembered like the decision cache
 * remembers SpiceDB's (src/domain/view-decisions.ts). What must hold: an
 * answer is reused only under the token it was asked under, never once its
 * generation is older than the staleness bound (counted from when the oldest
 * answer in it was asked, not when it arrived), and never for another
 * question.
 */
import { describe, expect, it } from "vitest";
import { ViewDecisionCache } from "../../src/domain/view-decisions.js";
import type { ViewQuestion } from "../../src/store/content-view.js";

const q = (userId: string, contentId: string, kind = "report"): ViewQuestion => ({ userId, kind, contentId });

/** An index that answers from `truth` and records what it was asked. */
function index(truth: (q: ViewQuestion) => boolean) {
  const asked: ViewQuestion[][] = [];
  return {
    asked,
    ask: async (missing: readonly ViewQuestion[]) => {
      asked.push([...missing]);
      return missing.map(truth);
    },
  };
}

describe("ViewDecisionCache", () => {
  it("answers a repeated question under the same token from memory, and asks again under a newer token", async () => {
    let now = 0;
    const cache = new ViewDecisionCache({ maxEntries: 100, maxAgeMs: 1_000 }, () => now);
    let allowed = true;
    const pg = index(() => allowed);
    expect(await cache.answer("t1", [q("bob", "q3")], pg.ask)).toEqual([true]);
    allowed = false; // revoked and applied: the token moves on
    now = 10;
    expect(await cache.answer("t1", [q("bob", "q3")], pg.ask)).toEqual([true]);
    expect(await cache.answer("t2", [q("bob", "q3")], pg.ask)).toEqual([false]);
    expect(pg.asked).toHaveLength(2);
    expect(cache.stats).toEqual({ hits: 1, misses: 2 });
  });

  it("asks only the questions it does not know, in one call, and keeps the answers in order", async () => {
    const cache = new ViewDecisionCache({ maxEntries: 100, maxAgeMs: 1_000 }, () => 0);
    const pg = index((x) => x.contentId !== "q4");
    await cache.answer("t", [q("bob", "q3")], pg.ask);
    expect(await cache.answer("t", [q("bob", "q4"), q("bob", "q3"), q("cid", "q3")], pg.ask)).toEqual([false, true, true]);
    expect(pg.asked[1]).toEqual([q("bob", "q4"), q("cid", "q3")]);
  });

  it("gives no answer from memory once its generation is older than the staleness bound", async () => {
    let now = 0;
    const cache = new ViewDecisionCache({ maxEntries: 100, maxAgeMs: 1_000 }, () => now);
    let allowed = true;
    const pg = index(() => allowed);
    await cache.answer("t", [q("bob", "q3")], pg.ask);
    allowed = false; // changed by another gateway: this one's token does not move
    now = 1_000;
    expect(await cache.answer("t", [q("bob", "q3")], pg.ask)).toEqual([true]);
    now = 1_001;
    expect(await cache.answer("t", [q("bob", "q3")], pg.ask)).toEqual([false]);
  });

  it("dates an answer from when it was asked, not when it arrived", async () => {
    let now = 0;
    const cache = new ViewDecisionCache({ maxEntries: 100, maxAgeMs: 1_000 }, () => now);
    let allowed = true;
    const slow = async (missing: readonly ViewQuestion[]) => {
      const answers = missing.map(() => allowed);
      now = 900; // the statement took 900 ms
      return answers;
    };
    await cache.answer("t", [q("bob", "q3")], slow);
    allowed = false;
    now = 1_001; // 101 ms after it arrived, 1,001 ms after it was asked
    expect(await cache.answer("t", [q("bob", "q3")], async (m) => m.map(() => allowed))).toEqual([false]);
  });

  it("an older answer joining a generation makes the generation as old as it", async () => {
    let now = 500;
    const cache = new ViewDecisionCache({ maxEntries: 100, maxAgeMs: 1_000 }, () => now);
    let allowed = true;
    // A slow question asked at 0 arrives after a quick one asked at 500 started the generation.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    now = 0;
    const slowAnswer = cache.answer("t", [q("bob", "q3")], async (m) => {
      await held;
      return m.map(() => allowed);
    });
    now = 500;
    await cache.answer("t", [q("cid", "q3")], async (m) => m.map(() => allowed));
    release();
    await slowAnswer;
    allowed = false;
    now = 1_001;
    expect(await cache.answer("t", [q("cid", "q3"), q("bob", "q3")], async (m) => m.map(() => allowed))).toEqual([false, false]);
  });

  it("keeps questions apart even when their ids would run together", async () => {
    const cache = new ViewDecisionCache({ maxEntries: 100, maxAgeMs: 1_000 }, () => 0);
    const pg = index((x) => x.userId === "b@c");
    expect(await cache.answer("t", [q("b@c", "a")], pg.ask)).toEqual([true]);
    expect(await cache.answer("t", [q("c", "a@b")], pg.ask)).toEqual([false]);
    expect(await cache.answer("t", [q("b", "a", "report:x")], pg.ask)).toEqual([false]);
  });

  it("keeps 1,024-character ids that differ only at their end apart", async () => {
    const cache = new ViewDecisionCache({ maxEntries: 100, maxAgeMs: 1_000 }, () => 0);
    const id = (end: string) => `${"r".repeat(1023)}${end}`;
    const pg = index((x) => x.contentId.endsWith("a"));
    expect(await cache.answer("t", [q("u".repeat(1024), id("a"))], pg.ask)).toEqual([true]);
    expect(await cache.answer("t", [q("u".repeat(1024), id("b"))], pg.ask)).toEqual([false]);
    expect(await cache.answer("t", [q("u".repeat(1024), id("a"))], pg.ask)).toEqual([true]);
    expect(pg.asked).toHaveLength(2);
  });

  it("starts a generation over when it is full, and keeps no more than two tokens", async () => {
    const cache = new ViewDecisionCache({ maxEntries: 2, maxAgeMs: 1_000 }, () => 0);
    const pg = index(() => true);
    await cache.answer("t", [q("a", "1"), q("b", "1"), q("c", "1")], pg.ask);
    await cache.answer("t", [q("c", "1")], pg.ask);
    expect(pg.asked).toHaveLength(1);
    await cache.answer("t", [q("a", "1")], pg.ask);
    expect(pg.asked).toHaveLength(2);
    await cache.answer("u", [q("a", "1")], pg.ask);
    await cache.answer("v", [q("a", "1")], pg.ask);
    await cache.answer("t", [q("a", "1")], pg.ask);
    expect(pg.asked).toHaveLength(5);
  });
});
