import { createEmbeddedEngine } from "../../src/engine/embedded.js";
import {
  EngineError,
  formatRelationship,
  type BulkCheckResult,
  type CheckItem,
  type CheckResult,
  type Consistency,
  type Engine,
  type LookedUpResource,
  type LookedUpSubject,
  type LookupResourcesQuery,
  type LookupSubjectsQuery,
  type Relationship,
  type RelationshipFilter,
  type RelationshipUpdate,
  type TracedCheckResult,
} from "../../src/engine/engine.js";

/** One call of write(), as the wrapper saw it. */
export interface WriteAttempt {
  /** "touch workspace:ws#viewer@user:ann", in the order given. */
  readonly updates: readonly string[];
  /**
   * applied: reached SpiceDB and reported success; refused: never reached it;
   * applied-then-failed: reached SpiceDB, but the caller was told it failed.
   */
  readonly outcome: "applied" | "refused" | "applied-then-failed";
}

/**
 * A real embedded SpiceDB behind a switch: tests can make `write` fail as if
 * SpiceDB were down (EngineError "unavailable") until healed, let a write
 * reach SpiceDB and then report a failure (the answer was lost on the way
 * back), or hold writes until released (SpiceDB hangs). Everything else is
 * passed through to the real engine.
 */
export class FaultyEngine implements Engine {
  /** Every write() call, in call order. */
  readonly writes: WriteAttempt[] = [];
  /** The signal each checkBulk() call was given, in call order. */
  readonly bulkSignals: Array<AbortSignal | undefined> = [];
  /** What each checkBulk() call asked, and at which consistency, in call order. */
  readonly bulkChecks: Array<{ readonly items: readonly CheckItem[]; readonly consistency: Consistency; readonly token: Promise<string> }> = [];
  #down = false;
  #applyThenFail = 0;
  #downAfterApplyThenFail = false;
  #schemaDown = false;
  #closeCalls = 0;
  #gate: { promise: Promise<void>; open: () => void } | undefined;
  #holdNextArriving = false;
  #held = 0;

  private constructor(readonly inner: Engine) {}

  static async create(): Promise<FaultyEngine> {
    return new FaultyEngine(await createEmbeddedEngine());
  }

  get kind(): string {
    return this.inner.kind;
  }

  get maxUpdatesPerWrite(): number {
    return this.inner.maxUpdatesPerWrite;
  }

  /** How many times close() was called. */
  get closeCalls(): number {
    return this.#closeCalls;
  }

  /** From now on writes fail with "unavailable" and never reach SpiceDB, until heal(). */
  breakWrites(): void {
    this.#down = true;
  }

  /**
   * The next `times` writes reach SpiceDB, then fail with "unavailable" as if
   * the reply were lost. With thenDown, SpiceDB is down after the last of them
   * (until heal()).
   */
  applyThenFail(times = 1, options: { thenDown?: boolean } = {}): void {
    this.#applyThenFail = times;
    this.#downAfterApplyThenFail = options.thenDown ?? false;
  }

  /** writeSchema fails with "unavailable" (start-up failure tests). */
  breakSchemaWrites(): void {
    this.#schemaDown = true;
  }

  /** From now on writes wait (SpiceDB hangs) until release(). */
  hold(): void {
    if (this.#gate) return;
    let open!: () => void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    this.#gate = { promise, open };
  }

  /**
   * The next write to arrive waits as in hold() (SpiceDB hangs on it); the
   * writes already waiting are not held by it and go on at release().
   */
  holdNextArriving(): void {
    this.#holdNextArriving = true;
  }

  /** Lets the held writes go on. */
  release(): void {
    this.#gate?.open();
    this.#gate = undefined;
  }

  /** How many writes are waiting in hold() right now. */
  get heldWrites(): number {
    return this.#held;
  }

  heal(): void {
    this.#holdNextArriving = false;
    this.release();
    this.#down = false;
    this.#applyThenFail = 0;
    this.#downAfterApplyThenFail = false;
    this.#schemaDown = false;
  }

  /** The updates of every write that reached SpiceDB (whatever it was told), in order. */
  reached(): string[][] {
    return this.writes.filter((w) => w.outcome !== "refused").map((w) => [...w.updates]);
  }

  async write(updates: readonly RelationshipUpdate[]): Promise<string> {
    const described = updates.map((u) => `${u.op} ${formatRelationship(u.relationship)}`);
    if (this.#holdNextArriving) {
      this.#holdNextArriving = false;
      this.hold();
    }
    while (this.#gate) {
      this.#held++;
      try {
        await this.#gate.promise;
      } finally {
        this.#held--;
      }
    }
    if (this.#down) {
      this.writes.push({ updates: described, outcome: "refused" });
      throw new EngineError("unavailable", "injected fault: SpiceDB is down");
    }
    const zed = await this.inner.write(updates);
    if (this.#applyThenFail > 0) {
      this.#applyThenFail--;
      if (this.#applyThenFail === 0 && this.#downAfterApplyThenFail) this.#down = true;
      this.writes.push({ updates: described, outcome: "applied-then-failed" });
      throw new EngineError("unavailable", "injected fault: the write reached SpiceDB but its reply was lost");
    }
    this.writes.push({ updates: described, outcome: "applied" });
    return zed;
  }

  async writeSchema(schema: string): Promise<void> {
    if (this.#schemaDown) throw new EngineError("unavailable", "injected fault: SpiceDB is down");
    return this.inner.writeSchema(schema);
  }

  readSchema(): Promise<string> {
    return this.inner.readSchema();
  }

  check(item: CheckItem, consistency: Consistency): Promise<CheckResult> {
    return this.inner.check(item, consistency);
  }

  checkBulk(items: readonly CheckItem[], consistency: Consistency, signal?: AbortSignal): Promise<BulkCheckResult> {
    this.bulkSignals.push(signal);
    const answered = this.inner.checkBulk(items, consistency, signal);
    this.bulkChecks.push({ items, consistency, token: answered.then((r) => r.token, () => "") });
    return answered;
  }

  checkWithTrace(item: CheckItem, consistency: Consistency): Promise<TracedCheckResult> {
    return this.inner.checkWithTrace(item, consistency);
  }

  lookupResources(query: LookupResourcesQuery, consistency: Consistency, signal?: AbortSignal): AsyncIterable<LookedUpResource> {
    return this.inner.lookupResources(query, consistency, signal);
  }

  lookupSubjects(query: LookupSubjectsQuery, consistency: Consistency, signal?: AbortSignal): AsyncIterable<LookedUpSubject> {
    return this.inner.lookupSubjects(query, consistency, signal);
  }

  readRelationships(filter: RelationshipFilter, consistency: Consistency): AsyncIterable<Relationship> {
    return this.inner.readRelationships(filter, consistency);
  }

  deleteMatching(filter: RelationshipFilter): Promise<string> {
    return this.inner.deleteMatching(filter);
  }

  async close(): Promise<void> {
    this.#closeCalls++;
    await this.inner.close();
  }
}
