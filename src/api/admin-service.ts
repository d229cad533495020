import type { ServiceImpl } from "@connectrpc/connect";
import type { IndexMaintenance } from "../domain/index-maintenance.js";
import type { AdminService } from "../gen/sharegraph/v1/admin_service_pb.js";

const EXAMPLES = 20;

export function adminService(index: IndexMaintenance): ServiceImpl<typeof AdminService> {
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
  };
}
