import type { Migration, MigrationProvider } from "kysely";
import * as m0001 from "./0001_directory_and_outbox.js";
import * as m0002 from "./0002_content.js";
import * as m0003 from "./0003_partners_and_notifications.js";
import * as m0004 from "./0004_outbox_apply_lock.js";
import * as m0005 from "./0005_server_key_and_sealed_secrets.js";
import * as m0006 from "./0006_folder_ancestors.js";
import * as m0007 from "./0007_channel_partners.js";
import * as m0008 from "./0008_service_relationships.js";
import * as m0009 from "./0009_workspace_ancestors.js";
import * as m0010 from "./0010_cumulative_roles.js";
import * as m0011 from "./0011_group_closure.js";
import * as m0012 from "./0012_content_by_folder_and_kind.js";

/**
 * A static index rather than a folder scan: it survives bundling, and the
 * run order is the order written here.
 */
const migrations: Record<string, Migration> = {
  "0001_directory_and_outbox": m0001,
  "0002_content": m0002,
  "0003_partners_and_notifications": m0003,
  "0004_outbox_apply_lock": m0004,
  "0005_server_key_and_sealed_secrets": m0005,
  "0006_folder_ancestors": m0006,
  "0007_channel_partners": m0007,
  "0008_service_relationships": m0008,
  "0009_workspace_ancestors": m0009,
  "0010_cumulative_roles": m0010,
  "0011_group_closure": m0011,
  "0012_content_by_folder_and_kind": m0012,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};

/**
 * Migrations that change no table, only queue relationships in the outbox.
 * An export taken before one of them has the same tables, so it can still
 * be imported (domain/backup.ts).
 */
export const DATA_ONLY_MIGRATIONS: ReadonlySet<string> = new Set(["0010_cumulative_roles"]);

/**
 * Migrations after which an export still holds the same tables and
 * columns: the data-only ones, those that only add a table derived from
 * others and not exported (0011's group_closure, which an import computes
 * again), and those that only change indexes (0012). An export taken
 * before one of them can be imported.
 */
export const EXPORT_NEUTRAL_MIGRATIONS: ReadonlySet<string> = new Set([...DATA_ONLY_MIGRATIONS, "0011_group_closure", "0012_content_by_folder_and_kind"]);
