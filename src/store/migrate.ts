import { Migrator, sql, type Kysely } from "kysely";
import type { Database } from "./database.js";
import { migrationProvider } from "./migrations/index.js";

export interface MigrationReport {
  readonly applied: readonly string[];
}

/** Brings the schema up to date; throws with the failing migration's name. */
export async function migrateToLatest(db: Kysely<Database>, schema?: string): Promise<MigrationReport> {
  // kysely's bookkeeping tables live in the schema the migrations create tables in: the given one
  // (tests), else the connection's current schema. Without a schema kysely takes a bookkeeping
  // table of any schema of the database for its own, and fails when another schema has one.
  let tableSchema = schema;
  try {
    tableSchema ??= (await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db)).rows[0]?.schema ?? undefined;
  } catch (err) {
    throw new Error(`database migration failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const migrator = new Migrator({ db, provider: migrationProvider, ...(tableSchema ? { migrationTableSchema: tableSchema } : {}) });
  let { error, results } = await migrator.migrateToLatest();
  // kysely looks for its bookkeeping tables by listing the tables of every schema in the
  // database; a schema dropped by someone else meanwhile fails that listing ("relation … does
  // not exist"). Nothing has run yet then, so it is safe to look again.
  for (let attempt = 1; error && results === undefined && droppedMeanwhile(error) && attempt <= 5; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
    ({ error, results } = await migrator.migrateToLatest());
  }
  const failed = results?.find((r) => r.status === "Error");
  if (error) {
    const name = failed ? ` (${failed.migrationName})` : "";
    throw new Error(`database migration failed${name}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  return { applied: (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName) };
}

/** undefined_table / invalid_schema_name: what a concurrent DROP makes of a catalog listing. */
function droppedMeanwhile(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === "42P01" || code === "3F000";
}
