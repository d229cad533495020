import type { Kysely } from "kysely";
import type { Database, Row, TableName } from "./database.js";

/**
 * Every foreign key of the schema, as data. Deleting a row deletes the rows
 * that reference it (or clears the reference, for "set null"), recursively,
 * and returns all of them so that the caller can remove the relationships
 * they implied. A test compares this list with the database's own foreign
 * keys, so a new table cannot be forgotten here.
 */
export const REFERENCES: ReadonlyArray<Reference> = [
  { table: "platform_admins", column: "user_id", parent: "users" },
  { table: "organization_members", column: "organization_id", parent: "organizations" },
  { table: "organization_members", column: "user_id", parent: "users" },
  { table: "groups", column: "organization_id", parent: "organizations" },
  { table: "group_members", column: "group_id", parent: "groups" },
  { table: "group_members", column: "user_id", parent: "users" },
  { table: "group_members", column: "member_group_id", parent: "groups" },
  { table: "group_closure", column: "group_id", parent: "groups" },
  { table: "group_closure", column: "user_id", parent: "users" },
  { table: "group_closure", column: "member_group_id", parent: "groups" },
  { table: "workspaces", column: "organization_id", parent: "organizations" },
  { table: "workspaces", column: "parent_id", parent: "workspaces" },
  { table: "workspace_access", column: "workspace_id", parent: "workspaces" },
  { table: "workspace_ancestors", column: "workspace_id", parent: "workspaces" },
  { table: "workspace_ancestors", column: "ancestor_id", parent: "workspaces" },
  { table: "workspace_access", column: "user_id", parent: "users" },
  { table: "workspace_access", column: "group_id", parent: "groups" },
  { table: "entities", column: "organization_id", parent: "organizations" },
  { table: "entity_members", column: "entity_id", parent: "entities" },
  { table: "entity_members", column: "user_id", parent: "users" },
  { table: "folders", column: "workspace_id", parent: "workspaces" },
  { table: "folders", column: "parent_id", parent: "folders" },
  { table: "folders", column: "created_by", parent: "users", onDelete: "set null" },
  { table: "folder_ancestors", column: "folder_id", parent: "folders" },
  { table: "folder_ancestors", column: "ancestor_id", parent: "folders" },
  { table: "content", column: "workspace_id", parent: "workspaces" },
  { table: "content", column: "folder_id", parent: "folders" },
  { table: "content", column: "created_by", parent: "users", onDelete: "set null" },
  { table: "grants", column: "folder_id", parent: "folders" },
  { table: "grants", column: "content_id", parent: "content" },
  { table: "grants", column: "user_id", parent: "users" },
  { table: "grants", column: "group_id", parent: "groups" },
  { table: "grants", column: "organization_id", parent: "organizations" },
  { table: "grants", column: "granted_by", parent: "users", onDelete: "set null" },
  { table: "partnerships", column: "owner_organization_id", parent: "organizations" },
  { table: "partnerships", column: "partner_organization_id", parent: "organizations" },
  { table: "partner_shares", column: "partnership_id", parent: "partnerships" },
  { table: "partner_shares", column: "content_id", parent: "content" },
  { table: "partner_invitations", column: "owner_organization_id", parent: "organizations" },
  { table: "partner_invitations", column: "invited_by", parent: "users", onDelete: "set null" },
  { table: "partner_invitations", column: "accepted_by", parent: "users", onDelete: "set null" },
  { table: "partner_invitations", column: "partner_organization_id", parent: "organizations", onDelete: "set null" },
  { table: "partner_invitation_items", column: "invitation_id", parent: "partner_invitations" },
  { table: "partner_invitation_items", column: "content_id", parent: "content" },
  { table: "partner_domain_claims", column: "owner_organization_id", parent: "organizations" },
  { table: "partner_domain_claims", column: "invitation_id", parent: "partner_invitations" },
  { table: "partner_domain_claims", column: "partnership_id", parent: "partnerships" },
  { table: "channel_partnerships", column: "customer_organization_id", parent: "organizations" },
  { table: "channel_partnerships", column: "partner_organization_id", parent: "organizations" },
  { table: "channel_partner_users", column: "channel_partnership_id", parent: "channel_partnerships" },
  { table: "channel_partner_users", column: "user_id", parent: "users" },
  { table: "accounts", column: "owner_organization_id", parent: "organizations" },
  { table: "services", column: "provider_organization_id", parent: "organizations" },
  { table: "services", column: "consumer_entity_id", parent: "entities" },
  { table: "service_accounts", column: "service_id", parent: "services" },
  { table: "service_accounts", column: "account_id", parent: "accounts" },
  { table: "account_assignments", column: "service_account_id", parent: "service_accounts" },
  { table: "account_assignments", column: "user_id", parent: "users" },
];

export interface Reference {
  readonly table: TableName;
  readonly column: string;
  /** The referenced table; always by its `id` column. */
  readonly parent: TableName;
  readonly onDelete?: "set null";
}

export type RemovedRow = { [T in TableName]: { readonly table: T; readonly row: Row<T> } }[TableName];
export type ChangedRow = { [T in TableName]: { readonly table: T; readonly before: Row<T>; readonly after: Row<T> } }[TableName];

export interface CascadeResult {
  readonly removed: RemovedRow[];
  readonly changed: ChangedRow[];
}

const CHUNK = 1000;

/** Deletes rows of `table` by id, and everything that depends on them. */
export async function cascadeDelete(db: Kysely<Database>, table: TableName, ids: readonly string[]): Promise<CascadeResult> {
  const result: CascadeResult = { removed: [], changed: [] };
  await deleteWhere(db, table, "id", ids, result);
  return result;
}

async function deleteWhere(
  db: Kysely<Database>,
  table: TableName,
  column: string,
  values: readonly string[],
  result: CascadeResult,
): Promise<void> {
  if (values.length === 0) return;
  const deleted: Record<string, unknown>[] = [];
  for (let i = 0; i < values.length; i += CHUNK) {
    const chunk = values.slice(i, i + CHUNK);
    // Dynamic table and column names: kysely cannot type this, the REFERENCES list is the contract.
    const rows = await untyped(db)
      .deleteFrom(table)
      .where(column, "in", chunk)
      .returningAll()
      .execute();
    deleted.push(...rows);
  }
  for (const row of deleted) result.removed.push({ table, row } as RemovedRow);

  const ids = deleted.map((row) => row["id"]).filter((id): id is string => typeof id === "string");
  for (const ref of REFERENCES) {
    if (ref.parent !== table || ids.length === 0) continue;
    if (ref.onDelete === "set null") await clearWhere(db, ref, ids, result);
    else await deleteWhere(db, ref.table, ref.column, ids, result);
  }
}

async function clearWhere(db: Kysely<Database>, ref: Reference, ids: readonly string[], result: CascadeResult): Promise<void> {
  const loose = untyped(db);
  for (let i = 0; i < ids.length; i += CHUNK) {
    const chunk = ids.slice(i, i + CHUNK);
    const before = await loose.selectFrom(ref.table).selectAll().where(ref.column, "in", chunk).forUpdate().execute();
    if (before.length === 0) continue;
    await loose.updateTable(ref.table).set({ [ref.column]: null }).where(ref.column, "in", chunk).execute();
    for (const row of before) {
      result.changed.push({ table: ref.table, before: row, after: { ...row, [ref.column]: null } } as ChangedRow);
    }
  }
}

type AnyTables = Record<string, Record<string, unknown>>;

function untyped(db: Kysely<Database>): Kysely<AnyTables> {
  return db as unknown as Kysely<AnyTables>;
}
