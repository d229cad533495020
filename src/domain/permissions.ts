import type {
  CheckItem,
  Engine,
  LookupResourcesQuery,
  LookupSubjectsQuery,
  ObjectRef,
  SubjectRef,
} from "../engine/engine.js";
import type { SchemaModel } from "../engine/schema.js";
import type { ConsistencyTokens, Freshness } from "../sync/consistency.js";
import { invalid } from "./errors.js";
import { QUERY_ID_PATTERN, requireId } from "./ids.js";

export interface PermissionLimits {
  /** Items per CheckBulkPermissions call. */
  readonly maxBulkItems: number;
  /** Upper bound of LookupResources page_size. */
  readonly maxLookupPageSize: number;
}

/** Subjects a question may be about: users, and the members of a group or organization. */
const SUBJECT_RELATIONS: Readonly<Record<string, string | undefined>> = { user: undefined, group: "member", organization: "member" };

/**
 * PermissionService's questions: validated against the schema before they
 * reach SpiceDB, answered by SpiceDB, each with the token it was answered at.
 */
export class Permissions {
  constructor(
    private readonly engine: Engine,
    private readonly tokens: ConsistencyTokens,
    private readonly schema: SchemaModel,
    readonly limits: PermissionLimits,
  ) {}

  async check(item: CheckItem, freshness: Freshness): Promise<{ allowed: boolean; token: string }> {
    const consistency = await this.tokens.resolve(freshness);
    const result = await this.engine.check(item, consistency);
    return { allowed: result.allowed, token: this.tokens.forRead(result.token) };
  }

  async checkBulk(items: readonly CheckItem[], freshness: Freshness) {
    if (items.length === 0) throw invalid("items", "at least one item is required");
    if (items.length > this.limits.maxBulkItems) {
      throw invalid("items", `at most ${this.limits.maxBulkItems} items per call, got ${items.length}`);
    }
    const consistency = await this.tokens.resolve(freshness);
    const result = await this.engine.checkBulk(items, consistency);
    return { results: result.results, token: this.tokens.forRead(result.token) };
  }

  async *lookupResources(query: LookupResourcesQuery, freshness: Freshness, signal?: AbortSignal) {
    if ((query.limit ?? 0) > this.limits.maxLookupPageSize) {
      throw invalid("page_size", `at most ${this.limits.maxLookupPageSize}`);
    }
    const consistency = await this.tokens.resolve(freshness);
    for await (const r of this.engine.lookupResources(query, consistency, signal)) {
      yield { resourceId: r.resourceId, cursor: r.cursor, token: this.tokens.forRead(r.token) };
    }
  }

  async *lookupSubjects(query: LookupSubjectsQuery, freshness: Freshness, signal?: AbortSignal) {
    const consistency = await this.tokens.resolve(freshness);
    for await (const s of this.engine.lookupSubjects(query, consistency, signal)) {
      yield { subjectId: s.subjectId, excludedIds: s.excludedIds, token: this.tokens.forRead(s.token) };
    }
  }

  // ---- validation (field names are the request's, for INVALID_ARGUMENT) ----

  resource(field: string, ref: { type: string; id: string } | undefined): ObjectRef {
    if (!ref) throw invalid(field, "is required");
    this.requireType(`${field}.type`, ref.type);
    return { type: ref.type, id: requireId(`${field}.id`, ref.id, QUERY_ID_PATTERN) };
  }

  subject(field: string, ref: { type: string; id: string; relation: string } | undefined): SubjectRef {
    if (!ref) throw invalid(field, "is required");
    if (!(ref.type in SUBJECT_RELATIONS)) {
      throw invalid(`${field}.type`, `${JSON.stringify(ref.type)} cannot be a subject; use user, group or organization`);
    }
    const id = requireId(`${field}.id`, ref.id, QUERY_ID_PATTERN);
    const relation = this.subjectRelation(`${field}.relation`, ref.type, ref.relation);
    return relation ? { type: ref.type, id, relation } : { type: ref.type, id };
  }

  subjectRelation(field: string, type: string, relation: string): string | undefined {
    const expected = SUBJECT_RELATIONS[type];
    if (!relation) return expected;
    if (relation !== expected) {
      throw invalid(field, expected ? `a ${type} subject stands for its "${expected}"s; omit relation or use "${expected}"` : `a ${type} subject has no relation`);
    }
    return expected;
  }

  permission(field: string, type: string, permission: string): string {
    if (!permission) throw invalid(field, "is required");
    const definition = this.schema.get(type);
    if (!definition?.permissions.has(permission)) {
      const known = definition ? [...definition.permissions].join(", ") : "";
      throw invalid(field, `${JSON.stringify(permission)} is not a permission of ${type}; known: ${known}`);
    }
    return permission;
  }

  requireType(field: string, type: string): string {
    if (!type) throw invalid(field, "is required");
    if (!this.schema.has(type)) throw invalid(field, `unknown type ${JSON.stringify(type)}; known: ${[...this.schema.keys()].join(", ")}`);
    return type;
  }

  checkItem(
    field: string,
    item: { resource?: { type: string; id: string } | undefined; permission: string; subject?: { type: string; id: string; relation: string } | undefined },
  ): CheckItem {
    const resource = this.resource(`${field}resource`, item.resource);
    return {
      resource,
      permission: this.permission(`${field}permission`, resource.type, item.permission),
      subject: this.subject(`${field}subject`, item.subject),
    };
  }
}
