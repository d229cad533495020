import { createHash } from "node:crypto";
import type { PostgresCursor, PostgresPool, PostgresPoolClient, PostgresQueryResult } from "kysely";
import pg from "pg";
import { abortReason, CallAbortedError, callSignal, deadlinePassed, outsideCall, untilDeadline } from "../call-signal.js";
import { StoreUnavailableError } from "./errors.js";
import { COMMIT_WITH_MARK } from "./statement-marks.js";

export interface PoolSettings {
  readonly max: number;
  /** Connecting, or waiting for a pooled connection, gives up after this. */
  readonly connectTimeoutMs: number;
  /** Each statement: pg's client-side read timeout, and Postgres' statement_timeout. */
  readonly queryTimeoutMs: number;
  /** How long close() waits for connections in use before cutting them. */
  readonly closeTimeoutMs: number;
}

/**
 * node-postgres' pool as kysely uses it, made safe against a Postgres that
 * resets, refuses or black-holes connections (issue 7):
 *
 *  - Every client has an 'error' listener for its whole life. pg-pool
 *    listens only while a client is idle; a reset while a query runs would
 *    otherwise be an unhandled 'error' event that kills the process.
 *  - Bounded waits: connecting and waiting for a pooled connection
 *    (connectionTimeoutMillis), each statement (query_timeout on our side,
 *    statement_timeout on the server's), TCP keepalives both ways, so that
 *    Postgres also drops a partitioned gateway's session (and its locks).
 *  - A connection that failed (reset, or a statement that timed out: in a
 *    partition its answer never comes) fails every later statement at once
 *    (the transaction's ROLLBACK does not wait a second timeout) and is
 *    destroyed when released, never handed out again.
 *  - Failures surface as StoreUnavailableError (UNAVAILABLE to the caller).
 *  - Taking a connection stops when the current call's deadline passes
 *    (src/call-signal.ts), and fails at once while the reachability probe
 *    says Postgres is unreachable: calls do not queue up behind a partition.
 *  - end() is bounded: connections still in use after closeTimeoutMs are cut.
 */
export class GuardedPool implements PostgresPool {
  readonly #pool: pg.Pool;
  readonly #clients = new Set<pg.PoolClient>();
  readonly #wrappers = new WeakMap<pg.PoolClient, GuardedClient>();
  readonly #probe: ReachabilityProbe;

  constructor(
    config: pg.PoolConfig,
    private readonly settings: PoolSettings,
  ) {
    const connection = connectionConfig(config, settings);
    this.#pool = new pg.Pool({ ...connection, max: settings.max });
    // An idle client's connection error (a Postgres restart) must not crash the process.
    this.#pool.on("error", () => {});
    this.#pool.on("connect", (client) => {
      this.#clients.add(client);
      // Also while checked out: the query in flight fails on its own; this keeps the event handled.
      client.on("error", () => this.#probe.soon());
    });
    this.#pool.on("remove", (client) => this.#clients.delete(client));
    // The probe answers quickly or counts as a failure: `select 1` needs no more than a connection.
    this.#probe = new ReachabilityProbe({ ...connection, query_timeout: settings.connectTimeoutMs, statement_timeout: settings.connectTimeoutMs });
  }

  /** Watches reachability with a dedicated connection; the listener hears every change. */
  watch(intervalMs: number, listener: (reachable: boolean) => void): () => void {
    return this.#probe.watch(intervalMs, listener);
  }

  get reachable(): boolean {
    return this.#probe.reachable;
  }

  /**
   * Only a deadline stops taking a connection: a call cancelled otherwise
   * (its caller left, the server is shutting down) finishes its database
   * work, which is bounded anyway, rather than fail half-way.
   */
  async connect(): Promise<PostgresPoolClient> {
    const signal = callSignal();
    if (signal && deadlinePassed(signal)) throw abortReason(signal);
    if (!this.#probe.reachable) throw new StoreUnavailableError("the database is unreachable");
    const taking = this.#pool.connect();
    let client: pg.PoolClient;
    try {
      client = signal ? await untilDeadline(taking, signal) : await taking;
    } catch (err) {
      if (err instanceof CallAbortedError) {
        // Nobody waits for it any more: hand it straight back when it comes.
        taking.then((late) => late.release(), () => {});
        throw err;
      }
      this.#probe.soon();
      // The detail is for operators (start-up failures, logs); callers get a fixed message (src/api/errors.ts).
      throw new StoreUnavailableError(`the database is unreachable (${err instanceof Error ? err.message : String(err)})`, { cause: err });
    }
    let wrapper = this.#wrappers.get(client);
    if (!wrapper) {
      wrapper = new GuardedClient(client, () => this.#probe.soon());
      this.#wrappers.set(client, wrapper);
    }
    return wrapper;
  }

  /** Ends the pool; connections still in use after closeTimeoutMs are cut (their queries fail). */
  async end(): Promise<void> {
    this.#probe.stop();
    const ended = this.#pool.end().catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([ended.then(() => true), new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), this.settings.closeTimeoutMs)))]);
    clearTimeout(timer);
    if (inTime) return;
    // A client with a query in flight is destroyed at once by end(); one idle in a transaction says goodbye and is not waited for.
    for (const client of this.#clients) void client.end().catch(() => {});
  }
}

/** Connection settings shared by the pool and the probe. */
function connectionConfig(config: pg.PoolConfig, settings: PoolSettings): pg.ClientConfig {
  const keepalives = "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3";
  // Options given in the URL (e.g. ?options=-c search_path=…) are kept: an explicit `options` would replace them.
  const given = config.options ?? optionsOf(config.connectionString);
  return {
    ...config,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    query_timeout: settings.queryTimeoutMs,
    statement_timeout: settings.queryTimeoutMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    options: given ? `${given} ${keepalives}` : keepalives,
  };
}

function optionsOf(connectionString: string | undefined): string | undefined {
  if (!connectionString) return undefined;
  try {
    return new URL(connectionString).searchParams.get("options") ?? undefined;
  } catch {
    return undefined;
  }
}

/**
 * A statement whose text starts with the comment `prepared: <name>` is
 * prepared once per connection and executed by name after that: Postgres
 * parses and plans it once (and, after a few executions, keeps a generic
 * plan), where planning a large statement can cost more than running it
 * (src/store/content-view.ts). The name carries a digest of the text, so two
 * texts never share one.
 */
const PREPARE_MARK = /^\/\* prepared: ([a-z_]+) \*\//;
const preparedNames = new Map<string, string | undefined>();

function preparedName(text: string): string | undefined {
  if (!text.startsWith("/* prepared: ")) return undefined;
  let name = preparedNames.get(text);
  if (name === undefined && !preparedNames.has(text)) {
    const mark = PREPARE_MARK.exec(text)?.[1];
    name = mark ? `${mark}_${createHash("sha256").update(text).digest("hex").slice(0, 12)}` : undefined;
    // Texts are a handful of constants; the bound only guards against a caller building them.
    if (preparedNames.size < 64) preparedNames.set(text, name);
  }
  return name;
}

/*
 * A COMMIT_WITH_MARK statement is sent with its COMMIT in one simple-protocol
 * message (parameters written into the text as literals): Postgres runs both
 * without waiting for the gateway in between. The outbox append takes the
 * order lock, which its holder keeps until commit; with the COMMIT sent
 * separately, every write waited while the holder's answer went through the
 * gateway's event loop and its COMMIT came back (docs/PERFORMANCE.md, round
 * 11). kysely's own COMMIT that follows is answered here without reaching
 * Postgres.
 */

/** A parameter as a literal of the statement's text: integers and strings only (what COMMIT_WITH_MARK statements pass). */
function literal(client: pg.PoolClient, value: unknown): string {
  if (typeof value === "number" && Number.isSafeInteger(value)) return String(value);
  if (typeof value === "string") return client.escapeLiteral(value);
  throw new TypeError(`a ${typeof value} cannot be written into a statement's text`);
}

class GuardedClient implements PostgresPoolClient {
  #failure: StoreUnavailableError | undefined;
  /** The transaction was committed with its last statement (COMMIT_WITH_MARK). */
  #committed = false;

  constructor(
    private readonly client: pg.PoolClient,
    private readonly onFailure: () => void,
  ) {}

  query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>;
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>;
  query<R>(sqlOrCursor: string | PostgresCursor<R>, parameters?: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
    if (typeof sqlOrCursor !== "string") return this.client.query(sqlOrCursor as unknown as pg.Submittable) as unknown as PostgresCursor<R>;
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#committed) return this.#afterCommit<R>(sqlOrCursor);
    if (sqlOrCursor.startsWith(COMMIT_WITH_MARK)) return this.#thenCommit<R>(sqlOrCursor, parameters ?? []);
    const name = preparedName(sqlOrCursor);
    const query = name ? { name, text: sqlOrCursor, values: parameters as unknown[] } : { text: sqlOrCursor, values: parameters as unknown[] };
    return this.#guard(this.client.query(query) as unknown as Promise<PostgresQueryResult<R>>);
  }

  /** The statement and COMMIT in one message; its result is the statement's. */
  async #thenCommit<R>(text: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> {
    const inlined = text.replace(/\$(\d+)/g, (_, n: string) => literal(this.client, parameters[Number(n) - 1]));
    const results = (await this.#guard(this.client.query(`${inlined};\ncommit`) as unknown as Promise<Array<PostgresQueryResult<R>>>)) as unknown as Array<PostgresQueryResult<R>>;
    this.#committed = true;
    return results[0]!;
  }

  /**
   * After an in-band commit only the transaction's end may come: kysely's
   * COMMIT is answered as done, and so is a ROLLBACK (the caller's code
   * failed after the last statement; what it committed stays, which is why
   * that statement must come last). Anything else would run outside the
   * transaction: refused.
   */
  #afterCommit<R>(text: string): Promise<PostgresQueryResult<R>> {
    this.#committed = false;
    if (text === "commit" || text === "rollback") return Promise.resolve({ command: text.toUpperCase(), rowCount: 0, rows: [] } as unknown as PostgresQueryResult<R>);
    return Promise.reject(new Error(`"${text.slice(0, 40)}" after a statement that committed its transaction (${COMMIT_WITH_MARK} must be the last statement)`));
  }

  #guard<T>(running: Promise<T>): Promise<T> {
    return running.catch((err: unknown) => {
      if (!isConnectionFailure(err)) throw err;
      this.#failure = new StoreUnavailableError(
        err instanceof Error && /timeout/i.test(err.message) ? "the database did not answer in time" : "the connection to the database was lost",
        { cause: err },
      );
      this.onFailure();
      throw this.#failure;
    });
  }

  /** A failed connection is removed from the pool and destroyed (pg-pool ends a client released with an error). */
  release(): void {
    const failure = this.#failure;
    this.#failure = undefined;
    this.#committed = false;
    this.client.release(failure);
  }
}

/** The connection is gone or unusable (as opposed to an error Postgres reported on a working connection). */
export function isConnectionFailure(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string") return /^E[A-Z]+$/.test(code) || code.startsWith("08") || code.startsWith("57P");
  return /Connection terminated|Query read timeout|not queryable|timeout exceeded when trying to connect/i.test(err.message);
}

/**
 * Runs `select 1` on a connection of its own every interval (and soon after
 * a call saw a connection fail): reachability independent of how busy the
 * pool is. A failed probe drops its connection and reconnects next time.
 */
class ReachabilityProbe {
  #reachable = true;
  #client: pg.Client | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #intervalMs = 0;
  #stopped = false;
  readonly #listeners = new Set<(reachable: boolean) => void>();

  constructor(private readonly config: pg.ClientConfig) {}

  get reachable(): boolean {
    return this.#reachable;
  }

  watch(intervalMs: number, listener: (reachable: boolean) => void): () => void {
    this.#listeners.add(listener);
    if (this.#intervalMs === 0) {
      this.#intervalMs = intervalMs;
      this.#schedule(intervalMs);
    }
    return () => this.#listeners.delete(listener);
  }

  /** Probe now rather than at the next interval (a call saw a connection fail). */
  soon(): void {
    if (this.#intervalMs === 0 || this.#stopped || this.#running) return;
    this.#schedule(0);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const client = this.#client;
    this.#client = undefined;
    void client?.end().catch(() => {});
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    // soon() may be called from inside a call: the probe belongs to no call.
    this.#timer = outsideCall(() =>
      setTimeout(() => {
        this.#running = this.#probeOnce().finally(() => {
          this.#running = undefined;
          this.#schedule(this.#intervalMs);
        });
      }, delayMs),
    );
    this.#timer.unref();
  }

  async #probeOnce(): Promise<void> {
    let ok: boolean;
    try {
      if (!this.#client) {
        const client = new pg.Client(this.config);
        client.on("error", () => {});
        this.#client = client;
        await client.connect();
      }
      await this.#client.query("select 1");
      ok = true;
    } catch {
      ok = false;
      const client = this.#client;
      this.#client = undefined;
      void client?.end().catch(() => {});
    }
    if (this.#stopped) return;
    if (ok !== this.#reachable) {
      this.#reachable = ok;
      for (const listener of this.#listeners) listener(ok);
    }
  }
}
