import { v1 } from "@authzed/authzed-node";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { Worker } from "node:worker_threads";
import { EngineError } from "./engine.js";
import { SpiceDbEngine, type ReadableCall, type SpiceDbCalls, type StreamCallOptions } from "./spicedb-engine.js";
import type { FromWorker, StreamMethod, ToWorker, UnaryMethod, WireError, WorkerOptions } from "./thread-protocol.js";

/** EmbeddedSpiceDB refuses more relationships than this per write (as embedded.ts). */
const EMBEDDED_MAX_UPDATES = 1000;
/** How long close() waits for the worker to dispose of SpiceDB before terminating it. */
const CLOSE_TIMEOUT_MS = 10_000;

export interface ThreadedEngineOptions {
  /**
   * Told once if the worker thread stops without close() (an uncaught error,
   * an exit). Every call in flight and every later call then fails with
   * "unavailable"; the memory datastore is gone with the thread.
   */
  readonly onCrash?: (error: Error) => void;
  /** Messages per batch of a streamed answer (default 256). */
  readonly batchSize?: number;
  /** Batches a stream may send ahead of its consumer (default 4). */
  readonly window?: number;
}

/** Encodes and decodes one v1 message type (protobuf-ts's MessageType, structurally). */
interface Codec<T> {
  toBinary(message: T): Uint8Array;
  fromBinary(bytes: Uint8Array): T;
}

/**
 * The embedded SpiceDB in a worker thread (embedded-worker.js), so its
 * synchronous FFI calls never block the server's event loop: a 1,000-item
 * bulk check that computes for seconds leaves /healthz and every other call
 * that needs no engine answering. Same engine otherwise: SpiceDbEngine over
 * calls that cross to the worker, errors mapped exactly as in-thread.
 *
 * Unary calls run in the order the worker takes them, one at a time (as
 * in-thread); streamed answers come in batches with a window, so a slow
 * consumer pauses SpiceDB rather than filling memory. Each call pays a hop
 * between threads (a wake-up of each thread): negligible on an idle
 * machine, a few milliseconds when the CPUs are oversubscribed.
 */
export class ThreadedEngine extends SpiceDbEngine {
  constructor(readonly thread: EngineThread) {
    super({ kind: "embedded", calls: thread, maxUpdatesPerWrite: EMBEDDED_MAX_UPDATES, close: () => thread.close() });
  }
}

/** Starts the worker and SpiceDB in it; resolves once it answers. */
export async function createThreadedEngine(options: ThreadedEngineOptions = {}): Promise<ThreadedEngine> {
  const thread = await EngineThread.start(options);
  return new ThreadedEngine(thread);
}

/** Node flags that load code (tsx's loader, test setup): the worker is plain JavaScript and needs none of it. */
const LOADER_FLAGS = new Set(["--import", "--require", "-r", "--loader", "--experimental-loader"]);

function workerExecArgv(): string[] {
  const out: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    const name = arg.split("=")[0] ?? arg;
    if (LOADER_FLAGS.has(name)) {
      if (!arg.includes("=")) i++; // its value is the next argument
      continue;
    }
    out.push(arg);
  }
  return out;
}

interface PendingUnary {
  resolve(bytes: Uint8Array): void;
  reject(err: unknown): void;
}

/** A failure from the worker as toEngineError reads it (the same shapes as in-thread). */
function fromWire(error: WireError): Error {
  const err = new Error(error.message) as Error & { code?: number; details?: string };
  if (error.code !== undefined) err.code = error.code;
  if (error.details !== undefined) err.details = error.details;
  return err;
}

/**
 * The main thread's side of the worker: numbered requests, their answers,
 * streams, and what happens when the thread stops. Implements the v1 calls
 * SpiceDbEngine makes.
 */
export class EngineThread implements SpiceDbCalls {
  readonly #worker: Worker;
  readonly #onCrash: ((error: Error) => void) | undefined;
  readonly #unary = new Map<number, PendingUnary>();
  readonly #streams = new Map<number, IncomingStream<unknown>>();
  readonly #exited: Promise<void>;
  #nextId = 1;
  /** Set once the thread can no longer answer: every call fails with it. */
  #failure: EngineError | undefined;
  #closing: Promise<void> | undefined;
  #lastError: Error | undefined;

  private constructor(worker: Worker, onCrash: ((error: Error) => void) | undefined) {
    this.#worker = worker;
    this.#onCrash = onCrash;
    worker.on("message", (message: FromWorker) => this.#receive(message));
    worker.on("error", (err) => {
      this.#lastError = err;
    });
    worker.on("messageerror", (err) => {
      this.#lastError = err;
    });
    this.#exited = new Promise((resolve) => {
      worker.once("exit", (code) => {
        this.#onExit(code);
        resolve();
      });
    });
    worker.unref();
  }

  static async start(options: ThreadedEngineOptions): Promise<EngineThread> {
    const workerOptions: WorkerOptions = { batchSize: options.batchSize ?? 256, window: options.window ?? 4 };
    const worker = new Worker(new URL("./embedded-worker.js", import.meta.url), {
      workerData: workerOptions,
      execArgv: workerExecArgv(),
    });
    const ready = new Promise<void>((resolve, reject) => {
      const onMessage = (message: FromWorker) => {
        if (message.type === "ready") done(undefined);
        else if (message.type === "start_failed") done(new EngineError("unavailable", `the embedded SpiceDB did not start: ${message.error.message}`));
      };
      const onError = (err: Error) => done(new EngineError("unavailable", `the embedded SpiceDB's thread failed to start: ${err.message}`, { cause: err }));
      const onExit = (code: number) => done(new EngineError("unavailable", `the embedded SpiceDB's thread exited (code ${code}) before it was ready`));
      const done = (err: EngineError | undefined) => {
        worker.off("message", onMessage);
        worker.off("error", onError);
        worker.off("exit", onExit);
        if (err) reject(err);
        else resolve();
      };
      worker.on("message", onMessage);
      worker.on("error", onError);
      worker.on("exit", onExit);
    });
    try {
      await ready;
    } catch (err) {
      await worker.terminate();
      throw err;
    }
    return new EngineThread(worker, options.onCrash);
  }

  /** Whether the thread still answers (false after a crash or close). */
  get alive(): boolean {
    return this.#failure === undefined;
  }

  /** Tests and diagnostics: the worker's thread id. */
  get threadId(): number {
    return this.#worker.threadId;
  }

  /**
   * Stops the worker as if it had crashed (tests of what a crash does:
   * in-flight calls fail with "unavailable", onCrash is told).
   */
  async kill(): Promise<void> {
    await this.#worker.terminate();
    await this.#exited;
  }

  readSchema = (r: v1.ReadSchemaRequest) => this.#call("readSchema", v1.ReadSchemaRequest, v1.ReadSchemaResponse, r);
  writeSchema = (r: v1.WriteSchemaRequest) => this.#call("writeSchema", v1.WriteSchemaRequest, v1.WriteSchemaResponse, r);
  checkPermission = (r: v1.CheckPermissionRequest) => this.#call("checkPermission", v1.CheckPermissionRequest, v1.CheckPermissionResponse, r);
  checkBulkPermissions = (r: v1.CheckBulkPermissionsRequest) =>
    this.#call("checkBulkPermissions", v1.CheckBulkPermissionsRequest, v1.CheckBulkPermissionsResponse, r);
  writeRelationships = (r: v1.WriteRelationshipsRequest) =>
    this.#call("writeRelationships", v1.WriteRelationshipsRequest, v1.WriteRelationshipsResponse, r);
  deleteRelationships = (r: v1.DeleteRelationshipsRequest) =>
    this.#call("deleteRelationships", v1.DeleteRelationshipsRequest, v1.DeleteRelationshipsResponse, r);
  lookupResources = (r: v1.LookupResourcesRequest, o: StreamCallOptions) =>
    this.#stream("lookupResources", v1.LookupResourcesRequest, v1.LookupResourcesResponse, r, o);
  lookupSubjects = (r: v1.LookupSubjectsRequest, o: StreamCallOptions) =>
    this.#stream("lookupSubjects", v1.LookupSubjectsRequest, v1.LookupSubjectsResponse, r, o);
  readRelationships = (r: v1.ReadRelationshipsRequest, o: StreamCallOptions) =>
    this.#stream("readRelationships", v1.ReadRelationshipsRequest, v1.ReadRelationshipsResponse, r, o);

  #call<Req, Res>(method: UnaryMethod, request: Codec<Req>, response: Codec<Res>, message: Req): Promise<Res> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    const bytes = request.toBinary(message);
    return new Promise<Uint8Array>((resolve, reject) => {
      this.#unary.set(id, { resolve, reject });
      this.#busy();
      this.#post({ type: "unary", id, method, request: bytes });
    }).then((answer) => response.fromBinary(answer));
  }

  #stream<Req, Res>(method: StreamMethod, request: Codec<Req>, response: Codec<Res>, message: Req, options: StreamCallOptions): ReadableCall<Res> {
    const id = this.#nextId++;
    const stream = new IncomingStream<Res>(response, {
      ack: () => this.#post({ type: "ack", id }),
      cancel: () => {
        if (this.#streams.delete(id)) {
          this.#post({ type: "cancel", id });
          this.#idle();
        }
      },
    });
    if (this.#failure) {
      stream.fail(this.#failure);
      return stream;
    }
    this.#streams.set(id, stream as IncomingStream<unknown>);
    this.#busy();
    this.#post({ type: "stream", id, method, request: request.toBinary(message), deadline: options.deadline });
    return stream;
  }

  #post(message: ToWorker): void {
    this.#worker.postMessage(message);
  }

  /** The worker keeps the process alive only while it owes an answer. */
  #busy(): void {
    this.#worker.ref();
  }

  #idle(): void {
    if (this.#unary.size === 0 && this.#streams.size === 0) this.#worker.unref();
  }

  #receive(message: FromWorker): void {
    switch (message.type) {
      case "response": {
        const pending = this.#unary.get(message.id);
        this.#unary.delete(message.id);
        this.#idle();
        pending?.resolve(message.response);
        break;
      }
      case "error": {
        const error = fromWire(message.error);
        const pending = this.#unary.get(message.id);
        if (pending) {
          this.#unary.delete(message.id);
          pending.reject(error);
        }
        const stream = this.#streams.get(message.id);
        if (stream) {
          this.#streams.delete(message.id);
          stream.fail(error, false);
        }
        this.#idle();
        break;
      }
      case "batch":
        this.#streams.get(message.id)?.push(message.messages);
        break;
      case "end": {
        const stream = this.#streams.get(message.id);
        this.#streams.delete(message.id);
        this.#idle();
        stream?.end();
        break;
      }
      case "ready":
      case "start_failed":
      case "closed":
        break;
    }
  }

  #failAll(error: EngineError): void {
    this.#failure ??= error;
    for (const pending of this.#unary.values()) pending.reject(error);
    for (const stream of this.#streams.values()) stream.fail(error);
    this.#unary.clear();
    this.#streams.clear();
  }

  #onExit(code: number): void {
    if (this.#closing) {
      this.#failAll(new EngineError("unavailable", "the permission engine is closed"));
      return;
    }
    const reason = this.#lastError ? `${this.#lastError.message}` : `exit code ${code}`;
    const error = new EngineError("unavailable", `the embedded SpiceDB's thread stopped (${reason}); it answers nothing until sharegraph restarts`, {
      ...(this.#lastError ? { cause: this.#lastError } : {}),
    });
    this.#failAll(error);
    this.#onCrash?.(error);
  }

  /** Disposes of SpiceDB in the worker and ends the thread; calls in flight fail with "unavailable". Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#failure) return;
      this.#failAll(new EngineError("unavailable", "the permission engine is closed"));
      this.#worker.ref();
      this.#post({ type: "close" });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), CLOSE_TIMEOUT_MS);
      });
      try {
        if ((await Promise.race([this.#exited, timeout])) === "timeout") await this.#worker.terminate();
      } finally {
        clearTimeout(timer);
      }
      await this.#exited;
    })();
    return this.#closing;
  }
}

/** grpc-js's error for a call the client cancelled (what the in-thread engine's streams throw). */
function cancelledError(): Error {
  return Object.assign(new Error("1 CANCELLED: Cancelled on client"), { code: GrpcStatus.CANCELLED, details: "Cancelled on client" });
}

/**
 * A streamed answer arriving from the worker in batches. Taking a batch off
 * the queue acknowledges it (the worker may send one more).
 */
class IncomingStream<T> implements ReadableCall<T> {
  readonly #codec: Codec<T>;
  readonly #link: { ack(): void; cancel(): void };
  readonly #batches: (readonly Uint8Array[])[] = [];
  #ended = false;
  #error: unknown;
  /** The stream was cut: not even the rest of the batch being read is delivered. */
  #cut = false;
  #wake: (() => void) | undefined;

  constructor(codec: Codec<T>, link: { ack(): void; cancel(): void }) {
    this.#codec = codec;
    this.#link = link;
  }

  push(messages: readonly Uint8Array[]): void {
    if (this.#ended) return;
    this.#batches.push(messages);
    this.#signal();
  }

  end(): void {
    this.#ended = true;
    this.#signal();
  }

  /**
   * Ends the stream with error. SpiceDB's own errors come after the messages
   * sent before them (as on a gRPC stream); a cancel, crash or close
   * (discard) cuts the stream where the consumer is.
   */
  fail(error: unknown, discard = true): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    if (discard) {
      this.#batches.length = 0;
      this.#cut = true;
    }
    this.#signal();
  }

  cancel(): void {
    if (this.#ended) return;
    this.fail(cancelledError());
    this.#link.cancel();
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const batch = this.#batches.shift();
      if (batch) {
        if (!this.#ended) this.#link.ack();
        for (const bytes of batch) {
          if (this.#cut) break;
          yield this.#codec.fromBinary(bytes);
        }
        continue;
      }
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }
}
