import type { ServiceImpl } from "@connectrpc/connect";
import type { IndexMaintenance } from "../domain/index-maintenance.js";
import type { NotificationLog } from "../domain/notification-log.js";
import type { AdminService } from "../gen/sharegraph/v1/admin_service_pb.js";
import { nextPageToken, page, timestamp } from "./parse.js";

const EXAMPLES = 20;

export function adminService(index: IndexMaintenance, notifications: NotificationLog, maxPageSize: number): ServiceImpl<typeof AdminService> {
  return {
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
      };
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
