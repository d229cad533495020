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
