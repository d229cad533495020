/**
 * Engine-level data that makes a 1,000-item bulk check compute for a while
 * (tests of the embedded engine's thread), written straight into an engine.
 */
import { withCumulativeRelations } from "../../src/domain/graph.js";
import type { CheckItem, Engine, Relationship } from "../../src/engine/engine.js";

/**
 * A folder chain `depth` deep in one workspace, `n` dashboards at its bottom,
 * and `n` users of whom the even ones are in the group that may view the
 * top folder: 1,000 checks of this make the engine walk for a while.
 */
export function deepTenant(n: number, depth: number): { relationships: Relationship[]; items: CheckItem[] } {
  const rel = (type: string, id: string, relation: string, subject: { type: string; id: string; relation?: string }): Relationship => ({
    resource: { type, id },
    relation,
    subject,
  });
  // Grants and levels come with the cumulative relations sharegraph writes beside them (src/domain/graph.ts).
  const relationships: Relationship[] = withCumulativeRelations(rel("workspace", "ws", "viewer", { type: "group", id: "readers", relation: "member" }));
  // sharegraph keeps the workspace tree's closure, the workspace itself included (schema/sharegraph.zed).
  for (const relation of ["ancestor_or_self", "descendant_or_self", "relative"]) relationships.push(rel("workspace", "ws", relation, { type: "workspace", id: "ws" }));
  for (let d = 0; d < depth; d++) {
    relationships.push(rel("folder", `f${d}`, "workspace", { type: "workspace", id: "ws" }));
    if (d > 0) relationships.push(rel("folder", `f${d}`, "parent", { type: "folder", id: `f${d - 1}` }));
    // sharegraph keeps the closure of parent as ancestor (schema/sharegraph.zed).
    for (let a = 0; a < d; a++) relationships.push(rel("folder", `f${d}`, "ancestor", { type: "folder", id: `f${a}` }));
  }
  relationships.push(...withCumulativeRelations(rel("folder", "f0", "viewer", { type: "group", id: "readers", relation: "member" })));
  const items: CheckItem[] = [];
  for (let i = 0; i < n; i++) {
    relationships.push(rel("dashboard", `d${i}`, "workspace", { type: "workspace", id: "ws" }));
    relationships.push(rel("dashboard", `d${i}`, "folder", { type: "folder", id: `f${depth - 1}` }));
    if (i % 2 === 0) relationships.push(rel("group", "readers", "member", { type: "user", id: `u${i}` }));
    items.push({ resource: { type: "dashboard", id: `d${i}` }, permission: "view", subject: { type: "user", id: `u${i}` } });
  }
  return { relationships, items };
}

export async function seed(engine: Engine, relationships: readonly Relationship[]): Promise<string> {
  let token = "";
  for (let i = 0; i < relationships.length; i += engine.maxUpdatesPerWrite) {
    token = await engine.write(relationships.slice(i, i + engine.maxUpdatesPerWrite).map((relationship) => ({ op: "touch", relationship })));
  }
  return token;
}
