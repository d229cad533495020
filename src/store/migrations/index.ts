import type { Migration, MigrationProvider } from "kysely";
import * as m0001 from "./0001_directory_and_outbox.js";

/**
 * A static index rather than a folder scan: it survives bundling, and the
 * run order is the order written here.
 */
const migrations: Record<string, Migration> = {
  "0001_directory_and_outbox": m0001,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
