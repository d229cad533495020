/**
 * The messages between the threaded embedded engine (threaded.ts, main
 * thread) and its worker (embedded-worker.js). Requests and responses are
 * SpiceDB v1 messages in protobuf binary, encoded and decoded on the main
 * thread: the worker passes them unchanged to the embedded library's FFI
 * calls or to the instance's gRPC socket, and knows nothing of sharegraph.
 *
 * Types only: the worker is plain JavaScript and imports these for its
 * JSDoc checks, never at run time.
 */

/** Calls answered by one response (synchronous FFI calls in the worker). */
export type UnaryMethod =
  | "readSchema"
  | "writeSchema"
  | "checkPermission"
  | "checkBulkPermissions"
  | "writeRelationships"
  | "deleteRelationships";

/** Calls answered by a stream (the instance's private gRPC socket, read by the worker). */
export type StreamMethod = "lookupResources" | "lookupSubjects" | "readRelationships";

/**
 * A failure as it crosses the thread boundary. code: a gRPC status number
 * (streaming calls); without it, message is the FFI's "rpc error: code = X
 * desc = …" text. toEngineError maps both, as it does grpc-js errors.
 */
export interface WireError {
  readonly message: string;
  readonly code?: number;
  readonly details?: string;
}

export interface WorkerOptions {
  /** Messages per batch of a streamed answer. */
  readonly batchSize: number;
  /** Batches sent ahead of the consumer before the worker pauses the stream. */
  readonly window: number;
}

export type ToWorker =
  | { readonly type: "unary"; readonly id: number; readonly method: UnaryMethod; readonly request: Uint8Array }
  | {
      readonly type: "stream";
      readonly id: number;
      readonly method: StreamMethod;
      readonly request: Uint8Array;
      /** Epoch ms. */
      readonly deadline: number;
    }
  /** The consumer took one batch of stream id off its queue: one more may be sent. */
  | { readonly type: "ack"; readonly id: number }
  /** Stop stream id; nothing more is sent for it. */
  | { readonly type: "cancel"; readonly id: number }
  /** Dispose of the SpiceDB instance and end the thread. */
  | { readonly type: "close" };

export type FromWorker =
  | { readonly type: "ready" }
  | { readonly type: "start_failed"; readonly error: WireError }
  | { readonly type: "response"; readonly id: number; readonly response: Uint8Array }
  | { readonly type: "batch"; readonly id: number; readonly messages: readonly Uint8Array[] }
  | { readonly type: "end"; readonly id: number }
  | { readonly type: "error"; readonly id: number; readonly error: WireError }
  | { readonly type: "closed" };
