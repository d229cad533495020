import { randomUUID } from "node:crypto";
import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import { Counter, Histogram, type Registry } from "prom-client";
import type { Logger } from "../logger.js";
import { callerKey } from "./auth.js";
import { boundMessage, toConnectError } from "./errors.js";

/** Per-call values handlers may read (ctx.values.get(requestLogger)). */
export const requestLogger = createContextKey<Logger | undefined>(undefined, { description: "logger of this call" });

export interface RpcMetrics {
  readonly calls: Counter<"method" | "code">;
  readonly seconds: Histogram<"method">;
}

export function rpcMetrics(registry: Registry): RpcMetrics {
  return {
    calls: new Counter({ name: "sharegraph_rpc_total", help: "RPCs by method and result code", labelNames: ["method", "code"], registers: [registry] }),
    seconds: new Histogram({
      name: "sharegraph_rpc_duration_seconds",
      help: "RPC latency by method",
      labelNames: ["method"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
  };
}

/**
 * Outermost interceptor: one log line per call (method, code, duration),
 * metrics, and the translation of every failure into a ConnectError. A
 * thrown non-ConnectError would become INTERNAL without its cause being
 * logged by Connect, so it is logged here, and the caller sees no internals.
 */
export function observeInterceptor(log: Logger, metrics: RpcMetrics): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    const method = `${req.service.typeName}/${req.method.name}`;
    const requestId = req.header.get("x-request-id") || randomUUID();
    const callLog = log.child({ requestId, method });
    req.contextValues.set(requestLogger, callLog);
    const finish = (err: unknown) => {
      const connectErr = err === undefined ? undefined : boundMessage(mapError(err, callLog));
      recordCall(callLog, metrics, { method, started, error: connectErr, key: req.contextValues.get(callerKey)?.name });
      return connectErr;
    };
    let res;
    try {
      res = await next(req);
    } catch (err) {
      throw finish(err);
    }
    if (!res.stream) {
      finish(undefined);
      return res;
    }
    const messages = res.message;
    return {
      ...res,
      message: (async function* () {
        try {
          yield* messages;
        } catch (err) {
          throw finish(err);
        }
        finish(undefined);
      })(),
    };
  };
}

/**
 * The log line and metrics of one call. Also used by the front door for
 * requests Connect answers without running interceptors (wrong content
 * type or HTTP method): they count, with the code closest to what happened.
 */
export function recordCall(
  log: Logger,
  metrics: RpcMetrics,
  call: { method: string; started: number; error: ConnectError | undefined; key?: string | undefined; httpStatus?: number },
): void {
  const seconds = (performance.now() - call.started) / 1000;
  const code = call.error ? Code[call.error.code] : "OK";
  metrics.calls.inc({ method: call.method, code });
  metrics.seconds.observe({ method: call.method }, seconds);
  const fields = {
    code,
    ms: Math.round(seconds * 10_000) / 10,
    ...(call.key ? { key: call.key } : {}),
    ...(call.httpStatus ? { httpStatus: call.httpStatus } : {}),
    ...(call.error ? { error: call.error.rawMessage } : {}),
  };
  if (call.error?.code === Code.Internal) log.error(fields, "rpc");
  else log.info(fields, "rpc");
}

function mapError(err: unknown, log: Logger): ConnectError {
  const mapped = toConnectError(err);
  if (mapped) return mapped;
  log.error({ err }, "unexpected failure");
  return new ConnectError("internal error; it has been logged", Code.Internal);
}
