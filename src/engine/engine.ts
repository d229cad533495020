/**
 * The permission engine: everything sharegraph asks of SpiceDB goes through
 * this interface. Two implementations exist, embedded (in-process SpiceDB)
 * and remote (a SpiceDB cluster over gRPC); both are run against one test
 * suite. SpiceDB client types never leave src/engine/.
 */

export interface ObjectRef {
  readonly type: string;
  readonly id: string;
}

/** A user, or a set named by a relation such as group:analysts#member. */
export interface SubjectRef {
  readonly type: string;
  readonly id: string;
  readonly relation?: string | undefined;
}

export interface Relationship {
  readonly resource: ObjectRef;
  readonly relation: string;
  readonly subject: SubjectRef;
}

export type Consistency =
  | { readonly kind: "minimize_latency" }
  | { readonly kind: "fully_consistent" }
  /** token: a SpiceDB ZedToken. */
  | { readonly kind: "at_least_as_fresh"; readonly token: string }
  /** Exactly the snapshot of a ZedToken this engine issued (pages of one lookup). */
  | { readonly kind: "at_exact_snapshot"; readonly token: string };

export interface CheckItem {
  readonly resource: ObjectRef;
  readonly permission: string;
  readonly subject: SubjectRef;
}

export interface CheckResult {
  readonly allowed: boolean;
  /** The ZedToken the answer was computed at. */
  readonly token: string;
}

export interface BulkCheckResult {
  readonly results: ReadonlyArray<{ readonly allowed: boolean; readonly error?: string }>;
  readonly token: string;
}

export interface LookupResourcesQuery {
  readonly resourceType: string;
  readonly permission: string;
  readonly subject: SubjectRef;
  /** 0 or undefined: no limit. */
  readonly limit?: number | undefined;
  readonly cursor?: string | undefined;
}

export interface LookedUpResource {
  readonly resourceId: string;
  readonly cursor: string;
  readonly token: string;
}

export interface LookupSubjectsQuery {
  readonly resource: ObjectRef;
  readonly permission: string;
  readonly subjectType: string;
  readonly subjectRelation?: string | undefined;
}

export interface LookedUpSubject {
  readonly subjectId: string;
  /** For a wildcard result ("*"): the subjects it excludes. */
  readonly excludedIds: readonly string[];
  readonly token: string;
}

export interface RelationshipUpdate {
  readonly op: "touch" | "delete";
  readonly relationship: Relationship;
}

export interface RelationshipFilter {
  readonly resourceType: string;
  readonly resourceId?: string | undefined;
  readonly relation?: string | undefined;
  readonly subject?: { readonly type: string; readonly id?: string | undefined; readonly relation?: string | undefined } | undefined;
}

/** One node of SpiceDB's check trace, kept close to SpiceDB's own shape. */
export interface TraceNode {
  readonly resource: ObjectRef;
  /** A relation or permission name of resource's type. */
  readonly name: string;
  readonly isPermission: boolean;
  readonly subject: SubjectRef;
  readonly hasPermission: boolean;
  readonly children: readonly TraceNode[];
}

export interface TracedCheckResult extends CheckResult {
  readonly trace: TraceNode | undefined;
}

export interface Engine {
  /** "embedded" or "remote", for logs and health. */
  readonly kind: string;
  writeSchema(schema: string): Promise<void>;
  readSchema(): Promise<string>;
  check(item: CheckItem, consistency: Consistency): Promise<CheckResult>;
  /**
   * Checks every item at one snapshot; results keep the order of items.
   * Once `signal` aborts (the call that asked has ended) nothing more is
   * sent to SpiceDB and the promise rejects with the signal's reason.
   */
  checkBulk(items: readonly CheckItem[], consistency: Consistency, signal?: AbortSignal): Promise<BulkCheckResult>;
  /** Check with SpiceDB's debug trace, for ExplainPermission. */
  checkWithTrace(item: CheckItem, consistency: Consistency): Promise<TracedCheckResult>;
  lookupResources(query: LookupResourcesQuery, consistency: Consistency, signal?: AbortSignal): AsyncIterable<LookedUpResource>;
  lookupSubjects(query: LookupSubjectsQuery, consistency: Consistency, signal?: AbortSignal): AsyncIterable<LookedUpSubject>;
  readRelationships(filter: RelationshipFilter, consistency: Consistency): AsyncIterable<Relationship>;
  /**
   * Applies the updates atomically (at most maxUpdatesPerWrite of them) and
   * returns the ZedToken of the write. TOUCH and DELETE are idempotent.
   */
  write(updates: readonly RelationshipUpdate[]): Promise<string>;
  /** Deletes every relationship matching the filter; returns the ZedToken. */
  deleteMatching(filter: RelationshipFilter): Promise<string>;
  readonly maxUpdatesPerWrite: number;
  close(): Promise<void>;
}

export type EngineErrorKind = "unavailable" | "invalid_argument" | "failed_precondition" | "not_found" | "internal";

/** An engine failure with the kind the API layer maps to a gRPC code. */
export class EngineError extends Error {
  constructor(
    readonly kind: EngineErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "EngineError";
  }
}

export function formatRelationship(r: Relationship): string {
  const subject = `${r.subject.type}:${r.subject.id}${r.subject.relation ? `#${r.subject.relation}` : ""}`;
  return `${r.resource.type}:${r.resource.id}#${r.relation}@${subject}`;
}
