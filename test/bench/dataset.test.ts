import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { loadPlan } from "../../bench/dataset/load.js";
import { planDataset } from "../../bench/dataset/plan.js";
import { deriveAll } from "../../src/domain/graph.js";
import { formatRelationship } from "../../src/sync/relationship-text.js";
import { freshStore } from "../support/database.js";

const digest = (value: unknown) => createHash("sha256").update(JSON.stringify(value)).digest("hex");

describe("benchmark dataset generator (bench/dataset)", () => {
  it("plans the same tenant, row for row, from the same scale and seed; another seed differs", () => {
    const a = planDataset(0.002, 7);
    const b = planDataset(0.002, 7);
    expect(digest(b)).toBe(digest(a));
    expect(digest(planDataset(0.002, 8))).not.toBe(digest(a));
    expect(new Set(a.sample.map((s) => `${s.userId}|${s.resource.id}`)).size).toBe(a.sample.length);
    for (const probe of a.probes) expect(probe.expected).toBe(probe.target);
    expect(Math.max(...a.folders.map((f) => f.depth))).toBeLessThanOrEqual(8);
  });

  it("writes through the store and the outbox exactly the relationships a rebuild derives from the rows", async () => {
    const plan = planDataset(0.001, 3);
    const { store, dispose } = await freshStore();
    try {
      const report = await loadPlan(store, plan, { chunk: 100 });
      const derived = (await deriveAll(store.read)).map(formatRelationship);
      const rows = await store.read.all("outbox");
      const appended = rows.flatMap((r) => r.ops.map((op) => op.r));
      expect(rows.every((r) => r.ops.every((op) => op.o === "t"))).toBe(true);
      expect(new Set(appended)).toEqual(new Set(derived));
      expect(report.relationships).toBe(derived.length);
      expect((await store.read.all("content")).length).toBe(plan.content.length);
    } finally {
      await dispose();
    }
  }, 180_000);
});
