import { v1 } from "@authzed/authzed-node";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { abortReason } from "../call-signal.js";
import {
  EngineError,
  type BulkCheckResult,
  type CheckItem,
  type CheckResult,
  type Consistency,
  type Engine,
  type EngineErrorKind,
  type LookedUpResource,
  type LookedUpSubject,
  type LookupResourcesQuery,
  type LookupSubjectsQuery,
  type ObjectRef,
  type Relationship,
  type RelationshipFilter,
  type RelationshipUpdate,
  type SubjectRef,
  type TraceNode,
  type TracedCheckResult,
} from "./engine.js";

type ZedClient = v1.ZedClientInterface;

/** The two faces of a SpiceDB connection; the embedded library hands them out separately. */
export interface SpiceDbClients {
  readonly permissions: ZedClient;
  readonly schema: ZedClient;
}

/** A streamed answer: its messages in order, and a way to stop it early. */
export interface ReadableCall<T> extends AsyncIterable<T> {
  cancel(): void;
}

/** Options of a streaming call: its deadline (epoch ms). */
export interface StreamCallOptions {
  readonly deadline: number;
}

/**
 * The SpiceDB v1 calls SpiceDbEngine makes. A grpc-js client provides them
 * (callsOf); so does the embedded engine's worker thread (threaded.ts).
 * Failures reject with what toEngineError understands: a grpc-js
 * ServiceError, an FFI error message, or an EngineError.
 */
export interface SpiceDbCalls {
  readSchema(request: v1.ReadSchemaRequest): Promise<v1.ReadSchemaResponse>;
  writeSchema(request: v1.WriteSchemaRequest): Promise<v1.WriteSchemaResponse>;
  checkPermission(request: v1.CheckPermissionRequest): Promise<v1.CheckPermissionResponse>;
  checkBulkPermissions(request: v1.CheckBulkPermissionsRequest): Promise<v1.CheckBulkPermissionsResponse>;
  writeRelationships(request: v1.WriteRelationshipsRequest): Promise<v1.WriteRelationshipsResponse>;
  deleteRelationships(request: v1.DeleteRelationshipsRequest): Promise<v1.DeleteRelationshipsResponse>;
  lookupResources(request: v1.LookupResourcesRequest, options: StreamCallOptions): ReadableCall<v1.LookupResourcesResponse>;
  lookupSubjects(request: v1.LookupSubjectsRequest, options: StreamCallOptions): ReadableCall<v1.LookupSubjectsResponse>;
  readRelationships(request: v1.ReadRelationshipsRequest, options: StreamCallOptions): ReadableCall<v1.ReadRelationshipsResponse>;
}

/** The calls of grpc-js clients (the remote engine's, or the embedded library's). */
export function callsOf(clients: SpiceDbClients): SpiceDbCalls {
  const { permissions, schema } = clients;
  return {
    readSchema: (r) => schema.promises.readSchema(r),
    writeSchema: (r) => schema.promises.writeSchema(r),
    checkPermission: (r) => permissions.promises.checkPermission(r),
    checkBulkPermissions: (r) => permissions.promises.checkBulkPermissions(r),
    writeRelationships: (r) => permissions.promises.writeRelationships(r),
    deleteRelationships: (r) => permissions.promises.deleteRelationships(r),
    lookupResources: (r, o) => permissions.lookupResources(r, o),
    lookupSubjects: (r, o) => permissions.lookupSubjects(r, o),
    readRelationships: (r, o) => permissions.readRelationships(r, o),
  };
}

export interface SpiceDbEngineOptions {
  readonly kind: string;
  readonly calls: SpiceDbCalls;
  readonly maxUpdatesPerWrite: number;
  /** Deadline of a whole streamed lookup or read (unary calls have the client's own). */
  readonly streamTimeoutMs?: number;
  readonly close: () => Promise<void>;
}

const DEFAULT_STREAM_TIMEOUT_MS = 10 * 60_000;

/** Items per CheckBulkPermissions request to SpiceDB (see checkBulk). */
export const BULK_SLICE = 50;
/** Slices of one bulk check in flight at once. */
export const BULK_SLICES_IN_FLIGHT = 4;

/**
 * Engine over SpiceDB's v1 API. Shared by the embedded (in-thread and
 * threaded) and the remote engine: they differ only in how the calls are
 * made and closed.
 */
export class SpiceDbEngine implements Engine {
  readonly kind: string;
  readonly maxUpdatesPerWrite: number;
  readonly #spicedb: SpiceDbCalls;
  readonly #close: () => Promise<void>;
  readonly #streamTimeoutMs: number;
  #closed = false;

  constructor(options: SpiceDbEngineOptions) {
    this.kind = options.kind;
    this.maxUpdatesPerWrite = options.maxUpdatesPerWrite;
    this.#spicedb = options.calls;
    this.#close = options.close;
    this.#streamTimeoutMs = options.streamTimeoutMs ?? DEFAULT_STREAM_TIMEOUT_MS;
  }

  /** Call options of a streaming call: its own deadline, longer than a unary one. */
  #streamOptions(): { deadline: number } {
    this.#open();
    return { deadline: Date.now() + this.#streamTimeoutMs };
  }

  async #call<T>(fn: () => Promise<T>): Promise<T> {
    this.#open();
    try {
      return await fn();
    } catch (err) {
      throw toEngineError(err);
    }
  }

  /** A closed engine answers like an unreachable one, not with a library crash. */
  #open(): void {
    if (this.#closed) throw new EngineError("unavailable", "the permission engine is closed");
  }

  async writeSchema(schema: string): Promise<void> {
    await this.#call(() => this.#spicedb.writeSchema(v1.WriteSchemaRequest.create({ schema })));
  }

  async readSchema(): Promise<string> {
    const response = await this.#call(() => this.#spicedb.readSchema(v1.ReadSchemaRequest.create({})));
    return response.schemaText;
  }

  async check(item: CheckItem, consistency: Consistency): Promise<CheckResult> {
    const response = await this.#call(() => this.#spicedb.checkPermission(checkRequest(item, consistency, false)));
    return { allowed: isAllowed(response.permissionship), token: response.checkedAt?.token ?? "" };
  }

  async checkWithTrace(item: CheckItem, consistency: Consistency): Promise<TracedCheckResult> {
    const response = await this.#call(() => this.#spicedb.checkPermission(checkRequest(item, consistency, true)));
    const trace = response.debugTrace?.check;
    const allowed = isAllowed(response.permissionship);
    let root = trace ? traceNode(trace) : undefined;
    // SpiceDB traces an alias (view = member_view) as its target; keep the asked-for permission at the root.
    if (root && (root.name !== item.permission || root.resource.type !== item.resource.type || root.resource.id !== item.resource.id)) {
      root = { resource: item.resource, name: item.permission, isPermission: true, subject: item.subject, hasPermission: allowed, children: [root] };
    }
    return { allowed, token: response.checkedAt?.token ?? "", trace: root };
  }

  /**
   * A large bulk check goes to SpiceDB in slices of BULK_SLICE items,
   * BULK_SLICES_IN_FLIGHT at a time: building each request and reading each
   * answer is then a short task of its own, so other clients' calls run in
   * between instead of waiting for one long turn of the event loop (issue
   * 8: no engine call may block the loop for more than 50 ms). Unless the
   * check is at an exact snapshot already, the first slice's answer fixes
   * the snapshot the others are asked at, so the whole answer is still one
   * snapshot's. Once `signal` aborts, no further slice is sent.
   */
  async checkBulk(items: readonly CheckItem[], consistency: Consistency, signal?: AbortSignal): Promise<BulkCheckResult> {
    if (items.length === 0) return { results: [], token: "" };
    const count = Math.ceil(items.length / BULK_SLICE);
    const answers: BulkCheckResult[] = new Array<BulkCheckResult>(count);
    let next = 0;
    const ask = async (index: number, at: Consistency) => {
      try {
        // The call that asked has ended: nobody will read the rest.
        if (signal?.aborted) throw abortReason(signal);
        answers[index] = await this.#checkBulkSlice(items.slice(index * BULK_SLICE, (index + 1) * BULK_SLICE), at);
      } catch (err) {
        next = count; // the call fails: send nothing more
        throw err;
      }
    };
    let at = consistency;
    if (count > 1 && consistency.kind !== "at_exact_snapshot") {
      await ask(next++, consistency);
      if (answers[0]!.token) at = { kind: "at_exact_snapshot", token: answers[0]!.token };
    }
    // A few slices in flight at a time: with all twenty of a 1,000-item check at once, SpiceDB took longer than for one request.
    const worker = async () => {
      while (next < count) {
        await ask(next++, at);
        await yieldToLoop();
      }
    };
    await Promise.all(Array.from({ length: Math.min(BULK_SLICES_IN_FLIGHT, count) }, worker));
    return { results: answers.flatMap((a) => a.results), token: answers[0]!.token };
  }

  async #checkBulkSlice(items: readonly CheckItem[], consistency: Consistency): Promise<BulkCheckResult> {
    const request: v1.CheckBulkPermissionsRequest = {
      consistency: toConsistency(consistency),
      items: items.map((item): v1.CheckBulkPermissionsRequestItem => ({
        resource: objectRef(item.resource),
        permission: item.permission,
        subject: subjectRef(item.subject),
      })),
      withTracing: false,
    };
    const response = await this.#call(() => this.#spicedb.checkBulkPermissions(request));
    // SpiceDB answers pairs in request order; a pair is either an item or an error.
    const results = response.pairs.map((pair) => {
      if (pair.response.oneofKind === "item") return { allowed: isAllowed(pair.response.item.permissionship) };
      if (pair.response.oneofKind === "error") return { allowed: false, error: pair.response.error.message };
      return { allowed: false, error: "no answer for this item" };
    });
    if (results.length !== items.length) {
      throw new EngineError("internal", `bulk check answered ${results.length} of ${items.length} items`);
    }
    return { results, token: response.checkedAt?.token ?? "" };
  }

  async *lookupResources(
    query: LookupResourcesQuery,
    consistency: Consistency,
    signal?: AbortSignal,
  ): AsyncIterable<LookedUpResource> {
    const request = v1.LookupResourcesRequest.create({
      consistency: toConsistency(consistency),
      resourceObjectType: query.resourceType,
      permission: query.permission,
      subject: subjectRef(query.subject),
      optionalLimit: query.limit ?? 0,
      ...(query.cursor ? { optionalCursor: v1.Cursor.create({ token: query.cursor }) } : {}),
    });
    const stream = this.#spicedb.lookupResources(request, this.#streamOptions());
    yield* streamOf(stream, signal, (r: v1.LookupResourcesResponse) => ({
      resourceId: r.resourceObjectId,
      cursor: r.afterResultCursor?.token ?? "",
      token: r.lookedUpAt?.token ?? "",
    }));
  }

  async *lookupSubjects(
    query: LookupSubjectsQuery,
    consistency: Consistency,
    signal?: AbortSignal,
  ): AsyncIterable<LookedUpSubject> {
    const request = v1.LookupSubjectsRequest.create({
      consistency: toConsistency(consistency),
      resource: objectRef(query.resource),
      permission: query.permission,
      subjectObjectType: query.subjectType,
      optionalSubjectRelation: query.subjectRelation ?? "",
    });
    const stream = this.#spicedb.lookupSubjects(request, this.#streamOptions());
    yield* streamOf(stream, signal, (r: v1.LookupSubjectsResponse) => ({
      subjectId: r.subject?.subjectObjectId ?? r.subjectObjectId,
      excludedIds: r.excludedSubjects.map((s) => s.subjectObjectId),
      token: r.lookedUpAt?.token ?? "",
    }));
  }

  async *readRelationships(filter: RelationshipFilter, consistency: Consistency): AsyncIterable<Relationship> {
    const request = v1.ReadRelationshipsRequest.create({
      consistency: toConsistency(consistency),
      relationshipFilter: relationshipFilter(filter),
    });
    const stream = this.#spicedb.readRelationships(request, this.#streamOptions());
    yield* streamOf(stream, undefined, (r: v1.ReadRelationshipsResponse) => fromRelationship(r.relationship));
  }

  async write(updates: readonly RelationshipUpdate[]): Promise<string> {
    if (updates.length > this.maxUpdatesPerWrite) {
      throw new EngineError("invalid_argument", `at most ${this.maxUpdatesPerWrite} updates per write, got ${updates.length}`);
    }
    const request: v1.WriteRelationshipsRequest = {
      updates: updates.map((u): v1.RelationshipUpdate => ({
        operation: u.op === "touch" ? v1.RelationshipUpdate_Operation.TOUCH : v1.RelationshipUpdate_Operation.DELETE,
        relationship: toRelationship(u.relationship),
      })),
      optionalPreconditions: [],
    };
    const response = await this.#call(() => this.#spicedb.writeRelationships(request));
    return response.writtenAt?.token ?? "";
  }

  async deleteMatching(filter: RelationshipFilter): Promise<string> {
    const request = v1.DeleteRelationshipsRequest.create({ relationshipFilter: relationshipFilter(filter) });
    const response = await this.#call(() => this.#spicedb.deleteRelationships(request));
    return response.deletedAt?.token ?? "";
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#close();
  }
}

function isAllowed(p: v1.CheckPermissionResponse_Permissionship): boolean {
  // CONDITIONAL needs caveat context; sharegraph's schema has no caveats, so only HAS counts.
  return p === v1.CheckPermissionResponse_Permissionship.HAS_PERMISSION;
}

function checkRequest(item: CheckItem, consistency: Consistency, withTracing: boolean): v1.CheckPermissionRequest {
  return v1.CheckPermissionRequest.create({
    consistency: toConsistency(consistency),
    resource: objectRef(item.resource),
    permission: item.permission,
    subject: subjectRef(item.subject),
    withTracing,
  });
}

function toConsistency(c: Consistency): v1.Consistency {
  switch (c.kind) {
    case "minimize_latency":
      return v1.Consistency.create({ requirement: { oneofKind: "minimizeLatency", minimizeLatency: true } });
    case "fully_consistent":
      return v1.Consistency.create({ requirement: { oneofKind: "fullyConsistent", fullyConsistent: true } });
    case "at_least_as_fresh":
      return v1.Consistency.create({
        requirement: { oneofKind: "atLeastAsFresh", atLeastAsFresh: v1.ZedToken.create({ token: c.token }) },
      });
    case "at_exact_snapshot":
      return v1.Consistency.create({
        requirement: { oneofKind: "atExactSnapshot", atExactSnapshot: v1.ZedToken.create({ token: c.token }) },
      });
  }
}

// Plain literals, not v1.X.create(): create() merges its argument field by field through
// reflection, which cost more main-thread CPU than the whole request's encoding in a large
// bulk check or write (profiled). The encoder reads plain objects of the message's shape.
function objectRef(o: ObjectRef): v1.ObjectReference {
  return { objectType: o.type, objectId: o.id };
}

function subjectRef(s: SubjectRef): v1.SubjectReference {
  return { object: objectRef(s), optionalRelation: s.relation ?? "" };
}

function toRelationship(r: Relationship): v1.Relationship {
  return { resource: objectRef(r.resource), relation: r.relation, subject: subjectRef(r.subject) };
}

function fromRelationship(r: v1.Relationship | undefined): Relationship {
  const resource = r?.resource;
  const subject = r?.subject?.object;
  if (!r || !resource || !subject) throw new EngineError("internal", "SpiceDB returned an incomplete relationship");
  return {
    resource: { type: resource.objectType, id: resource.objectId },
    relation: r.relation,
    subject: {
      type: subject.objectType,
      id: subject.objectId,
      ...(r.subject?.optionalRelation ? { relation: r.subject.optionalRelation } : {}),
    },
  };
}

function relationshipFilter(f: RelationshipFilter): v1.RelationshipFilter {
  return v1.RelationshipFilter.create({
    resourceType: f.resourceType,
    optionalResourceId: f.resourceId ?? "",
    optionalRelation: f.relation ?? "",
    ...(f.subject
      ? {
          optionalSubjectFilter: v1.SubjectFilter.create({
            subjectType: f.subject.type,
            optionalSubjectId: f.subject.id ?? "",
            ...(f.subject.relation !== undefined
              ? { optionalRelation: v1.SubjectFilter_RelationFilter.create({ relation: f.subject.relation }) }
              : {}),
          }),
        }
      : {}),
  });
}

/** authzed-node does not export the debug types; these mirror authzed/api/v1/debug.proto. */
interface CheckDebugTrace {
  resource?: v1.ObjectReference;
  permission: string;
  permissionType: number;
  subject?: v1.SubjectReference;
  result: number;
  resolution:
    | { oneofKind: "wasCachedResult"; wasCachedResult: boolean }
    | { oneofKind: "subProblems"; subProblems: { traces: CheckDebugTrace[] } }
    | { oneofKind: undefined };
}
const TRACE_PERMISSION_TYPE_PERMISSION = 2;
const TRACE_HAS_PERMISSION = 2;

function traceNode(t: CheckDebugTrace): TraceNode {
  const resource = t.resource ?? v1.ObjectReference.create({});
  const subject = t.subject?.object ?? v1.ObjectReference.create({});
  const children = t.resolution.oneofKind === "subProblems" ? t.resolution.subProblems.traces.map(traceNode) : [];
  return {
    resource: { type: resource.objectType, id: resource.objectId },
    name: t.permission,
    isPermission: t.permissionType === TRACE_PERMISSION_TYPE_PERMISSION,
    subject: {
      type: subject.objectType,
      id: subject.objectId,
      ...(t.subject?.optionalRelation ? { relation: t.subject.optionalRelation } : {}),
    },
    hasPermission: t.result === TRACE_HAS_PERMISSION,
    children,
  };
}

async function* streamOf<T, R>(
  stream: ReadableCall<T>,
  signal: AbortSignal | undefined,
  map: (item: T) => R,
): AsyncIterable<R> {
  const onAbort = () => stream.cancel();
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) stream.cancel();
  try {
    for await (const item of stream) yield map(item);
  } catch (err) {
    throw toEngineError(err);
  } finally {
    signal?.removeEventListener("abort", onAbort);
    // A consumer that stops early must not leave the call open.
    stream.cancel();
  }
}


/** Go's codes.Code names, as the embedded library prints them, to gRPC status numbers. */
const GO_CODE_NAMES: Record<string, number> = {
  Canceled: GrpcStatus.CANCELLED,
  Unknown: GrpcStatus.UNKNOWN,
  InvalidArgument: GrpcStatus.INVALID_ARGUMENT,
  DeadlineExceeded: GrpcStatus.DEADLINE_EXCEEDED,
  NotFound: GrpcStatus.NOT_FOUND,
  AlreadyExists: GrpcStatus.ALREADY_EXISTS,
  PermissionDenied: GrpcStatus.PERMISSION_DENIED,
  ResourceExhausted: GrpcStatus.RESOURCE_EXHAUSTED,
  FailedPrecondition: GrpcStatus.FAILED_PRECONDITION,
  Aborted: GrpcStatus.ABORTED,
  OutOfRange: GrpcStatus.OUT_OF_RANGE,
  Unimplemented: GrpcStatus.UNIMPLEMENTED,
  Internal: GrpcStatus.INTERNAL,
  Unavailable: GrpcStatus.UNAVAILABLE,
  DataLoss: GrpcStatus.DATA_LOSS,
  Unauthenticated: GrpcStatus.UNAUTHENTICATED,
};

function kindOfGrpcCode(code: number): EngineErrorKind {
  switch (code) {
    case GrpcStatus.INVALID_ARGUMENT:
    case GrpcStatus.OUT_OF_RANGE:
      return "invalid_argument";
    case GrpcStatus.FAILED_PRECONDITION:
      return "failed_precondition";
    case GrpcStatus.NOT_FOUND:
      return "not_found";
    case GrpcStatus.UNAVAILABLE:
    case GrpcStatus.DEADLINE_EXCEEDED:
    case GrpcStatus.CANCELLED:
    case GrpcStatus.UNAUTHENTICATED:
    case GrpcStatus.PERMISSION_DENIED:
    case GrpcStatus.RESOURCE_EXHAUSTED:
      return "unavailable";
    default:
      return "internal";
  }
}

/**
 * Errors come in two shapes: grpc-js ServiceErrors (remote, and embedded
 * streaming) with a numeric code, and FFI errors from the embedded library
 * whose message reads "rpc error: code = InvalidArgument desc = …".
 */
export function toEngineError(err: unknown): EngineError {
  if (err instanceof EngineError) return err;
  if (typeof err === "object" && err !== null && "code" in err && typeof err.code === "number") {
    const details = "details" in err && typeof err.details === "string" ? err.details : String(err);
    return new EngineError(kindOfGrpcCode(err.code), details, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  const match = /code = (\w+) desc = (.*)$/s.exec(message);
  if (match) {
    const code = GO_CODE_NAMES[match[1] ?? ""];
    return new EngineError(code === undefined ? "internal" : kindOfGrpcCode(code), match[2] ?? message, { cause: err });
  }
  return new EngineError("internal", message, { cause: err });
}
