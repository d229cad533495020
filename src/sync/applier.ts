import { abortable, CallAbortedError, callSignal, outsideCall } from "../call-signal.js";
import { EngineError, type Engine, type RelationshipUpdate } from "../engine/engine.js";
import type { OutboxOp } from "../store/database.js";
import type { OutboxRow } from "../store/outbox.js";
import type { Logger } from "../logger.js";
import type { Repositories, Store } from "../store/store.js";
import { toUpdates } from "./changes.js";
import { UnissuedTokenError } from "./tokens.js";

export interface ApplierOptions {
  /** How long a write waits for its batch to reach SpiceDB before answering without it. */
  readonly applyTimeoutMs: number;
  /** How often pending batches (another gateway's, or failed ones) are looked for. */
  readonly pollMs: number;
  /** Upper bound of the retry backoff after a failed apply. */
  readonly maxBackoffMs: number;
  /** Applied batches older than this are pruned. */
  readonly retentionMs: number;
}

/** A SpiceDB snapshot (ZedToken) that holds every outbox batch up to `batch`. */
export interface Snapshot {
  readonly batch: number;
  readonly zed: string;
  /** When this process learned of it (ms since the epoch). */
  readonly at: number;
}

/** The outbox has not reached SpiceDB in time (SpiceDB down, or slow). */
export class OutboxPendingError extends Error {
  constructor(readonly batch: number) {
    super(`changes up to batch ${batch} have not reached the permission index yet`);
    this.name = "OutboxPendingError";
  }
}

const BATCHES_PER_TRANSACTION = 500;

/**
 * Splits pending batches, in order, into groups that fit one SpiceDB write
 * (distinct relationships ≤ maxUpdates). A batch too big for one write is a
 * group of its own.
 */
export function groupBatches(rows: readonly OutboxRow[], maxUpdates: number): OutboxRow[][] {
  const groups: OutboxRow[][] = [];
  let current: OutboxRow[] = [];
  let keys = new Set<string>();
  for (const row of rows) {
    const added = row.ops.filter((op) => !keys.has(op.r)).length;
    if (current.length > 0 && keys.size + added > maxUpdates) {
      groups.push(current);
      current = [];
      keys = new Set();
    }
    current.push(row);
    for (const op of row.ops) keys.add(op.r);
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

/** The updates of consecutive batches as one write: each relationship's last operation. */
export function mergeUpdates(rows: readonly OutboxRow[]): RelationshipUpdate[] {
  const last = new Map<string, OutboxOp>();
  for (const row of rows) {
    for (const op of row.ops) {
      last.delete(op.r);
      last.set(op.r, op);
    }
  }
  return toUpdates([...last.values()]);
}

/**
 * Applies outbox batches to SpiceDB strictly in id order (= commit order),
 * idempotently (TOUCH / DELETE), retrying with backoff until they land.
 */
export class OutboxApplier {
  #appliedThrough = 0;
  readonly #zedByBatch = new Map<number, string>();
  #lastZed = "";
  #latest: Snapshot | undefined;
  #draining: Promise<void> | undefined;
  #drainAgain = false;
  #failing = false;
  #backoffMs: number;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #lastPrune = 0;
  /** When the last drain that failed ended (0: the last one succeeded). */
  #lastFailureAt = 0;
  #waiting = 0;
  /** Waiters asleep until the next progress (or their pause ends). */
  readonly #sleepers = new Set<() => void>();

  constructor(
    private readonly store: Store,
    private readonly engine: Engine,
    private readonly log: Logger,
    private readonly options: ApplierOptions,
  ) {
    this.#backoffMs = options.pollMs;
  }

  /** Every batch up to this id is known to be applied. */
  get appliedThrough(): number {
    return this.#appliedThrough;
  }

  /** The newest ZedToken this process has seen from a write. */
  get lastZed(): string {
    return this.#lastZed;
  }

  /**
   * The newest SpiceDB snapshot known to hold every batch up to `batch`:
   * from this process's own applies (or a rebuild/reconcile). Undefined
   * until it has applied something, or when the newest batches were applied
   * by another gateway (see storedSnapshot).
   */
  latestSnapshot(): Snapshot | undefined {
    return this.#latest && this.#latest.batch >= this.#appliedThrough ? this.#latest : undefined;
  }

  /**
   * The snapshot of the newest applied batch as recorded in the outbox, for
   * an engine whose ZedTokens every gateway shares (a SpiceDB server).
   */
  async storedSnapshot(): Promise<Snapshot | undefined> {
    const batch = this.#appliedThrough;
    const zed = batch > 0 ? await this.store.read.outbox.zedToken(batch) : null;
    if (!zed) return undefined;
    this.#setLatest(batch, zed);
    return this.#latest;
  }

  /**
   * A snapshot read from SpiceDB's head after batch was applied (see
   * ConsistencyTokens.refreshSnapshot). Ignored if a newer batch was applied
   * meanwhile: its own snapshot is the newer one.
   */
  noteHeadSnapshot(batch: number, zed: string): boolean {
    if (!zed || batch < this.#appliedThrough || (this.#latest && this.#latest.batch > batch)) return false;
    // The same revision: it keeps its age (SpiceDB ages revisions, not our notes of them).
    if (this.#latest?.zed === zed) return false;
    this.#latest = { batch, zed, at: Date.now() };
    return true;
  }

  #setLatest(batch: number, zed: string): void {
    if (zed && (!this.#latest || batch >= this.#latest.batch)) this.#latest = { batch, zed, at: Date.now() };
  }

  get failing(): boolean {
    return this.#failing;
  }

  /** Calls waiting for a batch right now: bounded by their deadlines, never left behind by them. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Records batches applied by someone else in this process (rebuild, reconcile). */
  noteApplied(through: number, zed: string): void {
    if (through >= this.#appliedThrough) {
      if (zed) {
        this.#lastZed = zed;
        this.#remember(through, zed);
        this.#setLatest(through, zed);
      }
      this.#advance(through);
    }
  }

  startBackground(): void {
    this.#stopped = false;
    this.#schedule(this.options.pollMs);
  }

  /**
   * Stops the background loop and waits up to graceMs for a drain under way:
   * during a database partition it may hang until the query timeout, and
   * shutdown must not (closing the store then cuts it).
   */
  async stop(graceMs = 2_000): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const draining = this.#draining?.catch(() => {});
    if (!draining) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([draining, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
  }

  /**
   * Applies every pending batch. Concurrent callers share one run; a call
   * made while a run is under way causes one more pass after it.
   */
  drain(): Promise<void> {
    if (this.#draining) {
      this.#drainAgain = true;
      return this.#draining;
    }
    // Shared by every caller and the background loop: not bound to the deadline of whichever call started it.
    this.#draining = outsideCall(async () => {
      try {
        do {
          this.#drainAgain = false;
          while (await this.#applyOnce()) {
            /* more batches pending */
          }
        } while (this.#drainAgain && !this.#failing);
      } catch (err) {
        // The database itself failed (unreachable, timed out): back off like a failed apply.
        this.#failing = true;
        throw err;
      } finally {
        this.#lastFailureAt = this.#failing ? Date.now() : 0;
        this.#draining = undefined;
      }
    });
    return this.#draining;
  }

  /**
   * Resolves with the batch's ZedToken (or "" if it was applied elsewhere)
   * once every batch up to it is applied; OutboxPendingError after
   * timeoutMs. UnissuedTokenError for a batch beyond the newest in the
   * outbox: it was never committed here, so it is never counted as applied.
   *
   * Inside a call (src/call-signal.ts) the wait ends when the call does:
   * CallAbortedError at its deadline, OutboxPendingError when it is
   * cancelled (the caller left, the server is shutting down). While SpiceDB
   * or the database is failing, waiters do not start drains of their own
   * more often than every pollMs; the background loop retries with backoff.
   */
  async waitFor(batch: number, timeoutMs = this.options.applyTimeoutMs): Promise<string> {
    if (batch <= this.#appliedThrough) return this.#zedByBatch.get(batch) ?? "";
    const signal = callSignal();
    const until = Date.now() + timeoutMs;
    this.#waiting++;
    try {
      let pause = 10;
      for (;;) {
        await abortable(this.#drainedThrough(batch), signal);
        if (batch <= this.#appliedThrough) return this.#zedByBatch.get(batch) ?? "";
        // Another gateway may hold the apply lock and have applied it.
        const progress = await abortable(this.store.read.outbox.progress(batch), signal);
        if (batch > progress.newest) throw new UnissuedTokenError(batch, progress.newest);
        if (progress.applied) {
          this.#advance(batch);
          return (await abortable(this.store.read.outbox.zedToken(batch), signal)) ?? "";
        }
        const left = until - Date.now();
        if (left <= 0) throw new OutboxPendingError(batch);
        await this.#sleep(Math.min(pause, left), signal);
        pause = Math.min(pause * 2, 500);
      }
    } catch (err) {
      if (err instanceof CallAbortedError && err.reason === "cancelled") throw new OutboxPendingError(batch);
      throw err;
    } finally {
      this.#waiting--;
    }
  }

  /**
   * A drain (#drainForWaiter), or less: resolves as soon as the batch is
   * applied. Under steady writes a drain runs pass after pass while new
   * batches keep arriving, and a writer whose batch an early pass applied
   * must not wait for the passes of the writes behind it.
   */
  async #drainedThrough(batch: number): Promise<void> {
    const drained = this.#drainForWaiter().then(() => true);
    while (batch > this.#appliedThrough) {
      let wake!: () => void;
      const progressed = new Promise<boolean>((resolve) => {
        wake = () => {
          this.#sleepers.delete(wake);
          resolve(false);
        };
        this.#sleepers.add(wake);
      });
      const finished = await Promise.race([drained, progressed]);
      this.#sleepers.delete(wake);
      if (finished) return;
    }
  }

  /** A drain, unless one failed less than pollMs ago (then the background loop's backoff decides). */
  async #drainForWaiter(): Promise<void> {
    if (this.#failing && !this.#draining && Date.now() - this.#lastFailureAt < this.options.pollMs) return;
    await this.drain().catch(() => {});
  }

  /** Sleeps for ms, or less when the applier makes progress; rejects when the signal aborts. */
  #sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
    let wake!: () => void;
    const slept = new Promise<void>((resolve) => {
      const timer = setTimeout(() => wake(), ms);
      wake = () => {
        clearTimeout(timer);
        this.#sleepers.delete(wake);
        resolve();
      };
      this.#sleepers.add(wake);
    });
    return abortable(slept, signal).finally(() => wake());
  }

  #advance(through: number): void {
    if (through <= this.#appliedThrough) return;
    this.#appliedThrough = through;
    for (const wake of [...this.#sleepers]) wake();
  }

  /**
   * Waits until every batch committed so far has reached SpiceDB, so that a
   * fully consistent read there is also fully consistent with Postgres (a
   * revoke still in the outbox must not be missed). OutboxPendingError after
   * timeoutMs.
   */
  async waitForLatest(timeoutMs = this.options.applyTimeoutMs): Promise<number> {
    const newest = await this.store.read.outbox.maxId();
    await this.waitFor(newest, timeoutMs);
    return newest;
  }

  /**
   * Applies the pending batches visible to tx, in order, inside tx (which
   * must hold the apply lock). Stops at the first failure, recording it on
   * the batch. Returns how far it got. With commitWithLastMark, the mark of
   * the last batch is tx's last statement and commits it (sent with its
   * COMMIT in one message on real Postgres).
   */
  async applyPendingWithin(
    tx: Repositories,
    limit = BATCHES_PER_TRANSACTION,
    { commitWithLastMark = false }: { commitWithLastMark?: boolean } = {},
  ): Promise<{ through: number; failed: boolean; more: boolean }> {
    // The newest id and the pending batches at one snapshot: a batch committed after the pending
    // ones were read must not be counted as applied without having reached SpiceDB.
    const { newest, rows } = await tx.outbox.pendingWithNewest(limit);
    if (rows.length === 0) return { through: newest, failed: false, more: false };
    let through = rows[0]!.id - 1;
    const lastId = rows.at(-1)!.id;
    const mark = (ids: readonly number[], zed: string) =>
      commitWithLastMark && ids.at(-1) === lastId ? tx.outbox.markAppliedAndCommit(ids, zed) : ids.length === 1 ? tx.outbox.markApplied(ids[0]!, zed) : tx.outbox.markAppliedMany(ids, zed);
    for (const group of groupBatches(rows, this.engine.maxUpdatesPerWrite)) {
      let applied: string | undefined;
      if (group.length > 1) {
        try {
          applied = await this.#applyGroup(group);
        } catch (err) {
          // SpiceDB unreachable: the group's first batch is the one that failed.
          const message = err instanceof Error ? err.message : String(err);
          await tx.outbox.markFailed(group[0]!.id, message);
          this.log.warn({ batch: group[0]!.id, batches: group.length, err: message }, "outbox batches failed; will retry");
          return { through, failed: true, more: true };
        }
      }
      if (applied !== undefined) {
        await mark(
          group.map((row) => row.id),
          applied,
        );
        for (const row of group) this.#remember(row.id, applied);
        this.#lastZed = applied || this.#lastZed;
        through = group.at(-1)!.id;
        continue;
      }
      // One batch alone, or a group SpiceDB refused: one at a time, to stop at the batch that fails.
      for (const row of group) {
        let zed = "";
        try {
          const updates = toUpdates(row.ops);
          for (let i = 0; i < updates.length; i += this.engine.maxUpdatesPerWrite) {
            zed = await this.engine.write(updates.slice(i, i + this.engine.maxUpdatesPerWrite));
          }
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          await tx.outbox.markFailed(row.id, message);
          this.log.warn({ batch: row.id, attempts: row.attempts + 1, err: message }, "outbox batch failed; will retry");
          return { through, failed: true, more: true };
        }
        await mark([row.id], zed);
        this.#remember(row.id, zed);
        this.#lastZed = zed || this.#lastZed;
        through = row.id;
      }
    }
    return { through, failed: false, more: rows.length === limit };
  }

  /**
   * Consecutive batches in one SpiceDB write: the last update of each
   * relationship wins, which is the state applying them one by one ends in,
   * and no reader can see a state in between (the group has one revision).
   * Undefined when SpiceDB refused the updates (one batch at a time then
   * finds the batch to blame); throws when SpiceDB is unreachable.
   */
  async #applyGroup(group: readonly OutboxRow[]): Promise<string | undefined> {
    try {
      return await this.engine.write(mergeUpdates(group));
    } catch (err) {
      if (err instanceof EngineError && err.kind === "unavailable") throw err;
      this.log.debug({ batches: group.length, err: err instanceof Error ? err.message : String(err) }, "grouped apply refused; applying one batch at a time");
      return undefined;
    }
  }

  async #applyOnce(): Promise<boolean> {
    const outcome = await this.store.transaction(async (tx) => {
      await tx.outbox.lockForApply();
      return this.applyPendingWithin(tx, BATCHES_PER_TRANSACTION, { commitWithLastMark: true });
    });
    const zed = this.#zedByBatch.get(outcome.through);
    if (zed) this.#setLatest(outcome.through, zed);
    this.#advance(outcome.through);
    if (outcome.failed) {
      this.#failing = true;
      return false;
    }
    if (this.#failing) this.log.info({ through: outcome.through }, "outbox caught up");
    this.#failing = false;
    return outcome.more;
  }

  #remember(batch: number, zed: string): void {
    this.#zedByBatch.set(batch, zed);
    // Only recent batches are asked about; older ones fall back to the database.
    if (this.#zedByBatch.size > 10_000) {
      const oldest = this.#zedByBatch.keys().next().value;
      if (oldest !== undefined) this.#zedByBatch.delete(oldest);
    }
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#tick(), delayMs);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    try {
      await this.drain();
      if (Date.now() - this.#lastPrune > 60_000) {
        this.#lastPrune = Date.now();
        await this.store.read.outbox.prune(new Date(Date.now() - this.options.retentionMs));
      }
    } catch (err) {
      this.#failing = true;
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, "outbox drain failed");
    }
    this.#backoffMs = this.#failing ? Math.min(this.#backoffMs * 2, this.options.maxBackoffMs) : this.options.pollMs;
    this.#schedule(this.#backoffMs);
  }
}
