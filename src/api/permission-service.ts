import type { ServiceImpl } from "@connectrpc/connect";
import { callSignal } from "../call-signal.js";
import type { AccessPath, Explainer } from "../domain/explain.js";
import type { Permissions } from "../domain/permissions.js";
import { Decision, type PermissionService } from "../gen/sharegraph/v1/permission_service_pb.js";
import { invalid } from "../domain/errors.js";
import { freshness } from "./parse.js";

/** Thin handlers: parse → ask the domain → reply. */
const decision = (allowed: boolean) => (allowed ? Decision.ALLOWED : Decision.DENIED);
const toPath = (p: AccessPath) => ({
  steps: p.steps.map((s) => ({ object: s.object, link: s.link, target: s.target })),
  summary: p.summary,
});

export function permissionService(permissions: Permissions, explainer: Explainer): ServiceImpl<typeof PermissionService> {
  return {
    async checkPermission(req) {
      const item = permissions.checkItem("", req);
      const result = await permissions.check(item, freshness(req.consistency));
      return { allowed: result.allowed, decision: decision(result.allowed), consistencyToken: result.token };
    },

    async checkBulkPermissions(req) {
      if (req.items.length > permissions.limits.maxBulkItems) {
        throw invalid("items", `at most ${permissions.limits.maxBulkItems} items per call, got ${req.items.length}`);
      }
      const items = req.items.map((item, i) => permissions.checkItem(`items[${i}].`, item));
      const result = await permissions.checkBulk(items, freshness(req.consistency), callSignal());
      return {
        results: result.results.map((r, i) => ({
          item: req.items[i],
          allowed: r.allowed,
          decision: r.error ? Decision.UNSPECIFIED : decision(r.allowed),
          error: r.error ?? "",
        })),
        consistencyToken: result.token,
      };
    },

    async *lookupResources(req, ctx) {
      const resourceType = permissions.requireType("resource_type", req.resourceType);
      const query = {
        resourceType,
        permission: permissions.permission("permission", resourceType, req.permission),
        subject: permissions.subject("subject", req.subject),
        limit: req.pageSize,
        cursor: req.cursor || undefined,
      };
      for await (const r of permissions.lookupResources(query, freshness(req.consistency), ctx.signal)) {
        yield { resourceId: r.resourceId, cursor: r.cursor, consistencyToken: r.token };
      }
    },

    async *lookupSubjects(req, ctx) {
      const resource = permissions.resource("resource", req.resource);
      const subjectType = permissions.requireType("subject_type", req.subjectType);
      const query = {
        resource,
        permission: permissions.permission("permission", resource.type, req.permission),
        subjectType,
        subjectRelation: permissions.subjectRelation("subject_relation", subjectType, req.subjectRelation),
      };
      for await (const s of permissions.lookupSubjects(query, freshness(req.consistency), ctx.signal)) {
        yield { subjectId: s.subjectId, consistencyToken: s.token };
      }
    },

    async explainPermission(req) {
      const e = await explainer.explain(permissions.checkItem("", req), freshness(req.consistency));
      return {
        allowed: e.allowed,
        decision: decision(e.allowed),
        explanation: e.text,
        grantingPaths: e.granting.map(toPath),
        partialPaths: e.partial.map(toPath),
        missing: [...e.missing],
        consistencyToken: e.token,
      };
    },
  };
}
