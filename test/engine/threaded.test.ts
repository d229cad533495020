/**
 * Issue 8: the embedded engine in a worker thread. The engine suite runs
 * against it (with small stream batches, so batching and the window that
 * pauses SpiceDB are exercised); then what the thread is for: the event loop
 * keeps turning while the engine computes, a crash fails calls in flight
 * with "unavailable" instead of hanging, and close ends the thread.
 *
 * Nothing here asserts a duration: the event-loop test asserts that timers
 * fire while a bulk check is still computing (the in-thread engine, as a
 * control, fires none), and prints monitorEventLoopDelay's figures.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { createEmbeddedEngine } from "../../src/engine/embedded.js";
import { BULK_SLICE } from "../../src/engine/spicedb-engine.js";
import { EngineError, type CheckItem, type Engine } from "../../src/engine/engine.js";
import { loadSchemaText } from "../../src/engine/schema.js";
import { createThreadedEngine, type ThreadedEngine } from "../../src/engine/threaded.js";
import { deepTenant, seed } from "../support/deep-tenant.js";
import { engineSuite } from "./engine-suite.js";

engineSuite("threaded embedded engine", async () => {
  const engine = await createThreadedEngine({ batchSize: 3, window: 2 });
  return { engine, close: () => engine.close() };
});

const FULLY = { kind: "fully_consistent" } as const;
const schema = loadSchemaText();

/**
 * Issues a bulk check, then counts the timer callbacks (1 ms timers, one
 * after the other) that run before it answers, and measures the event
 * loop's delay meanwhile. An engine that computes on the event loop has
 * answered before the first timer can fire.
 */
async function bulkWhileTicking(engine: Engine, items: readonly CheckItem[], token: string) {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  // Its first sample only sets a baseline: let it take one before the call.
  await sleep(30);
  let answered = false;
  const started = performance.now();
  const answer = engine.checkBulk(items, { kind: "at_least_as_fresh", token }).finally(() => {
    answered = true;
  });
  let ticks = 0;
  while (!answered) {
    await Promise.race([sleep(1), answer]);
    if (!answered) ticks++;
  }
  const result = await answer;
  const ms = performance.now() - started;
  // One more turn, so that a block that just ended is sampled too.
  await sleep(20);
  delay.disable();
  return { result, ticks, ms, maxDelayMs: delay.max / 1e6 };
}

describe("threaded embedded engine specifics", () => {
  it("is the embedded engine (kind, write limit) on a thread of its own", async () => {
    const engine = await createThreadedEngine();
    try {
      expect(engine.kind).toBe("embedded");
      expect(engine.maxUpdatesPerWrite).toBe(1000);
      expect(engine.thread.threadId).toBeGreaterThan(0);
      await engine.writeSchema(schema);
      expect(await engine.readSchema()).toContain("definition dashboard");
    } finally {
      await engine.close();
    }
  });

  it("keeps the event loop turning during a 1,000-item bulk check (the in-thread engine, as a control, only between its slices)", async () => {
    const { relationships, items } = deepTenant(1000, 4);
    const expected = items.map((_, i) => i % 2 === 0);
    const figures: Record<string, unknown> = {};
    const ticks: Record<string, number> = {};
    for (const [name, make] of [
      ["threaded", () => createThreadedEngine()],
      ["in-thread", () => createEmbeddedEngine()],
    ] as const) {
      const engine = await make();
      try {
        await engine.writeSchema(schema);
        const token = await seed(engine, relationships);
        const run = await bulkWhileTicking(engine, items, token);
        expect(run.result.results.map((r) => r.allowed)).toEqual(expected);
        figures[name] = { bulkMs: Math.round(run.ms), ticksMeanwhile: run.ticks, maxEventLoopDelayMs: Math.round(run.maxDelayMs) };
        ticks[name] = run.ticks;
        if (name === "threaded") expect(run.ticks, "timers ran while the bulk check computed").toBeGreaterThan(0);
        else {
          // The engine asks SpiceDB in slices, with a turn of the loop between them; each slice computes on the loop.
          expect(run.ticks, "timers ran between the in-thread engine's slices").toBeGreaterThan(0);
          const slice = await bulkWhileTicking(engine, items.slice(0, BULK_SLICE), token);
          expect(slice.result.results.map((r) => r.allowed)).toEqual(expected.slice(0, BULK_SLICE));
          // The library settles its promise a turn after the synchronous call: at most that turn's timer runs.
          expect(slice.ticks, "one slice computes on the event loop").toBeLessThanOrEqual(1);
        }
      } finally {
        await engine.close();
      }
    }
    // On its thread the loop turns throughout; in-thread, only between slices.
    expect(ticks["threaded"]!, JSON.stringify(figures)).toBeGreaterThan(ticks["in-thread"]!);
    console.log("1,000-item bulk check, 4-deep folders (not asserted):", JSON.stringify(figures));
  });

  it("answers concurrent calls, each with its own answer", async () => {
    const engine = await createThreadedEngine();
    try {
      await engine.writeSchema(schema);
      const { relationships, items } = deepTenant(50, 3);
      const token = await seed(engine, relationships);
      const answers = await Promise.all(items.map((item) => engine.check(item, { kind: "at_least_as_fresh", token })));
      expect(answers.map((a) => a.allowed)).toEqual(items.map((_, i) => i % 2 === 0));
    } finally {
      await engine.close();
    }
  });

  describe("a crashed thread", () => {
    it("fails the calls in flight and later calls with unavailable, reports the crash once, and closes", async () => {
      const crashes: Error[] = [];
      const engine = await createThreadedEngine({ onCrash: (err) => crashes.push(err) });
      await engine.writeSchema(schema);
      const { relationships, items } = deepTenant(300, 4);
      const token = await seed(engine, relationships);

      const inFlight = engine.checkBulk(items, { kind: "at_least_as_fresh", token });
      const killed = engine.thread.kill();
      await expectUnavailable(inFlight);
      await killed;
      expect(engine.thread.alive).toBe(false);
      expect(crashes).toHaveLength(1);
      expect(crashes[0]).toBeInstanceOf(EngineError);
      expect(crashes[0]?.message).toMatch(/thread stopped/);

      await expectUnavailable(engine.check(items[0]!, FULLY));
      await expectUnavailable(collect(engine.lookupResources({ resourceType: "dashboard", permission: "view", subject: { type: "user", id: "u0" } }, FULLY)));
      await engine.close();
      expect(crashes).toHaveLength(1);
    });

    it("fails a stream being read with unavailable", async () => {
      const crashes: Error[] = [];
      const engine = await createThreadedEngine({ onCrash: (err) => crashes.push(err), batchSize: 1, window: 1 });
      try {
        await engine.writeSchema(schema);
        const { relationships } = deepTenant(100, 2);
        const token = await seed(engine, relationships);
        let seen = 0;
        const reading = (async () => {
          for await (const _ of engine.lookupResources({ resourceType: "dashboard", permission: "view", subject: { type: "user", id: "u0" } }, { kind: "at_least_as_fresh", token })) {
            seen++;
            if (seen === 1) await engine.thread.kill();
          }
        })();
        await expectUnavailable(reading);
        expect(seen).toBeGreaterThanOrEqual(1);
        expect(seen).toBeLessThan(100);
        expect(crashes).toHaveLength(1);
      } finally {
        await engine.close();
      }
    });
  });

  describe("close", () => {
    it("fails calls in flight with unavailable, ends the thread, and reports no crash", async () => {
      const crashes: Error[] = [];
      const engine: ThreadedEngine = await createThreadedEngine({ onCrash: (err) => crashes.push(err) });
      await engine.writeSchema(schema);
      const { relationships, items } = deepTenant(300, 4);
      const token = await seed(engine, relationships);
      const inFlight = engine.checkBulk(items, { kind: "at_least_as_fresh", token });
      const stream = engine.lookupResources({ resourceType: "dashboard", permission: "view", subject: { type: "user", id: "u0" } }, { kind: "at_least_as_fresh", token });
      const failures = Promise.all([expectUnavailable(inFlight), expectUnavailable(collect(stream))]);
      await engine.close();
      await failures;
      expect(engine.thread.alive).toBe(false);
      expect(crashes).toEqual([]);
      await expectUnavailable(engine.check(items[0]!, FULLY));
    });
  });
});

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of iterable) out.push(x);
  return out;
}

async function expectUnavailable(promise: Promise<unknown>): Promise<void> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  expect(caught, "expected the call to fail").toBeInstanceOf(EngineError);
  expect((caught as EngineError).kind, (caught as EngineError).message).toBe("unavailable");
}
