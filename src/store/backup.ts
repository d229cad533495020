import { sql, type Kysely } from "kysely";
import type { Database, TableName } from "./database.js";
import { translateStoreError } from "./errors.js";

/**
 * The system of record as an export sees it: the tables, their columns and
 * the order in which they can be written back (a row after every row it
 * refers to). What is left out, and why, is in OMITTED_TABLES.
 */

/** s text, b boolean, i integer, t timestamp; "?" nullable. */
export type ColumnKind = "s" | "s?" | "b" | "i" | "t" | "t?";

const C = "t" as const; // created_at

export const BACKUP_TABLES = {
  users: { id: "s", email: "s", display_name: "s", created_at: C },
  platform_admins: { user_id: "s" },
  organizations: { id: "s", name: "s", channel_partner: "b", created_at: C },
  organization_members: { organization_id: "s", user_id: "s", admin: "b", created_at: C },
  groups: { id: "s", organization_id: "s", name: "s", created_at: C },
  group_members: { id: "i", group_id: "s", user_id: "s?", member_group_id: "s?", created_at: C },
  workspaces: { id: "s", organization_id: "s", parent_id: "s?", name: "s", created_at: C },
  workspace_access: { id: "i", workspace_id: "s", kind: "s", level: "s?", user_id: "s?", group_id: "s?", created_at: C },
  workspace_ancestors: { workspace_id: "s", ancestor_id: "s", depth: "i" },
  entities: { id: "s", organization_id: "s", name: "s", created_at: C },
  entity_members: { entity_id: "s", user_id: "s", created_at: C },
  folders: { id: "s", workspace_id: "s", parent_id: "s?", name: "s", created_by: "s?", created_at: C },
  folder_ancestors: { folder_id: "s", ancestor_id: "s", depth: "i" },
  content: { id: "s", kind: "s", workspace_id: "s", folder_id: "s?", name: "s", created_by: "s?", created_at: C },
  grants: {
    id: "i",
    resource_type: "s",
    folder_id: "s?",
    content_id: "s?",
    user_id: "s?",
    group_id: "s?",
    organization_id: "s?",
    role: "s",
    granted_by: "s?",
    created_at: C,
  },
  partnerships: { id: "s", owner_organization_id: "s", partner_organization_id: "s", created_at: C },
  partner_shares: { partnership_id: "s", content_id: "s", kind: "s", created_at: C },
  partner_invitations: {
    id: "s",
    owner_organization_id: "s",
    email: "s",
    token_hash: "s",
    status: "s",
    invited_by: "s?",
    expires_at: "t",
    accepted_at: "t?",
    accepted_by: "s?",
    partner_organization_id: "s?",
    created_at: C,
  },
  partner_invitation_items: { invitation_id: "s", content_id: "s" },
  partner_domain_claims: { id: "i", owner_organization_id: "s", claim_key: "s", email: "s", invitation_id: "s?", partnership_id: "s?", created_at: C },
  channel_partnerships: { id: "s", customer_organization_id: "s", partner_organization_id: "s", created_at: C },
  channel_partner_users: { channel_partnership_id: "s", user_id: "s", created_at: C },
  accounts: { id: "s", owner_organization_id: "s", name: "s", created_at: C },
  services: { id: "s", name: "s", provider_organization_id: "s", consumer_entity_id: "s", ended_at: "t?", created_at: C },
  service_accounts: { id: "s", service_id: "s", account_id: "s", created_at: C },
  account_assignments: { service_account_id: "s", user_id: "s", created_at: C },
} as const satisfies Partial<Record<TableName, Record<string, ColumnKind>>>;

export type BackupTable = keyof typeof BACKUP_TABLES;

/** In dependency order: every table after the tables it refers to. */
export const BACKUP_ORDER = Object.keys(BACKUP_TABLES) as BackupTable[];

export const OMITTED_TABLES: Readonly<Record<Exclude<TableName, BackupTable>, string>> = {
  group_closure: "the closure of group_members; the import computes it again from the memberships it writes",
  server_keys: "the deployment's secret server key (signs consistency tokens and cursors, seals invitation tokens); the restored deployment has its own",
  notifications: "the mail log; it holds invitation tokens sealed with the server key, which the restored deployment cannot open",
  outbox: "relationship updates on their way to SpiceDB; the restored deployment derives them again from the rows",
};

/** Rows within a table in an order that can be written back: parents before children. */
const ROW_ORDER: Partial<Record<BackupTable, ReturnType<typeof sql>>> = {
  workspaces: sql`(with recursive depth(id, d) as (
      select id, 0 from workspaces where parent_id is null
      union all select w.id, depth.d + 1 from workspaces w join depth on w.parent_id = depth.id
    ) select d from depth where depth.id = workspaces.id), id`,
  folders: sql`(select count(*) from folder_ancestors a where a.folder_id = folders.id), id`,
};

/** Tables with a generated identity column: written with their ids, then the sequence moves past them. */
const IDENTITY_TABLES = new Set<BackupTable>(["group_members", "workspace_access", "grants", "partner_domain_claims"]);

/** Rows a freshly started deployment already has (its platform admins): an import skips equal keys. */
const SKIP_EXISTING = new Set<BackupTable>(["users", "platform_admins"]);

/** The database refused a row's values (a check constraint, a missing or malformed value). */
export class StoreRejectedRowError extends Error {
  constructor(
    readonly constraint: string,
    options?: { cause?: unknown },
  ) {
    super(`row rejected${constraint ? ` by ${constraint}` : ""}`, options);
    this.name = "StoreRejectedRowError";
  }
}

export type ExportedRow = Record<string, string | number | boolean | null>;

export class BackupRepo {
  constructor(private readonly db: Kysely<Database>) {}

  /** Every row of a table, a batch at a time, in write-back order. Inside a transaction (a cursor). */
  async *rows(table: BackupTable, size: number): AsyncGenerator<ExportedRow[]> {
    const cursor = `sg_export_${table}`;
    const columns = Object.keys(BACKUP_TABLES[table]);
    const order = ROW_ORDER[table] ?? sql.raw(columns.filter((c) => c !== "created_at").map((c) => `"${c}"`).join(", "));
    await sql`declare ${sql.id(cursor)} no scroll cursor for select * from ${sql.table(table)} order by ${order}`.execute(this.db);
    try {
      for (;;) {
        const { rows } = await sql<Record<string, unknown>>`fetch forward ${sql.lit(size)} from ${sql.id(cursor)}`.execute(this.db);
        if (rows.length === 0) return;
        yield rows.map((row) => toExported(table, row));
      }
    } finally {
      await sql`close ${sql.id(cursor)}`.execute(this.db);
    }
  }

  /**
   * Whether the deployment holds nothing but what every fresh start writes
   * (the platform admins, as users): the tables it would import into.
   */
  async isEmpty(): Promise<{ empty: true } | { empty: false; table: string }> {
    for (const table of BACKUP_ORDER) {
      if (table === "platform_admins") continue;
      const query =
        table === "users"
          ? sql<{ n: number }>`select count(*)::int as n from users where id not in (select user_id from platform_admins)`
          : sql<{ n: number }>`select count(*)::int as n from ${sql.table(table)}`;
      const { rows } = await query.execute(this.db);
      if (Number(rows[0]!.n) > 0) return { empty: false, table };
    }
    return { empty: true };
  }

  /** One import at a time; and each row's references are checked as it is written, so an error names its row. */
  async beginImport(): Promise<void> {
    await sql`select pg_advisory_xact_lock(${0x5347_0002})`.execute(this.db);
    await sql`set constraints all immediate`.execute(this.db);
  }

  /** Writes one row, as exported; false when it was already there (platform admins of a fresh start). */
  async insert(table: BackupTable, row: Record<string, unknown>): Promise<boolean> {
    const columns = Object.keys(row);
    const query = sql<{ one: number }>`insert into ${sql.table(table)} (${sql.join(columns.map((c) => sql.id(c)))})
      ${IDENTITY_TABLES.has(table) ? sql`overriding system value` : sql``}
      values (${sql.join(columns.map((c) => sql`${row[c]}`))})
      ${SKIP_EXISTING.has(table) ? sql`on conflict do nothing` : sql``}
      returning 1 as one`;
    try {
      const result = await query.execute(this.db);
      return result.rows.length > 0;
    } catch (err) {
      const code = typeof err === "object" && err !== null ? String((err as { code?: unknown }).code ?? "") : "";
      // A check constraint (23514), a missing value (23502), or a value the column cannot hold (class 22).
      if (code === "23514" || code === "23502" || code.startsWith("22")) {
        const constraint = (err as { constraint?: unknown; column?: unknown }).constraint ?? (err as { column?: unknown }).column;
        throw new StoreRejectedRowError(typeof constraint === "string" ? constraint : "", { cause: err });
      }
      throw translateStoreError(err);
    }
  }

  /** After rows were written with their identity ids: new rows get ids after them. */
  async advanceIdentities(): Promise<void> {
    for (const table of IDENTITY_TABLES) {
      await sql`select setval(pg_get_serial_sequence(${table}, 'id'), coalesce((select max(id) from ${sql.table(table)}), 0) + 1, false)`.execute(this.db);
    }
  }
}

function toExported(table: BackupTable, row: Record<string, unknown>): ExportedRow {
  const out: ExportedRow = {};
  for (const [column, kind] of Object.entries(BACKUP_TABLES[table]) as Array<[string, ColumnKind]>) {
    const value = row[column];
    if (value === null || value === undefined) out[column] = null;
    else if (kind === "t" || kind === "t?") out[column] = (value instanceof Date ? value : new Date(String(value))).toISOString();
    else if (kind === "i") out[column] = Number(value);
    else if (kind === "b") out[column] = Boolean(value);
    else out[column] = String(value);
  }
  return out;
}
