import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** schema/ sits two levels above this file in src/ and in dist/ alike. */
const SCHEMA_FILE = fileURLToPath(new URL("../../schema/sharegraph.zed", import.meta.url));

export function loadSchemaText(path = SCHEMA_FILE): string {
  return readFileSync(path, "utf8");
}

export interface SchemaDefinition {
  readonly relations: ReadonlySet<string>;
  readonly permissions: ReadonlySet<string>;
}

/** Object types of a schema with their relation and permission names. */
export type SchemaModel = ReadonlyMap<string, SchemaDefinition>;

/**
 * Reads the names out of a SpiceDB schema: enough to validate requests
 * (unknown type, unknown permission) before they reach SpiceDB. SpiceDB
 * itself remains the judge of the schema's meaning.
 */
export function describeSchema(text: string): SchemaModel {
  const withoutComments = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
  const model = new Map<string, SchemaDefinition>();
  const definition = /definition\s+([a-z][a-z0-9_/]*)\s*\{([^}]*)\}/g;
  for (const [, name, body] of withoutComments.matchAll(definition)) {
    const relations = new Set([...(body ?? "").matchAll(/\brelation\s+([a-z][a-z0-9_]*)/g)].map((m) => m[1]!));
    const permissions = new Set([...(body ?? "").matchAll(/\bpermission\s+([a-z][a-z0-9_]*)/g)].map((m) => m[1]!));
    model.set(name!, { relations, permissions });
  }
  return model;
}

/**
 * Subject types an earlier schema allowed on a relation and this one does
 * not. SpiceDB refuses a schema that drops a subject type while
 * relationships of it remain, so a datastore kept across an upgrade first
 * gets the transitional schema (this one, with these types allowed again),
 * then the outbox drains the deletions, then the schema itself.
 */
export const RETIRED_SUBJECT_TYPES: ReadonlyArray<{ readonly definition: string; readonly relation: string; readonly subjectType: string; readonly since: string }> = [
  // Nested groups became a closure (group_closure): no `group:G#member@group:N#member` any more.
  { definition: "group", relation: "member", subjectType: "group#member", since: "0011_group_closure" },
];

/** The schema with every retired subject type allowed again (see RETIRED_SUBJECT_TYPES). */
export function transitionalSchema(text: string): string {
  let out = text;
  for (const retired of RETIRED_SUBJECT_TYPES) {
    const relation = new RegExp(`(definition\\s+${retired.definition}\\s*\\{[^}]*?\\brelation\\s+${retired.relation}\\s*:)([^\\n]*)`);
    if (!relation.test(out)) throw new Error(`schema has no relation ${retired.definition}#${retired.relation} to widen with ${retired.subjectType}`);
    out = out.replace(relation, (_, head: string, types: string) => (types.includes(retired.subjectType) ? `${head}${types}` : `${head}${types.trimEnd()} | ${retired.subjectType}`));
  }
  return out;
}
