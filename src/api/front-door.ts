import { randomUUID } from "node:crypto";
import type http from "node:http";
import http2 from "node:http2";
import { fromBinary, fromJsonString, type DescMessage, type DescMethod, type MessageShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createConnectRouter,
  createContextKey,
  createContextValues,
  createServiceImplSpec,
  type ConnectRouter,
  type ContextValues,
  type Interceptor,
} from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import { createAsyncIterable, encodeEnvelope, type UniversalHandler, type UniversalServerRequest } from "@connectrpc/connect/protocol";
import * as connectWire from "@connectrpc/connect/protocol-connect";
import * as grpcWire from "@connectrpc/connect/protocol-grpc";
import * as grpcWebWire from "@connectrpc/connect/protocol-grpc-web";
import type { Logger } from "../logger.js";
import { callerKey, type ApiKeys } from "./auth.js";
import { serveGrpcUnary, type GrpcUnaryOptions, type UnarySpec } from "./grpc-unary.js";
import { recordCall, type RpcMetrics } from "./observe.js";

/*
 * The front door: every HTTP request on the port passes here before Connect.
 * Connect itself reads and decodes a request body before any interceptor
 * runs, so a caller without a key could make the server buffer and
 * decompress up to 4 GiB, and undecodable bytes ended as INTERNAL with no
 * log line. Here, for each RPC request:
 *
 * 1. refuse at once (before reading a byte of the body): while shutting
 *    down (UNAVAILABLE), without a valid key for the RPC (UNAUTHENTICATED /
 *    PERMISSION_DENIED, by requiredScope in auth.ts), a declared length
 *    over the limit (RESOURCE_EXHAUSTED), an unsupported compression
 *    (UNIMPLEMENTED) or a malformed timeout header (INVALID_ARGUMENT);
 * 2. read the one request message of unary and server-streaming RPCs within
 *    the read timeout and the size limit (compressed and decompressed;
 *    decompression stops at the limit), and decode it: anything a caller can
 *    get wrong here is INVALID_ARGUMENT, RESOURCE_EXHAUSTED or
 *    DEADLINE_EXCEEDED;
 * 3. hand Connect the decoded message (uncompressed), or — for a refusal — a
 *    stand-in empty message, with the refusal kept in the call's context
 *    values: the second interceptor throws it, after the first (observe) has
 *    started the call's log line. So every refusal reaches the caller in its
 *    own protocol (gRPC trailers, gRPC-Web, Connect JSON with its HTTP
 *    status), encoded by Connect, logged and counted like any call.
 * 4. a gRPC unary call (HTTP/2, protobuf) that was not refused is answered
 *    here instead, through the same interceptors, without Connect's generic
 *    handler pipeline (grpc-unary.ts).
 *
 * It also keeps the calls in flight for shutdown: drain() refuses new calls
 * and asks HTTP/1.1 clients to close; endAll() ends what is left with a
 * status.
 */

export interface FrontDoorLimits {
  /** Largest request message, after decompression. */
  readonly maxRequestBytes: number;
  /** A request body must arrive within this. */
  readonly readTimeoutMs: number;
  /** A request stream (client-streaming RPCs: reflection) with no activity for this is closed. */
  readonly idleTimeoutMs: number;
}

export interface FrontDoorOptions {
  readonly routes: (router: ConnectRouter) => void;
  /** Runs first: it sees every call, refusals included (the log line and metrics). */
  readonly observe: Interceptor;
  /** Run after the refusal check, in order (authentication, validation …). */
  readonly interceptors: readonly Interceptor[];
  readonly keys: ApiKeys;
  readonly limits: FrontDoorLimits;
  readonly shutdownSignal: AbortSignal;
  readonly log: Logger;
  readonly metrics: RpcMetrics;
  /** Non-RPC paths (metrics, health probe, 404). */
  readonly fallback: (req: NodeRequest, res: NodeResponse) => void;
}

export type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

/** How a request is framed and encoded, from its content type. */
interface Wire {
  readonly protocol: "grpc" | "grpc-web" | "connect";
  /** Messages in 5-byte-prefixed envelopes (all but Connect unary). */
  readonly enveloped: boolean;
  readonly binary: boolean;
  readonly encodingHeader: string;
  readonly timeoutHeader: string;
}

interface Call {
  readonly req: NodeRequest;
  readonly res: NodeResponse;
  readonly wire: Wire | undefined;
}

/** A refusal decided before Connect read the request; thrown by the interceptor after observe. */
const refusalKey = createContextKey<ConnectError | undefined>(undefined, { description: "refusal decided by the front door" });

function refusalInterceptor(): Interceptor {
  return (next) => (req) => {
    const refusal = req.contextValues.get(refusalKey);
    if (refusal) throw refusal;
    return next(req);
  };
}

const COMPRESSIONS = { gzip: compressionGzip, br: compressionBrotli } as const;

export class FrontDoor {
  readonly #options: FrontDoorOptions;
  readonly #paths = new Map<string, UniversalHandler>();
  /** Unary methods by request path, for gRPC calls served past Connect's pipeline (grpc-unary.ts). */
  readonly #unary = new Map<string, UnarySpec>();
  readonly #grpcUnary: GrpcUnaryOptions;
  #grpcUnaryCalls = 0;
  readonly #calls = new Set<Call>();
  #idle: Array<() => void> = [];
  #draining = false;

  constructor(options: FrontDoorOptions) {
    this.#options = options;
    const interceptors = [options.observe, refusalInterceptor(), ...options.interceptors];
    const router = createConnectRouter({
      interceptors,
      // Connect checks this again per message of request streams; single messages are checked here first.
      readMaxBytes: options.limits.maxRequestBytes,
      acceptCompression: [compressionGzip, compressionBrotli],
      shutdownSignal: options.shutdownSignal,
      // Connect JSON answers show every field, so a denial reads {"allowed": false, …}, not {}.
      jsonOptions: { alwaysEmitImplicit: true },
    });
    this.#grpcUnary = { interceptors, shutdownSignal: options.shutdownSignal, acceptCompression: [compressionGzip, compressionBrotli], compressMinBytes: 1024 };
    // Every service's implementation is also kept, for the unary gRPC path.
    const service = router.service.bind(router);
    router.service = ((desc, impl, opts) => {
      for (const spec of Object.values(createServiceImplSpec(desc, impl).methods)) {
        if (spec.kind === "unary") this.#unary.set(`/${desc.typeName}/${spec.method.name}`, spec);
      }
      return service(desc, impl, opts);
    }) as typeof router.service;
    options.routes(router);
    for (const handler of router.handlers) this.#paths.set(handler.requestPath, handler);
  }

  /** gRPC unary calls answered past Connect's handlers (grpc-unary.ts) since start. */
  get grpcUnaryCalls(): number {
    return this.#grpcUnaryCalls;
  }

  /** Calls being served. */
  get inFlight(): number {
    return this.#calls.size;
  }

  /** The request listener for the HTTP/1.1 and HTTP/2 servers. */
  readonly handler = (req: NodeRequest, res: NodeResponse): void => {
    const handler = this.#paths.get((req.url ?? "").split("?", 1)[0] ?? "");
    if (!handler) {
      this.#options.fallback(req, res);
      return;
    }
    // Connect builds a URL from the authority and throws without one (an HTTP/1.0 request may omit Host); it is not used otherwise.
    if (!("authority" in req) && !req.headers.host) req.headers.host = "unknown";
    const call: Call = { req, res, wire: req.method === "POST" ? wireOf(req.headers["content-type"], handler.method) : undefined };
    this.#calls.add(call);
    res.once("close", () => {
      this.#calls.delete(call);
      if (this.#calls.size === 0) for (const wake of this.#idle.splice(0)) wake();
    });
    if (this.#draining) askToClose(call);
    this.#serve(call, handler).catch((err: unknown) => {
      // The response could not be written (the client went away, or endAll() ended it first).
      this.#options.log.debug({ err, method: `${handler.service.typeName}/${handler.method.name}` }, "response not written");
      if (!res.headersSent) endWithStatus(call, new ConnectError("internal error; it has been logged", Code.Internal));
    });
  };

  /** From now on: new calls are refused with UNAVAILABLE, HTTP/1.1 responses carry `Connection: close`. */
  drain(): void {
    this.#draining = true;
    for (const call of this.#calls) askToClose(call);
  }

  /** Resolves when no call is in flight. */
  whenIdle(): Promise<void> {
    if (this.#calls.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Ends every call still in flight with `error`, in its protocol where the response allows it. */
  endAll(error: ConnectError): void {
    for (const call of this.#calls) endWithStatus(call, error);
  }

  async #serve(call: Call, handler: UniversalHandler): Promise<void> {
    const { req, res, wire } = call;
    const method = handler.method;
    const started = performance.now();
    if (!wire) {
      // Connect answers 415 (content type) or 405 (HTTP method) without interceptors; count it here.
      res.once("finish", () => {
        const status = res.statusCode;
        const error = status >= 400 ? new ConnectError(`HTTP ${status}: not a gRPC, gRPC-Web or Connect request for this RPC`, Code.InvalidArgument) : undefined;
        const name = `${method.parent.typeName}/${method.name}`;
        const requestId = header(req, "x-request-id") || randomUUID();
        recordCall(this.#options.log.child({ requestId, method: name }), this.#options.metrics, { method: name, started, error, httpStatus: status });
      });
      askToClose(call, { unreadBody: true, graceMs: this.#options.limits.readTimeoutMs });
      const uRes = await handler(universalRequestFromNodeRequest(req, res, undefined, createContextValues()));
      await universalResponseToNodeResponse(uRes, res);
      return;
    }

    const values = createContextValues();
    let refusal = this.#admit(req, wire, method, values);
    let decoded: Decoded | undefined;
    if (!refusal && (method.methodKind === "unary" || method.methodKind === "server_streaming")) {
      try {
        const maxRaw = this.#options.limits.maxRequestBytes + (wire.enveloped ? 5 : 0);
        const raw = await readBody(req, maxRaw, this.#options.limits.readTimeoutMs);
        decoded = await decode(wire, header(req, wire.encodingHeader), raw, method, this.#options.limits.maxRequestBytes);
      } catch (err) {
        refusal = ConnectError.from(err);
      }
    }
    const unary = wire.protocol === "grpc" ? this.#unary.get(handler.requestPath) : undefined;
    if (unary && decoded?.message && "stream" in req) {
      this.#grpcUnaryCalls++;
      await serveGrpcUnary(req, res as http2.Http2ServerResponse, unary, decoded.message, values, this.#grpcUnary);
      return;
    }
    let uReq = universalRequestFromNodeRequest(req, res, undefined, values);
    if (refusal) {
      values.set(refusalKey, refusal);
      // A stand-in message that Connect decodes without fail; the refusal is thrown by the interceptor after observe.
      uReq = withMessage(uReq, wire, wire.binary ? new Uint8Array(0) : new TextEncoder().encode("{}"), { dropTimeout: true });
      askToClose(call, { unreadBody: !req.complete, graceMs: this.#options.limits.readTimeoutMs });
    } else if (decoded) {
      uReq = withMessage(uReq, wire, decoded.payload);
    } else {
      // Request streams (reflection) are read by Connect message by message; close them when they go quiet.
      req.setTimeout(this.#options.limits.idleTimeoutMs, () => abandon(call));
    }
    const uRes = await handler(uReq);
    await universalResponseToNodeResponse(uRes, res);
  }

  /** Step 1: what can be refused from the headers alone. */
  #admit(req: NodeRequest, wire: Wire, method: DescMethod, values: ContextValues): ConnectError | undefined {
    if (this.#draining) return new ConnectError("the server is shutting down; retry (another instance will answer)", Code.Unavailable);
    try {
      // Known from here on, so that the log line of a refusal below names the key.
      values.set(callerKey, this.#options.keys.authorize(method.parent.typeName, method.name, header(req, "authorization")));
    } catch (err) {
      return ConnectError.from(err);
    }
    const max = this.#options.limits.maxRequestBytes;
    const length = Number(header(req, "content-length") ?? NaN);
    if (Number.isFinite(length) && length > max + (wire.enveloped ? 5 : 0)) return tooLarge(max, `the request declares ${length} bytes`);
    const encoding = header(req, wire.encodingHeader)?.toLowerCase();
    if (encoding && encoding !== "identity" && !(encoding in COMPRESSIONS)) {
      return new ConnectError(`unsupported compression ${JSON.stringify(encoding)}: this server accepts gzip, br or identity`, Code.Unimplemented);
    }
    const timeout = header(req, wire.timeoutHeader);
    if (timeout !== undefined) {
      const parse = wire.protocol === "connect" ? connectWire.parseTimeout : grpcWire.parseTimeout;
      const parsed = parse(timeout, Number.MAX_SAFE_INTEGER);
      if (parsed.error) return new ConnectError(`${wire.timeoutHeader}: ${parsed.error.rawMessage}`, Code.InvalidArgument);
    }
    return undefined;
  }
}

function header(req: NodeRequest, name: string): string | undefined {
  const value = req.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

function tooLarge(max: number, what: string): ConnectError {
  return new ConnectError(`${what}; requests are limited to ${max} bytes (MAX_REQUEST_BYTES), after decompression`, Code.ResourceExhausted);
}

/** The wire format of a request, or undefined when Connect would not serve it (it then answers 415 itself). */
function wireOf(header: string | undefined, method: DescMethod): Wire | undefined {
  const contentType = header ?? null;
  const grpc = grpcWire.parseContentType(contentType);
  if (grpc) return { protocol: "grpc", enveloped: true, binary: grpc.binary, encodingHeader: "grpc-encoding", timeoutHeader: "grpc-timeout" };
  const grpcWeb = grpcWebWire.parseContentType(contentType);
  if (grpcWeb && !grpcWeb.text) return { protocol: "grpc-web", enveloped: true, binary: grpcWeb.binary, encodingHeader: "grpc-encoding", timeoutHeader: "grpc-timeout" };
  const connect = connectWire.parseContentType(contentType);
  if (connect && connect.stream === (method.methodKind !== "unary")) {
    return {
      protocol: "connect",
      enveloped: connect.stream,
      binary: connect.binary,
      encodingHeader: connect.stream ? "connect-content-encoding" : "content-encoding",
      timeoutHeader: "connect-timeout-ms",
    };
  }
  return undefined;
}

/** Step 2: the whole body, at most maxBytes, within timeoutMs. */
function readBody(req: NodeRequest, maxBytes: number, timeoutMs: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err: ConnectError | undefined) => {
      clearTimeout(timer);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onGone);
      req.off("close", onGone);
      if (err) {
        req.pause();
        reject(err);
      } else {
        resolve(Buffer.concat(chunks, size));
      }
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) done(tooLarge(maxBytes, "the request is larger"));
      else chunks.push(chunk);
    };
    const onEnd = () => done(undefined);
    const onGone = () => done(new ConnectError("the client went away before the request was complete", Code.Canceled));
    const timer = setTimeout(
      () => done(new ConnectError(`the request was not received within ${timeoutMs} ms (REQUEST_READ_TIMEOUT_MS)`, Code.DeadlineExceeded)),
      timeoutMs,
    );
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", onGone);
    req.once("close", onGone);
  });
}

const invalid = (problem: string) => new ConnectError(problem, Code.InvalidArgument);

interface Decoded {
  /** The message's bytes, uncompressed. */
  readonly payload: Uint8Array;
  /** The message itself, when binary (JSON is decoded again by Connect, with its options). */
  readonly message?: MessageShape<DescMessage>;
}

/** Step 2: the one message of the body, uncompressed, checked to decode as the method's input. */
async function decode(wire: Wire, encodingHeader: string | undefined, raw: Uint8Array, method: DescMethod, maxBytes: number): Promise<Decoded> {
  let payload = raw;
  let compressed = false;
  if (wire.enveloped) {
    if (raw.length === 0) throw invalid("the request has no message; this RPC takes exactly one");
    if (raw.length < 5) throw invalid("the request ends inside a message header (protocol error)");
    const flags = raw[0]!;
    const length = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).readUInt32BE(1);
    if (flags & ~1) throw invalid(`the request's message has unknown flags 0x${flags.toString(16)} (protocol error)`);
    if (raw.length < 5 + length) throw invalid(`the request ends after ${raw.length - 5} of the ${length} bytes its message declares`);
    if (raw.length > 5 + length) throw invalid("the request has more than one message; this RPC takes exactly one");
    payload = raw.subarray(5);
    compressed = (flags & 1) === 1;
  }
  const encoding = encodingHeader?.toLowerCase();
  if (!wire.enveloped) compressed = encoding !== undefined && encoding !== "identity";
  if (compressed) {
    const compression = encoding && encoding in COMPRESSIONS ? COMPRESSIONS[encoding as keyof typeof COMPRESSIONS] : undefined;
    if (!compression) throw invalid(`the request's message is flagged compressed but ${wire.encodingHeader} names no supported compression`);
    try {
      payload = await compression.decompress(payload, maxBytes);
    } catch (err) {
      if (ConnectError.from(err).code === Code.ResourceExhausted) throw tooLarge(maxBytes, "the request is larger");
      throw invalid(`the request is not valid ${encoding} data`);
    }
  }
  const type = method.input.typeName;
  try {
    if (wire.binary) return { payload, message: fromBinary(method.input, payload) };
    fromJsonString(method.input, new TextDecoder().decode(payload), { ignoreUnknownFields: true });
    return { payload };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw invalid(`the request is not a valid ${type} in ${wire.binary ? "the protobuf binary format" : "JSON"}: ${why}`);
  }
}

/** The request as Connect is to see it: this one uncompressed message, nothing left to negotiate. */
function withMessage(uReq: UniversalServerRequest, wire: Wire, payload: Uint8Array, options: { dropTimeout?: boolean } = {}): UniversalServerRequest {
  const header = new Headers(uReq.header);
  header.delete(wire.encodingHeader);
  header.delete("content-length");
  if (options.dropTimeout) header.delete(wire.timeoutHeader);
  return { ...uReq, header, body: createAsyncIterable([wire.enveloped ? encodeEnvelope(0, payload) : payload]) };
}

/**
 * A response that will not read (all of) the request body, or that is sent
 * while shutting down. HTTP/1.1 closes the connection after it (unless the
 * rest of a body within 1 MiB can simply be skipped, which keeps the
 * connection). HTTP/2 discards what still comes and, if the request has not
 * ended after `graceMs` (by then the response and its trailers are long
 * out), resets the stream with NO_ERROR (RFC 9113 §8.1): a stalled request
 * never holds a stream.
 */
function askToClose(call: Call, options: { unreadBody?: boolean; graceMs?: number } = {}): void {
  const { req, res } = call;
  if ("stream" in req) {
    if (!options.unreadBody) return;
    const stream = req.stream;
    req.resume();
    const timer = setTimeout(() => {
      if (!req.complete && !stream.closed && !stream.destroyed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
    }, options.graceMs ?? 1_000);
    timer.unref();
    stream.once("close", () => clearTimeout(timer));
    return;
  }
  if (res.headersSent) return;
  if (options.unreadBody) {
    const length = Number(req.headers["content-length"] ?? NaN);
    // Node skips the rest of a body it knows the end of; a large or chunked one closes the connection.
    if (Number.isFinite(length) && length <= 1024 * 1024) return;
  }
  res.setHeader("connection", "close");
}

/** A request stream gone quiet: cancel it (HTTP/2) or drop the connection (HTTP/1.1). */
function abandon(call: Call): void {
  const { req } = call;
  if ("stream" in req) req.stream.close(http2.constants.NGHTTP2_CANCEL);
  else req.socket.destroy();
}

/** Shutdown, after the grace period: the status the caller would have got had the call been refused. */
function endWithStatus(call: Call, error: ConnectError): void {
  const { res, wire } = call;
  try {
    if (!wire || res.writableEnded) {
      destroy(call);
      return;
    }
    const grpcStatus = new Headers();
    grpcWire.setTrailerStatus(grpcStatus, error);
    const statusHeaders = Object.fromEntries(grpcStatus.entries());
    const endStream = () =>
      encodeEnvelope(connectWire.endStreamFlag, new TextEncoder().encode(JSON.stringify(connectWire.endStreamToJson(new Headers(), error, undefined))));
    if (!res.headersSent) {
      if (wire.protocol === "connect" && !wire.enveloped) {
        res.writeHead(connectWire.codeToHttpStatus(error.code), { "content-type": "application/json" });
        res.end(connectWire.errorToJsonBytes(error, {}));
      } else if (wire.protocol === "connect") {
        res.writeHead(200, { "content-type": wire.binary ? "application/connect+proto" : "application/connect+json" });
        res.end(endStream());
      } else {
        // gRPC and gRPC-Web: trailers-only, the status in the headers.
        const contentType = `application/${wire.protocol}+${wire.binary ? "proto" : "json"}`;
        res.writeHead(200, { "content-type": contentType, ...statusHeaders });
        res.end();
      }
      return;
    }
    if (wire.protocol === "grpc") {
      res.addTrailers(statusHeaders);
      res.end();
    } else if (wire.protocol === "grpc-web") {
      res.end(encodeEnvelope(grpcWebWire.trailerFlag, grpcWebWire.trailerSerialize(grpcStatus)));
    } else if (wire.enveloped) {
      res.end(endStream());
    } else {
      destroy(call);
    }
  } catch {
    destroy(call);
  }
}

function destroy(call: Call): void {
  const { req } = call;
  if ("stream" in req) req.stream.close(http2.constants.NGHTTP2_CANCEL);
  else req.socket.destroy();
}
