import { EventEmitter, on } from "node:events";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { Health} from "../gen/health/v1/health_pb.js";
import { HealthCheckResponse_ServingStatus as Status } from "../gen/health/v1/health_pb.js";

/**
 * Serving status per service name ("" is the whole server). Everything
 * starts NOT_SERVING and flips to SERVING once storage and the engine are
 * ready; it flips back when the server begins to shut down, and while a
 * dependency is down (the database unreachable: setDependency).
 */
export class HealthStatus {
  readonly #status = new Map<string, Status>();
  readonly #changes = new EventEmitter();
  #ready = false;
  readonly #down = new Set<string>();

  constructor(services: readonly string[]) {
    for (const name of ["", ...services]) this.#status.set(name, Status.NOT_SERVING);
    this.#changes.setMaxListeners(0);
  }

  /** Started (true) or stopping (false); SERVING needs this and every dependency up. */
  setAll(serving: boolean): void {
    this.#ready = serving;
    this.#apply();
  }

  /** A dependency (e.g. "database") went down or came back. */
  setDependency(name: string, up: boolean): void {
    if (up) this.#down.delete(name);
    else this.#down.add(name);
    this.#apply();
  }

  /** Dependencies currently down. */
  get down(): readonly string[] {
    return [...this.#down];
  }

  #apply(): void {
    const serving = this.#ready && this.#down.size === 0;
    for (const name of this.#status.keys()) this.#set(name, serving ? Status.SERVING : Status.NOT_SERVING);
  }

  get(service: string): Status | undefined {
    return this.#status.get(service);
  }

  entries(): [string, Status][] {
    return [...this.#status];
  }

  #set(name: string, status: Status): void {
    if (this.#status.get(name) === status) return;
    this.#status.set(name, status);
    this.#changes.emit("change", name);
  }

  /** Yields on every change until the signal aborts. */
  changes(signal: AbortSignal): AsyncIterable<unknown[]> {
    return on(this.#changes, "change", { signal });
  }
}

export function healthService(status: HealthStatus): ServiceImpl<typeof Health> {
  return {
    check(req) {
      const current = status.get(req.service);
      if (current === undefined) throw new ConnectError(`unknown service ${req.service}`, Code.NotFound);
      return { status: current };
    },
    async *watch(req, ctx) {
      let last = status.get(req.service) ?? Status.SERVICE_UNKNOWN;
      yield { status: last };
      try {
        for await (const _ of status.changes(ctx.signal)) {
          const next = status.get(req.service) ?? Status.SERVICE_UNKNOWN;
          if (next !== last) {
            last = next;
            yield { status: next };
          }
        }
      } catch (err) {
        if (!ctx.signal.aborted) throw err;
      }
    },
    list() {
      return { statuses: Object.fromEntries(status.entries().map(([name, s]) => [name, { status: s }])) };
    },
  };
}
