import type {
  BulkCheckResult,
  CheckItem,
  CheckResult,
  Consistency,
  Engine,
  LookedUpResource,
  LookedUpSubject,
  LookupResourcesQuery,
  LookupSubjectsQuery,
  SubjectRef,
  TracedCheckResult,
} from "./engine.js";

/*
 * Group membership is held in SpiceDB as its closure: `group:G#member` lists
 * every user of G at any depth, and no nested group (src/domain/graph.ts),
 * so that a check about a user never walks nested groups. A question about
 * a group's members as a subject ("may the members of group emea view
 * this?") is then asked about the group's stand-in: a user that sharegraph
 * makes a member of the group and of every group containing it, and of
 * nothing else: exactly what any member of the group has for being one.
 * SpiceDB answers it at the question's snapshot, relation by relation, as
 * it answered subject sets when nesting was written as `group#member`
 * subjects. Stand-ins never come out of a lookup of users.
 */

/** Stand-in ids hold a '|', which no id sharegraph creates can (domain/ids.ts). */
const STAND_IN_PREFIX = "group|";

/** The user that stands for the members of a group. */
export function groupStandIn(groupId: string): string {
  return `${STAND_IN_PREFIX}${groupId}`;
}

/** The group a stand-in stands for; undefined for a real user id. */
export function standInGroup(userId: string): string | undefined {
  return userId.startsWith(STAND_IN_PREFIX) ? userId.slice(STAND_IN_PREFIX.length) : undefined;
}

/** A group's members (`group:<id>#member`) become its stand-in; other subjects stay. */
export function asked(subject: SubjectRef): SubjectRef {
  return subject.type === "group" && subject.relation === "member" ? { type: "user", id: groupStandIn(subject.id) } : subject;
}

/**
 * Group subjects to stand-ins on the way in; stand-ins out of user lookups,
 * or turned back into groups when groups were asked for.
 */
export class GroupSubjectsEngine implements Engine {
  readonly kind: string;
  readonly maxUpdatesPerWrite: number;

  constructor(private readonly inner: Engine) {
    this.kind = inner.kind;
    this.maxUpdatesPerWrite = inner.maxUpdatesPerWrite;
  }

  check(item: CheckItem, consistency: Consistency): Promise<CheckResult> {
    return this.inner.check({ ...item, subject: asked(item.subject) }, consistency);
  }

  checkBulk(items: readonly CheckItem[], consistency: Consistency, signal?: AbortSignal): Promise<BulkCheckResult> {
    return this.inner.checkBulk(
      items.map((item) => ({ ...item, subject: asked(item.subject) })),
      consistency,
      signal,
    );
  }

  /** The trace is about the stand-in; ExplainPermission names the group (domain/explain.ts). */
  checkWithTrace(item: CheckItem, consistency: Consistency): Promise<TracedCheckResult> {
    return this.inner.checkWithTrace({ ...item, subject: asked(item.subject) }, consistency);
  }

  lookupResources(query: LookupResourcesQuery, consistency: Consistency, signal?: AbortSignal): AsyncIterable<LookedUpResource> {
    return this.inner.lookupResources({ ...query, subject: asked(query.subject) }, consistency, signal);
  }

  async *lookupSubjects(query: LookupSubjectsQuery, consistency: Consistency, signal?: AbortSignal): AsyncIterable<LookedUpSubject> {
    if (query.subjectType === "group" && query.subjectRelation === "member") {
      // The groups whose members have the permission: the stand-ins among the users that have it.
      for await (const s of this.inner.lookupSubjects({ ...query, subjectType: "user", subjectRelation: undefined }, consistency, signal)) {
        const group = standInGroup(s.subjectId);
        if (group !== undefined) yield { subjectId: group, excludedIds: [], token: s.token };
      }
      return;
    }
    for await (const s of this.inner.lookupSubjects(query, consistency, signal)) {
      if (query.subjectType === "user" && standInGroup(s.subjectId) !== undefined) continue;
      yield query.subjectType === "user" && s.excludedIds.length > 0 ? { ...s, excludedIds: s.excludedIds.filter((id) => standInGroup(id) === undefined) } : s;
    }
  }

  writeSchema: Engine["writeSchema"] = (schema) => this.inner.writeSchema(schema);
  readSchema: Engine["readSchema"] = () => this.inner.readSchema();
  readRelationships: Engine["readRelationships"] = (filter, consistency) => this.inner.readRelationships(filter, consistency);
  write: Engine["write"] = (updates) => this.inner.write(updates);
  deleteMatching: Engine["deleteMatching"] = (filter) => this.inner.deleteMatching(filter);
  close: Engine["close"] = () => this.inner.close();
}
