import { randomUUID } from "node:crypto";
import { BACKUP_ORDER, BACKUP_TABLES, OMITTED_TABLES, StoreRejectedRowError, type BackupTable, type ColumnKind, type ExportedRow } from "../store/backup.js";
import type { Row, TableName } from "../store/database.js";
import { StoreConflictError, StoreReferenceError } from "../store/errors.js";
import { EXPORT_NEUTRAL_MIGRATIONS, migrationProvider } from "../store/migrations/index.js";
import type { Store } from "../store/store.js";
import { OutboxPendingError, type OutboxApplier } from "../sync/applier.js";
import { RelationshipChanges } from "../sync/changes.js";
import type { ConsistencyTokens } from "../sync/consistency.js";
import { invalid, refused } from "./errors.js";
import { deriveRow } from "./graph.js";

export const EXPORT_FORMAT = "sharegraph-export";
export const EXPORT_VERSION = 1;
/** Records per ImportData call. */
export const MAX_IMPORT_RECORDS = 1_000;
const EXPORT_BATCH_ROWS = 500;
/** An import not continued for this long is forgotten (its rows stay; the deployment is no longer empty). */
const IMPORT_IDLE_MS = 15 * 60_000;

export interface ExportHeader {
  readonly format: string;
  readonly version: number;
  readonly migration: string;
  readonly exportedAt: string;
  readonly omitted: string[];
}

export type BackupRecord = { readonly kind: "header"; readonly header: ExportHeader } | { readonly kind: "row"; readonly table: string; readonly json: string };

export interface ImportBatch {
  readonly importId: string;
  readonly records: readonly BackupRecord[];
  /** Position of records[0] in the whole import (1-based). */
  readonly firstRecord: number;
}

export interface ImportResult {
  readonly importId: string;
  readonly rowsWritten: number;
  readonly relationships: number;
  readonly token: string;
}

export interface BackupDeps {
  readonly store: Store;
  readonly applier: OutboxApplier;
  readonly tokens: ConsistencyTokens;
  /** Relationship updates per outbox batch (one SpiceDB write each). */
  readonly maxUpdatesPerBatch: number;
}

async function latestMigration(): Promise<string> {
  return Object.keys(await migrationProvider.getMigrations()).at(-1) ?? "";
}

/**
 * The migrations an export may have been taken at to be imported here: the
 * latest one and those before it back to the last that changed a table an
 * export holds (later ones only queued relationships, or added a table an
 * import computes again: EXPORT_NEUTRAL_MIGRATIONS).
 */
async function importableMigrations(): Promise<string[]> {
  const names = Object.keys(await migrationProvider.getMigrations());
  const out: string[] = [];
  for (let i = names.length - 1; i >= 0; i--) {
    out.push(names[i]!);
    if (!EXPORT_NEUTRAL_MIGRATIONS.has(names[i]!)) break;
  }
  return out;
}

/**
 * Export and import of the whole system of record. An export is read at one
 * snapshot; an import writes rows exactly as exported, in batches, each in
 * one transaction that also queues the relationships the rows imply in the
 * outbox (the path every change takes), so SpiceDB ends up exact.
 */
export class Backup {
  readonly #imports = new Map<string, { lastUsed: number }>();

  constructor(private readonly deps: BackupDeps) {}

  async *export(signal?: AbortSignal): AsyncGenerator<BackupRecord> {
    yield {
      kind: "header",
      header: {
        format: EXPORT_FORMAT,
        version: EXPORT_VERSION,
        migration: await latestMigration(),
        exportedAt: new Date().toISOString(),
        omitted: Object.entries(OMITTED_TABLES).map(([table, why]) => `${table}: ${why}`),
      },
    };
    // The rows are read in one repeatable-read transaction (one snapshot) and
    // handed over a batch at a time: the reader paces the cursor.
    const channel = new HandOver<{ table: BackupTable; rows: ExportedRow[] }>();
    const reading = this.deps.store
      .transaction(async (tx) => {
        for (const table of BACKUP_ORDER) {
          for await (const rows of tx.backup.rows(table, EXPORT_BATCH_ROWS)) await channel.put({ table, rows });
        }
      }, "repeatable read")
      .then(
        () => channel.end(),
        (err: unknown) => channel.fail(err),
      );
    try {
      for (;;) {
        if (signal?.aborted) throw signal.reason;
        const next = await channel.take();
        if (next === undefined) break;
        for (const row of next.rows) yield { kind: "row", table: next.table, json: JSON.stringify(row) };
      }
    } finally {
      channel.cancel();
      await reading;
    }
  }

  async import(batch: ImportBatch): Promise<ImportResult> {
    this.#forgetIdle();
    if (batch.records.length > MAX_IMPORT_RECORDS) throw invalid("records", `at most ${MAX_IMPORT_RECORDS} per call; send the rest in further calls`);
    const first = batch.firstRecord > 0 ? batch.firstRecord : 1;
    let records = batch.records;
    let importId = batch.importId;
    if (importId === "") {
      const head = records[0];
      if (!head || head.kind !== "header") throw invalid(`record ${first}`, "an import starts with the export's header record");
      await this.#checkHeader(head.header, first);
      records = records.slice(1);
    } else if (!this.#imports.has(importId)) {
      throw refused(`import ${importId} is not in progress on this server (it ended, was idle too long, or the server restarted); start again on an empty deployment`, "UNKNOWN_IMPORT");
    }
    const rows = records.map((record, i) => parseRecord(record, first + (batch.importId === "" ? 1 : 0) + i));
    const changes = new RelationshipChanges();
    const { written, batches } = await this.deps.store.transaction(async (tx) => {
      await tx.backup.beginImport();
      if (importId === "") {
        const state = await tx.backup.isEmpty();
        if (!state.empty) {
          throw refused(`this deployment is not empty (table ${state.table} has rows): import only into a new, empty deployment`, "NOT_EMPTY");
        }
      }
      let written = 0;
      const nested = new Set<string>();
      for (const { table, row, position } of rows) {
        let inserted: boolean;
        try {
          inserted = await tx.backup.insert(table, row);
        } catch (err) {
          throw rowError(err, table, position);
        }
        if (!inserted) continue;
        written++;
        changes.touch(deriveRow(table as TableName, row as unknown as Row<TableName>));
        if (table === "group_members") nested.add(String(row["group_id"]));
      }
      // Memberships reach the index as their closure, computed again rather than exported.
      const closure = await tx.groups.refreshClosure([...nested]);
      changes.delete(closure.removed.flatMap((r) => deriveRow("group_closure", r)));
      changes.touch(closure.added.flatMap((r) => deriveRow("group_closure", r)));
      await tx.backup.advanceIdentities();
      const ops = changes.toOps();
      const batches: number[] = [];
      for (let i = 0; i < ops.length; i += this.deps.maxUpdatesPerBatch) batches.push(await tx.outbox.append(ops.slice(i, i + this.deps.maxUpdatesPerBatch)));
      return { written, batches };
    });
    if (importId === "") importId = randomUUID();
    this.#imports.set(importId, { lastUsed: Date.now() });
    const last = batches.at(-1);
    let token = this.deps.tokens.current();
    if (last !== undefined) {
      try {
        token = this.deps.tokens.forWrite(last, await this.deps.applier.waitFor(last));
      } catch (err) {
        if (!(err instanceof OutboxPendingError)) throw err;
        token = this.deps.tokens.forWrite(last, "");
      }
    }
    return { importId, rowsWritten: written, relationships: changes.size, token };
  }

  async #checkHeader(header: ExportHeader, position: number): Promise<void> {
    if (header.format !== EXPORT_FORMAT) throw invalid(`record ${position} (header)`, `format is ${JSON.stringify(header.format)}, expected ${JSON.stringify(EXPORT_FORMAT)}`);
    if (header.version !== EXPORT_VERSION) {
      throw invalid(`record ${position} (header)`, `format version ${header.version} is not supported; this server reads version ${EXPORT_VERSION}`);
    }
    const importable = await importableMigrations();
    if (!importable.includes(header.migration)) {
      throw invalid(
        `record ${position} (header)`,
        `exported at database migration ${JSON.stringify(header.migration)}, this server is at ${JSON.stringify(importable[0])}` +
          `${importable.length > 1 ? ` (and reads exports of ${importable.slice(1).map((m) => JSON.stringify(m)).join(", ")}: same tables)` : ""}: import with the same sharegraph version that exported`,
      );
    }
  }

  #forgetIdle(): void {
    const now = Date.now();
    for (const [id, state] of this.#imports) if (now - state.lastUsed > IMPORT_IDLE_MS) this.#imports.delete(id);
  }
}

function parseRecord(record: BackupRecord, position: number): { table: BackupTable; row: Record<string, unknown>; position: number } {
  const where = `record ${position}`;
  if (record.kind === "header") throw invalid(where, "a header may only be the first record of an import");
  if (!Object.hasOwn(BACKUP_TABLES, record.table)) {
    throw invalid(`${where}: table`, `${JSON.stringify(record.table)} is not a table of an export (${BACKUP_ORDER.join(", ")})`);
  }
  const table = record.table as BackupTable;
  let parsed: unknown;
  try {
    parsed = JSON.parse(record.json);
  } catch {
    throw invalid(`${where} (${table})`, "the row is not valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw invalid(`${where} (${table})`, "the row must be a JSON object");
  const input = parsed as Record<string, unknown>;
  const columns = BACKUP_TABLES[table] as Record<string, ColumnKind>;
  const unknown = Object.keys(input).filter((c) => !Object.hasOwn(columns, c));
  if (unknown.length > 0) throw invalid(`${where} (${table})`, `unknown column ${unknown.map((c) => JSON.stringify(c)).join(", ")}`);
  const row: Record<string, unknown> = {};
  for (const [column, kind] of Object.entries(columns)) {
    const value = input[column];
    const field = `${where} (${table}).${column}`;
    if (value === undefined) throw invalid(field, "is missing");
    if (value === null) {
      if (!kind.endsWith("?")) throw invalid(field, "must not be null");
      row[column] = null;
      continue;
    }
    if (kind.startsWith("s")) {
      if (typeof value !== "string") throw invalid(field, "must be a string");
      row[column] = value;
    } else if (kind === "b") {
      if (typeof value !== "boolean") throw invalid(field, "must be true or false");
      row[column] = value;
    } else if (kind === "i") {
      if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) throw invalid(field, "must be a non-negative integer");
      row[column] = value;
    } else {
      const date = typeof value === "string" ? new Date(value) : undefined;
      if (!date || Number.isNaN(date.getTime())) throw invalid(field, "must be an RFC 3339 timestamp");
      row[column] = date;
    }
  }
  return { table, row, position };
}

function rowError(err: unknown, table: BackupTable, position: number): unknown {
  const where = `record ${position} (${table})`;
  if (err instanceof StoreConflictError) return invalid(where, `duplicates a row already written (${err.constraint})`);
  if (err instanceof StoreReferenceError) {
    return invalid(where, `refers to a row that is not there (${err.constraint}); rows must come after the rows they refer to, as an export writes them`);
  }
  if (err instanceof StoreRejectedRowError) return invalid(where, `a value is not allowed${err.constraint ? ` (${err.constraint})` : ""}`);
  return err;
}

/** One item at a time from a producer to a consumer; the producer waits until it is taken. */
class HandOver<T> {
  #item: { value: T } | undefined;
  #done = false;
  #error: unknown;
  #cancelled = false;
  #wakeTaker: (() => void) | undefined;
  #wakePutter: (() => void) | undefined;

  async put(value: T): Promise<void> {
    if (this.#cancelled) throw new Error("export reader went away");
    this.#item = { value };
    this.#wakeTaker?.();
    await new Promise<void>((resolve) => (this.#wakePutter = resolve));
    if (this.#cancelled) throw new Error("export reader went away");
  }

  end(): void {
    this.#done = true;
    this.#wakeTaker?.();
  }

  fail(err: unknown): void {
    this.#error = err ?? new Error("export failed");
    this.#done = true;
    this.#wakeTaker?.();
  }

  cancel(): void {
    this.#cancelled = true;
    this.#wakePutter?.();
  }

  async take(): Promise<T | undefined> {
    for (;;) {
      if (this.#item) {
        const { value } = this.#item;
        this.#item = undefined;
        const wake = this.#wakePutter;
        this.#wakePutter = undefined;
        wake?.();
        return value;
      }
      if (this.#done) {
        if (this.#error !== undefined && !this.#cancelled) throw this.#error;
        return undefined;
      }
      await new Promise<void>((resolve) => (this.#wakeTaker = resolve));
      this.#wakeTaker = undefined;
    }
  }
}
