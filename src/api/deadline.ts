import { setMaxListeners } from "node:events";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { abortable, CallAbortedError, withCallSignal } from "../call-signal.js";

export interface DeadlineOptions {
  /** The longest any sharegraph call may run (CALL_TIMEOUT_MS), whatever deadline the caller sent, or none. */
  readonly maxCallMs: number;
}

/** Health and reflection: Health/Watch is a stream meant to stay open; their callers' own deadlines still apply. */
const UNCAPPED = /^grpc\./;

/**
 * Honours each call's deadline end to end (issue 7).
 *
 * connect-node turns the caller's deadline (`grpc-timeout`,
 * `connect-timeout-ms`) into an abort of the call's signal, but answers only
 * when the handler returns. Here:
 *  - the call answers DEADLINE_EXCEEDED as soon as its deadline passes — the
 *    caller's, or CALL_TIMEOUT_MS when that comes first — even if the work
 *    underneath (a database in a partition) has not returned;
 *  - the work underneath sees the call's signal (src/call-signal.ts): outbox
 *    waits end, and no database connection is taken for a call that is over,
 *    so abandoned calls do not pile up;
 *  - a call cancelled otherwise (the caller went away, the server shuts
 *    down) is not answered early here: its waits end and it answers for
 *    itself (a write that committed still says so).
 * Streams are bounded as a whole, each message read inside the call's scope.
 */
export function deadlineInterceptor(options: DeadlineOptions): Interceptor {
  return (next) => async (req) => {
    const controller = new AbortController();
    // Every wait and connection taken by the call listens while it lasts: many at once is by design.
    setMaxListeners(0, controller.signal);
    const cap = UNCAPPED.test(req.service.typeName)
      ? undefined
      : setTimeout(
          () => controller.abort(new CallAbortedError("deadline", `the call ran longer than the server allows (CALL_TIMEOUT_MS = ${options.maxCallMs} ms)`)),
          options.maxCallMs,
        );
    const onAbort = () => controller.abort(classify(req.signal.reason));
    if (req.signal.aborted) onAbort();
    else req.signal.addEventListener("abort", onAbort, { once: true });
    const signal = controller.signal;
    const done = () => {
      clearTimeout(cap);
      req.signal.removeEventListener("abort", onAbort);
    };

    let res;
    try {
      res = await withCallSignal(signal, () => answerByDeadline(next(req), signal));
    } catch (err) {
      done();
      throw err;
    }
    if (!res.stream) {
      done();
      return res;
    }
    return { ...res, message: bounded(res.message, signal, done) };
  };
}

function classify(reason: unknown): CallAbortedError {
  if (reason instanceof CallAbortedError) return reason;
  if (reason instanceof ConnectError && reason.code === Code.DeadlineExceeded) return new CallAbortedError("deadline");
  return new CallAbortedError("cancelled");
}

/** Rejects with DEADLINE_EXCEEDED once the signal aborts for a deadline; any other abort is left to the handler. */
function answerByDeadline<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return abortable(promise, signal).catch((err: unknown) => {
    if (err instanceof CallAbortedError) {
      if (err.reason === "deadline") throw new ConnectError(err.message, Code.DeadlineExceeded);
      return promise;
    }
    throw err;
  });
}

async function* bounded<T>(messages: AsyncIterable<T>, signal: AbortSignal, done: () => void): AsyncGenerator<T> {
  const it = messages[Symbol.asyncIterator]();
  try {
    for (;;) {
      const step = await withCallSignal(signal, () => answerByDeadline(it.next(), signal));
      if (step.done) return;
      yield step.value;
    }
  } finally {
    done();
    // Not awaited: the source may be stuck where the deadline found it.
    void it.return?.()?.catch(() => {});
  }
}
