import { describe, expect, it } from "vitest";
import type { SubjectRef, TraceNode } from "../../src/engine/engine.js";
import { satisfiedPaths } from "../../src/domain/explain.js";

const bob: SubjectRef = { type: "user", id: "bob", relation: "" };
const leaf = (type: string, id: string, name: string): TraceNode => ({ resource: { type, id }, name, isPermission: false, subject: bob, hasPermission: true, children: [] });
const perm = (type: string, id: string, name: string, children: TraceNode[]): TraceNode => ({ resource: { type, id }, name, isPermission: true, subject: bob, hasPermission: true, children });

describe("R8: ExplainPermission's paths (003 troubleshooting)", () => {
  // bob views q3-revenue directly, through folder sales, and through folder archive: the engine's trace lists them in whatever order its dispatches finished.
  const direct = leaf("dashboard", "q3-revenue", "viewer");
  const viaSales = perm("folder", "sales", "granted_view", [leaf("folder", "sales", "viewer")]);
  const viaArchive = perm("folder", "archive", "granted_view", [leaf("folder", "archive", "viewer")]);
  const trace = (children: TraceNode[]) => perm("dashboard", "q3-revenue", "view", children);

  it("lists the same paths in the same order whatever order the engine's trace has them in: shortest first, then by their words", () => {
    const orders = [
      [viaSales, direct, viaArchive],
      [viaArchive, viaSales, direct],
      [direct, viaArchive, viaSales],
    ];
    const answers = orders.map((children) => satisfiedPaths(trace(children), bob).map((p) => p.summary));
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
    expect(answers[0]).toHaveLength(3);
    expect(answers[0]![0]).toMatch(/^user bob .* dashboard q3-revenue$/);
    expect(answers[0]![1]).toMatch(/folder archive/);
    expect(answers[0]![2]).toMatch(/folder sales/);
  });
});
