import { AsyncLocalStorage } from "node:async_hooks";

/**
 * The abort signal of the call being served, for code far below the
 * handlers (outbox waits, taking a database connection) that must stop
 * waiting once nobody can use the answer. src/api/deadline.ts runs every
 * call inside withCallSignal(); outside a call (start-up, background loops)
 * there is none and nothing is cut short.
 *
 * An AsyncLocalStorage rather than a parameter threaded through every
 * domain method: the signal matters to a few waits at the bottom, and the
 * layers in between need not know about calls.
 */
const storage = new AsyncLocalStorage<AbortSignal>();

export function withCallSignal<T>(signal: AbortSignal, fn: () => T): T {
  return storage.run(signal, fn);
}

export function callSignal(): AbortSignal | undefined {
  return storage.getStore();
}

/**
 * Runs fn outside any call: for work that outlives the call that happened to
 * start it and is shared with others (an outbox drain other calls join, a
 * timer), which must not be cut short by that one call's deadline.
 */
export function outsideCall<T>(fn: () => T): T {
  return storage.exit(fn);
}

/**
 * Why a call was cut short: its deadline passed (the caller's grpc-timeout /
 * connect-timeout-ms, or the server's CALL_TIMEOUT_MS), or it was cancelled
 * (the caller went away, or the server is shutting down).
 */
export class CallAbortedError extends Error {
  constructor(
    readonly reason: "deadline" | "cancelled",
    message = reason === "deadline" ? "the call's deadline passed before it completed" : "the call was cancelled",
  ) {
    super(message);
    this.name = "CallAbortedError";
  }
}

/** The reason to throw for an aborted signal, always a CallAbortedError. */
export function abortReason(signal: AbortSignal): CallAbortedError {
  const reason: unknown = signal.reason;
  return reason instanceof CallAbortedError ? reason : new CallAbortedError("cancelled");
}

/** True when the signal aborted because the call's deadline passed. */
export function deadlinePassed(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true && abortReason(signal).reason === "deadline";
}

/** Settles like `promise`, or rejects with the abort reason as soon as the signal aborts for a deadline (other aborts are ignored). */
export function untilDeadline<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (deadlinePassed(signal)) {
    promise.catch(() => {});
    return Promise.reject(abortReason(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      if (!deadlinePassed(signal)) return;
      signal.removeEventListener("abort", onAbort);
      reject(abortReason(signal));
    };
    signal.addEventListener("abort", onAbort);
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

/** Settles like `promise`, or rejects with the abort reason as soon as the signal aborts. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(abortReason(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}
