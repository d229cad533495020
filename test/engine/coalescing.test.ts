/**
 * The coalescing engine: the whole engine suite through it (it must answer
 * exactly as the engine it wraps), and how it groups concurrent checks.
 */
import { describe, expect, it } from "vitest";
import { CoalescingEngine } from "../../src/engine/coalescing.js";
import { createEmbeddedEngine } from "../../src/engine/embedded.js";
import { EngineError, type CheckItem, type Consistency, type Engine } from "../../src/engine/engine.js";
import { loadSchemaText } from "../../src/engine/schema.js";
import { parseRelationship } from "../../src/sync/relationship-text.js";
import { engineSuite } from "./engine-suite.js";

engineSuite("coalescing engine (over embedded)", async () => {
  const engine = new CoalescingEngine(await createEmbeddedEngine());
  return { engine, close: () => engine.close() };
});

/** Counts the calls that reach the wrapped engine. */
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

describe("coalescing", () => {
  const item = (dashboard: string, user: string): CheckItem => ({
    resource: { type: "dashboard", id: dashboard },
    permission: "manage",
    subject: { type: "user", id: user },
  });

  async function withEngine(run: (engine: Engine, calls: ReturnType<typeof counting>["calls"], token: string) => Promise<void>) {
    const inner = await createEmbeddedEngine();
    try {
      await inner.writeSchema(loadSchemaText());
      const token = await inner.write(
        ["dashboard:d1#workspace@workspace:w", "dashboard:d1#manager@user:ann", "workspace:w#manager@user:ann", "workspace:w#view_level@user:ann", "workspace:w#analyze_level@user:ann", "workspace:w#analyst@user:bob", "workspace:w#view_level@user:bob", "workspace:w#analyze_level@user:bob", "workspace:w#ancestor_or_self@workspace:w", "workspace:w#descendant_or_self@workspace:w", "workspace:w#relative@workspace:w"].map((r) => ({
          op: "touch" as const,
          relationship: parseRelationship(r),
        })),
      );
      const { spy, calls } = counting(inner);
      await run(new CoalescingEngine(spy, 25), calls, token);
    } finally {
      await inner.close();
    }
  }

  it("answers checks that arrive together with one bulk check per 25 (its batch limit), each with its own answer", async () => {
    await withEngine(async (engine, calls, token) => {
      const fresh: Consistency = { kind: "at_least_as_fresh", token };
      const asked = Array.from({ length: 60 }, (_, i) => item("d1", i % 3 === 0 ? "ann" : i % 3 === 1 ? "bob" : "cat"));
      const answers = await Promise.all(asked.map((i) => engine.check(i, fresh)));
      expect(answers.map((a) => a.allowed)).toEqual(asked.map((i) => i.subject.id === "ann"));
      expect(answers.every((a) => a.token !== "")).toBe(true);
      expect(calls.bulk).toEqual([25, 25, 10]);
      expect(calls.check).toBe(0);
    });
  });

  it("sends a lone check as a single check, and keeps different consistencies apart", async () => {
    await withEngine(async (engine, calls, token) => {
      expect((await engine.check(item("d1", "ann"), { kind: "fully_consistent" })).allowed).toBe(true);
      expect(calls).toEqual({ check: 1, bulk: [] });
      await Promise.all([
        engine.check(item("d1", "ann"), { kind: "fully_consistent" }),
        engine.check(item("d1", "bob"), { kind: "fully_consistent" }),
        engine.check(item("d1", "ann"), { kind: "at_least_as_fresh", token }),
      ]);
      expect(calls.bulk).toEqual([2]);
      expect(calls.check).toBe(2);
    });
  });

  it("rejects only the item SpiceDB could not answer, with an EngineError", async () => {
    await withEngine(async (engine) => {
      const bad: CheckItem = { ...item("d1", "ann"), permission: "no_such_permission" };
      const [ok, failed] = await Promise.allSettled([engine.check(item("d1", "ann"), { kind: "fully_consistent" }), engine.check(bad, { kind: "fully_consistent" })]);
      expect(ok).toMatchObject({ status: "fulfilled", value: { allowed: true } });
      expect(failed.status).toBe("rejected");
      expect((failed as PromiseRejectedResult).reason).toBeInstanceOf(EngineError);
    });
  });
});
