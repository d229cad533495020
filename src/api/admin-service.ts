import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { BackupRecord } from "../domain/backup.js";
import { invalid } from "../domain/errors.js";
import type { IndexMaintenance } from "../domain/index-maintenance.js";
import type { NotificationLog } from "../domain/notification-log.js";
import type { AdminService, DataRecord } from "../gen/sharegraph/v1/admin_service_pb.js";
import { callerKey } from "./auth.js";
import { nextPageToken, page, timestamp } from "./parse.js";

const EXAMPLES = 20;

export function adminService(index: IndexMaintenance, notifications: NotificationLog, maxPageSize: number): ServiceImpl<typeof AdminService> {
  return {
    getCaller(_req, ctx) {
      const key = ctx.values.get(callerKey);
      // The auth interceptor sets it for every RPC that needs a key, this one included.
      if (!key) throw new ConnectError("no API key on this call", Code.Unauthenticated);
      return { keyName: key.name, scope: key.scope, anyActor: key.actors === "any", actors: key.actors === "any" ? [] : [...key.actors] };
    },
    async reconcile(req) {
      const r = await index.reconcile(req.dryRun);
      return {
        expectedRelationships: r.expected,
        actualRelationships: r.actual,
        missing: r.missing.length,
        extra: r.extra.length,
        missingExamples: r.missing.slice(0, EXAMPLES),
        extraExamples: r.extra.slice(0, EXAMPLES),
        consistencyToken: r.token,
      };
    },
    async rebuild() {
      const r = await index.rebuild();
      return { relationshipsWritten: r.written, consistencyToken: r.token };
    },
    async getOutboxStatus() {
      const s = await index.outboxStatus();
      return {
        pendingBatches: s.pending,
        lastAppliedBatch: BigInt(s.lastApplied),
        lastError: s.oldestPendingError ?? "",
        attempts: s.oldestPendingAttempts,
        engine: index.engineKind,
      };
    },
    async *exportData(_req, ctx) {
      requireOperatorKey(ctx, "export");
      for await (const record of index.backup.export(ctx.signal)) {
        yield {
          record:
            record.kind === "header"
              ? { record: { case: "header" as const, value: record.header } }
              : { record: { case: "row" as const, value: { table: record.table, json: record.json } } },
        };
      }
    },
    async importData(req, ctx) {
      requireOperatorKey(ctx, "import");
      const first = Number(req.firstRecord);
      const records = req.records.map((r, i) => fromDataRecord(r, (first > 0 ? first : 1) + i));
      const result = await index.backup.import({ importId: req.importId.trim(), records, firstRecord: first });
      return { importId: result.importId, rowsWritten: result.rowsWritten, relationships: result.relationships, consistencyToken: result.token };
    },
    async listNotifications(req) {
      const result = await notifications.list({ recipient: req.recipient.trim(), status: req.status.trim() }, page(req.page, maxPageSize));
      return {
        notifications: result.items.map((n) => ({
          id: String(n.id),
          kind: n.kind,
          recipient: n.recipient,
          subject: n.subject,
          body: n.body,
          status: n.status,
          attempts: n.attempts,
          lastError: n.last_error ?? "",
          createdAt: timestamp(n.created_at),
          sentAt: timestamp(n.sent_at),
        })),
        nextPageToken: nextPageToken(result.next),
      };
    },
  };
}

function fromDataRecord(record: DataRecord, position: number): BackupRecord {
  switch (record.record.case) {
    case "header": {
      const h = record.record.value;
      return { kind: "header", header: { format: h.format, version: h.version, migration: h.migration, exportedAt: h.exportedAt, omitted: h.omitted } };
    }
    case "row":
      return { kind: "row", table: record.record.value.table, json: record.record.value.json };
    default:
      throw invalid(`records[${position}]`, "is empty: set header or row");
  }
}

/**
 * An export reads, and an import writes, on behalf of every user: a key bound
 * to actors (a calling service's key) may do neither, only an operator's
 * (actors=*).
 */
function requireOperatorKey(ctx: HandlerContext, what: string): void {
  const key = ctx.values.get(callerKey);
  if (!key || key.actors === "any") return;
  throw new ConnectError(`API key "${key.name}" may not ${what} the system of record: it is bound to actors; use an operator key (actors=*)`, Code.PermissionDenied);
}
