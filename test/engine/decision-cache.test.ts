/**
 * The decision cache: the whole engine suite through it (it must answer
 * exactly as the engine it wraps), and what reaches the wrapped engine.
 */
import { describe, expect, it } from "vitest";
import { compactKey, DecisionCachingEngine } from "../../src/engine/decision-cache.js";
import { createEmbeddedEngine } from "../../src/engine/embedded.js";
import type { CheckItem, Engine } from "../../src/engine/engine.js";
import { loadSchemaText } from "../../src/engine/schema.js";
import { parseRelationship } from "../../src/sync/relationship-text.js";
import { engineSuite } from "./engine-suite.js";

engineSuite("decision-caching engine (over embedded)", async () => {
  const engine = new DecisionCachingEngine(await createEmbeddedEngine());
  return { engine, close: () => engine.close() };
});

function counting(inner: Engine) {
  const calls = { check: 0, bulk: [] as number[] };
  const spy: Engine = Object.create(inner) as Engine;
  spy.check = (item, consistency) => {
    calls.check++;
    return inner.check(item, consistency);
  };
  spy.checkBulk = (items, consistency) => {
    calls.bulk.push(items.length);
    return inner.checkBulk(items, consistency);
  };
  return { spy, calls };
}

const item = (user: string, permission = "view"): CheckItem => ({
  resource: { type: "dashboard", id: "d1" },
  permission,
  subject: { type: "user", id: user },
});

describe("decision cache", () => {
  async function withEngine(run: (engine: DecisionCachingEngine, calls: ReturnType<typeof counting>["calls"], inner: Engine) => Promise<void>) {
    const inner = await createEmbeddedEngine();
    try {
      await inner.writeSchema(loadSchemaText());
      const { spy, calls } = counting(inner);
      await run(new DecisionCachingEngine(spy), calls, inner);
    } finally {
      await inner.close();
    }
  }
  const touch = (r: string) => ({ op: "touch" as const, relationship: parseRelationship(r) });
  const remove = (r: string) => ({ op: "delete" as const, relationship: parseRelationship(r) });
  const SETUP = ["dashboard:d1#workspace@workspace:w", "workspace:w#viewer@user:ann", "workspace:w#view_level@user:ann", "dashboard:d1#viewer@user:ann", "dashboard:d1#view_role@user:ann", "workspace:w#ancestor_or_self@workspace:w", "workspace:w#descendant_or_self@workspace:w", "workspace:w#relative@workspace:w"];

  it("answers a repeated check at the same snapshot without asking the engine again", async () => {
    await withEngine(async (engine, calls, inner) => {
      const at = { kind: "at_exact_snapshot" as const, token: await inner.write(SETUP.map(touch)) };
      expect((await engine.check(item("ann"), at)).allowed).toBe(true);
      expect((await engine.check(item("bob"), at)).allowed).toBe(false);
      expect((await engine.check(item("ann"), at)).allowed).toBe(true);
      expect((await engine.check(item("bob"), at)).allowed).toBe(false);
      expect(calls.check).toBe(2);
      expect(engine.stats).toMatchObject({ hits: 2, misses: 2 });
    });
  });

  it("never answers a newer snapshot from an older one: a revoke is seen at its own snapshot", async () => {
    await withEngine(async (engine, calls, inner) => {
      const before = { kind: "at_exact_snapshot" as const, token: await inner.write(SETUP.map(touch)) };
      expect((await engine.check(item("ann"), before)).allowed).toBe(true);
      const after = { kind: "at_exact_snapshot" as const, token: await inner.write([remove("dashboard:d1#viewer@user:ann"), remove("dashboard:d1#view_role@user:ann")]) };
      expect((await engine.check(item("ann"), after)).allowed).toBe(false);
      expect((await engine.check(item("ann"), before)).allowed).toBe(true);
      expect(calls.check).toBe(2);
    });
  });

  it("passes checks at any other consistency straight through", async () => {
    await withEngine(async (engine, calls, inner) => {
      const token = await inner.write(SETUP.map(touch));
      await engine.check(item("ann"), { kind: "at_least_as_fresh", token });
      await engine.check(item("ann"), { kind: "at_least_as_fresh", token });
      await engine.check(item("ann"), { kind: "fully_consistent" });
      expect(calls.check).toBe(3);
    });
  });

  it("joins identical checks in flight, and asks a bulk check only for what it does not know", async () => {
    await withEngine(async (engine, calls, inner) => {
      const at = { kind: "at_exact_snapshot" as const, token: await inner.write(SETUP.map(touch)) };
      const answers = await Promise.all([engine.check(item("ann"), at), engine.check(item("ann"), at), engine.check(item("ann"), at)]);
      expect(answers.map((a) => a.allowed)).toEqual([true, true, true]);
      expect(calls.check).toBe(1);
      const bulk = await engine.checkBulk([item("ann"), item("bob"), item("cat"), item("ann", "edit")], at);
      expect(bulk.results.map((r) => r.allowed)).toEqual([true, false, false, false]);
      expect(calls.bulk).toEqual([3]);
      const again = await engine.checkBulk([item("bob"), item("ann")], at);
      expect(again.results.map((r) => r.allowed)).toEqual([false, true]);
      expect(calls.bulk).toEqual([3]);
    });
  });
});

describe("decision cache keys (hostile callers)", () => {
  it("keeps a key of 1,024-character ids bounded in size, distinct from any other, and short keys as they are", () => {
    const long = (end: string) => `report:${"r".repeat(1023)}${end}#view@user:${"u".repeat(1024)}`;
    expect(compactKey(long("a")).length).toBeLessThanOrEqual(160);
    expect(compactKey(long("a"))).not.toBe(compactKey(long("b")));
    expect(compactKey("report:q3#view@user:bob")).toBe("report:q3#view@user:bob");
  });
});
