import type {
  BulkCheckResult,
  CheckItem,
  Consistency,
  Engine,
  LookupResourcesQuery,
  LookupSubjectsQuery,
  ObjectRef,
  SubjectRef,
} from "../engine/engine.js";
import { standInGroup } from "../engine/group-subjects.js";
import type { SchemaModel } from "../engine/schema.js";
import type { ViewQuestion } from "../store/content-view.js";
import type { ConsistencyTokens, Freshness } from "../sync/consistency.js";
import { invalid } from "./errors.js";
import { QUERY_ID_PATTERN, requireId } from "./ids.js";
import { isContentKind } from "./roles.js";
import type { LookupCursors} from "./lookup-pages.js";
import { compareIds, firstAfter, LookupMemo, queryKey } from "./lookup-pages.js";
import type { ViewDecisionCache } from "./view-decisions.js";

export interface LookedUp {
  readonly resourceId: string;
  /** "" for an unpaged stream. */
  readonly cursor: string;
  readonly token: string;
}

export interface PermissionLimits {
  /** Items per CheckBulkPermissions call. */
  readonly maxBulkItems: number;
  /** Upper bound of LookupResources page_size. */
  readonly maxLookupPageSize: number;
}

/** Subjects a question may be about: users, and the members of a group or organization. */
const SUBJECT_RELATIONS: Readonly<Record<string, string | undefined>> = { user: undefined, group: "member", organization: "member" };

/**
 * `view` on content answered from Postgres (src/store/content-view.ts):
 * VIEW_CHECKS_FROM=postgres. Absent, every question goes to SpiceDB.
 */
export interface ContentViewIndex {
  canView(questions: readonly ViewQuestion[]): Promise<boolean[]>;
  /** Every item of the kind the user may view, each once. */
  viewable(userId: string, kind: string): Promise<string[]>;
}

/**
 * The question as ContentViewIndex asks it, if it is one it answers: `view`
 * (or `interact`, the same) on a content item for a user. Group and organization members, the
 * wildcard and group stand-ins ("group|…") stay with SpiceDB.
 */
export function viewQuestion(item: CheckItem): ViewQuestion | undefined {
  const userId = viewer(item.resource.type, item.permission, item.subject);
  return userId === undefined ? undefined : { userId, kind: item.resource.type, contentId: item.resource.id };
}

/** `interact` is `view` on every content kind (schema/sharegraph.zed). */
const VIEW_PERMISSIONS = new Set(["view", "interact"]);

/** The user whose `view` of content of this type is asked, if ContentViewIndex answers it. */
function viewer(resourceType: string, permission: string, subject: SubjectRef): string | undefined {
  if (!VIEW_PERMISSIONS.has(permission) || !isContentKind(resourceType)) return undefined;
  if (subject.type !== "user" || (subject.relation ?? "") !== "" || subject.id === "*" || subject.id.includes("|")) return undefined;
  return subject.id;
}

/**
 * PermissionService's questions: validated against the schema before they
 * reach SpiceDB, answered by SpiceDB, each with the token it was answered at
 * — except, with a ContentViewIndex, `view` on content (viewQuestion), which
 * Postgres answers from the rows SpiceDB's relationships derive from.
 */
export class Permissions {
  constructor(
    private readonly engine: Engine,
    private readonly tokens: ConsistencyTokens,
    private readonly schema: SchemaModel,
    readonly limits: PermissionLimits,
    private readonly cursors: LookupCursors,
    private readonly viewIndex?: ContentViewIndex,
    /** Remembers viewIndex's answers (view-decisions.ts); fully consistent reads always ask. */
    private readonly viewDecisions?: ViewDecisionCache,
    private readonly memo = new LookupMemo(),
  ) {}

  async check(item: CheckItem, freshness: Freshness): Promise<{ allowed: boolean; token: string }> {
    const question = this.viewIndex && viewQuestion(item);
    if (question) {
      const { results, token } = await this.#fromPostgres([question], freshness);
      return { allowed: results[0]!, token };
    }
    const consistency = await this.tokens.resolve(freshness);
    const result = await this.engine.check(item, consistency);
    return { allowed: result.allowed, token: this.tokens.forRead(result.token) };
  }

  /** `signal`: the call's (src/call-signal.ts); once it aborts, the rest of a large bulk check is not asked. */
  async checkBulk(items: readonly CheckItem[], freshness: Freshness, signal?: AbortSignal): Promise<{ results: BulkCheckResult["results"]; token: string }> {
    if (items.length === 0) throw invalid("items", "at least one item is required");
    if (items.length > this.limits.maxBulkItems) {
      throw invalid("items", `at most ${this.limits.maxBulkItems} items per call, got ${items.length}`);
    }
    // All or nothing: one answer's items share one snapshot and one token.
    const questions = this.viewIndex ? items.map(viewQuestion) : [];
    if (questions.length > 0 && questions.every((q) => q !== undefined)) {
      const { results, token } = await this.#fromPostgres(questions as ViewQuestion[], freshness);
      return { results: results.map((allowed) => ({ allowed })), token };
    }
    const consistency = await this.tokens.resolve(freshness);
    const result = await this.engine.checkBulk(items, consistency, signal);
    return { results: result.results, token: this.tokens.forRead(result.token) };
  }

  /**
   * The freshness is resolved as for SpiceDB (a token is verified, and its
   * batch waited for), and the answer's token taken before the query: every
   * batch it names was committed before the query's snapshot, so the answer
   * reflects every batch its token names (and perhaps newer ones: Postgres
   * is ahead of SpiceDB while a batch is on its way).
   */
  async #fromPostgres(questions: readonly ViewQuestion[], freshness: Freshness): Promise<{ results: boolean[]; token: string }> {
    await this.tokens.resolve(freshness);
    const token = this.tokens.current();
    const index = this.viewIndex!;
    if (!this.viewDecisions || freshness.kind === "fully_consistent") return { results: await index.canView(questions), token };
    return { results: await this.viewDecisions.answer(token, questions, (missing) => index.canView(missing)), token };
  }

  /**
   * Each resource once. Without page size or cursor, results stream as the
   * index finds them (no cursor: there is no order to resume in). With
   * either, pages run in resource-id order at the first page's snapshot,
   * and every result carries the cursor to continue after it.
   */
  async *lookupResources(query: LookupResourcesQuery, freshness: Freshness, signal?: AbortSignal): AsyncIterable<LookedUp> {
    const limit = query.limit ?? 0;
    if (limit > this.limits.maxLookupPageSize) {
      throw invalid("page_size", `at most ${this.limits.maxLookupPageSize}`);
    }
    const whole = { resourceType: query.resourceType, permission: query.permission, subject: query.subject };
    const userId = this.viewIndex && viewer(whole.resourceType, whole.permission, whole.subject);
    if (userId) {
      yield* this.#lookupFromPostgres(userId, whole, limit, query.cursor, freshness);
      return;
    }
    if (limit === 0 && !query.cursor) {
      const consistency = await this.tokens.resolve(freshness);
      const seen = new Set<string>();
      for await (const r of this.engine.lookupResources(whole, consistency, signal)) {
        if (seen.has(r.resourceId)) continue;
        seen.add(r.resourceId);
        yield { resourceId: r.resourceId, cursor: "", token: this.tokens.forRead(r.token) };
      }
      return;
    }
    const cursor = query.cursor ? this.cursors.decode(whole, query.cursor) : undefined;
    // The first page's snapshot, when this engine can still read it; else a fresh one (ids still only go up).
    const consistency: Consistency =
      cursor && cursor.epoch === this.tokens.epoch && cursor.zed ? { kind: "at_exact_snapshot", token: cursor.zed } : await this.tokens.resolve(freshness);
    const { ids, zed } = await this.#sortedLookup(whole, consistency, signal);
    const start = cursor ? firstAfter(ids, cursor.after) : 0;
    const end = limit === 0 ? ids.length : Math.min(ids.length, start + limit);
    const token = this.tokens.forRead(zed);
    for (let i = start; i < end; i++) {
      const resourceId = ids[i]!;
      yield { resourceId, cursor: this.cursors.encode(whole, { after: resourceId, epoch: this.tokens.epoch, zed }), token };
    }
  }

  /**
   * LookupResources of `view` on content from Postgres: the whole set in one
   * statement, in resource-id order, the page asked for. No snapshot outlives
   * the call (cursors carry none), so each page is read at a newer one than
   * the last; ids only go up, so no resource comes twice.
   */
  async *#lookupFromPostgres(userId: string, whole: LookupResourcesQuery, limit: number, cursorText: string | undefined, freshness: Freshness): AsyncIterable<LookedUp> {
    const cursor = cursorText ? this.cursors.decode(whole, cursorText) : undefined;
    await this.tokens.resolve(freshness);
    const token = this.tokens.current();
    const ids = (await this.viewIndex!.viewable(userId, whole.resourceType)).sort(compareIds);
    const paged = limit > 0 || cursor !== undefined;
    const start = cursor ? firstAfter(ids, cursor.after) : 0;
    const end = limit === 0 ? ids.length : Math.min(ids.length, start + limit);
    for (let i = start; i < end; i++) {
      const resourceId = ids[i]!;
      yield { resourceId, cursor: paged ? this.cursors.encode(whole, { after: resourceId, epoch: this.tokens.epoch, zed: "" }) : "", token };
    }
  }

  async #sortedLookup(query: LookupResourcesQuery, consistency: Consistency, signal?: AbortSignal): Promise<{ ids: readonly string[]; zed: string }> {
    const exact = consistency.kind === "at_exact_snapshot" ? consistency.token : undefined;
    const memoKey = exact ? `${queryKey(query)}|${exact}` : undefined;
    const memoized = memoKey ? this.memo.get(memoKey) : undefined;
    if (memoized && exact) return { ids: memoized, zed: exact };
    const unique = new Set<string>();
    let zed = exact ?? "";
    for await (const r of this.engine.lookupResources(query, consistency, signal)) {
      unique.add(r.resourceId);
      if (!exact && r.token) zed = r.token;
    }
    const ids = [...unique].sort(compareIds);
    // An empty result carries no snapshot, and no cursor will ask for it again.
    if (zed) this.memo.set(`${queryKey(query)}|${zed}`, ids);
    return { ids, zed };
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
    const group = ref.type === "user" ? standInGroup(id) : undefined;
    if (group !== undefined) {
      throw invalid(`${field}.id`, `user ids starting "group|" are sharegraph's stand-ins for a group's members; ask about subject group ${JSON.stringify(group)} instead`);
    }
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
      const known = definition ? [...definition.permissions].filter(isPublicPermission).join(", ") : "";
      throw invalid(field, `${JSON.stringify(permission)} is not a permission of ${type}; known: ${known}`);
    }
    return permission;
  }

  requireType(field: string, type: string): string {
    if (!type) throw invalid(field, "is required");
    if (!this.schema.has(type)) throw invalid(field, `unknown type ${JSON.stringify(type)}; known: ${[...this.schema.keys()].filter((t) => !INTERNAL_TYPES.has(t)).join(", ")}`);
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

/**
 * The schema's building blocks: permissions and types that exist to compose
 * the documented ones (granted_*, direct_*, the workspace's tree walks …).
 * They can still be checked, but error messages list only what the README
 * documents, so a caller is not sent towards them.
 */
const INTERNAL_PERMISSION = /^(granted_|direct_|local_|subtree_)|^(member_view|view_in_tree|view_all_content|eligible_native|create_content|change_permissions|channel_partner_member|channel_partner_view|partner_access|consumer_member)$/;
const INTERNAL_TYPES = new Set(["platform", "partnership", "channel_partnership", "service_account"]);

export function isPublicPermission(permission: string): boolean {
  return !INTERNAL_PERMISSION.test(permission);
}
