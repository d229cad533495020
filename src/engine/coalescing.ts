import {
  EngineError,
  type CheckItem,
  type CheckResult,
  type Consistency,
  type Engine,
} from "./engine.js";

interface Waiting {
  readonly item: CheckItem;
  readonly resolve: (result: CheckResult) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Coalesces concurrent checks into one bulk check. Every call into SpiceDB
 * has a fixed cost (for the embedded engine several milliseconds, paid
 * synchronously on the event loop) while a bulk check adds well under a
 * millisecond per item; checks that arrive together — requests queued while
 * the previous call ran — are answered together, grouped by consistency. A
 * lone check still goes alone, as the single call is cheaper than a bulk of
 * one.
 */
export class CoalescingEngine implements Engine {
  readonly kind: string;
  readonly maxUpdatesPerWrite: number;
  readonly #pending = new Map<string, { consistency: Consistency; waiting: Waiting[] }>();
  #scheduled = false;

  constructor(
    private readonly inner: Engine,
    private readonly maxBatch = 1000,
  ) {
    this.kind = inner.kind;
    this.maxUpdatesPerWrite = inner.maxUpdatesPerWrite;
  }

  check(item: CheckItem, consistency: Consistency): Promise<CheckResult> {
    return new Promise((resolve, reject) => {
      const key = "token" in consistency ? `${consistency.kind}:${consistency.token}` : consistency.kind;
      let group = this.#pending.get(key);
      if (!group) this.#pending.set(key, (group = { consistency, waiting: [] }));
      group.waiting.push({ item, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        // After the I/O callbacks of this loop turn: everything that arrived meanwhile joins.
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const groups = [...this.#pending.values()];
    this.#pending.clear();
    for (const { consistency, waiting } of groups) {
      for (let i = 0; i < waiting.length; i += this.maxBatch) void this.#answer(waiting.slice(i, i + this.maxBatch), consistency);
    }
  }

  async #answer(waiting: readonly Waiting[], consistency: Consistency): Promise<void> {
    const [only] = waiting;
    if (waiting.length === 1 && only) {
      this.inner.check(only.item, consistency).then(only.resolve, only.reject);
      return;
    }
    try {
      const bulk = await this.inner.checkBulk(
        waiting.map((w) => w.item),
        consistency,
      );
      waiting.forEach((w, i) => {
        const result = bulk.results[i];
        if (!result) w.reject(new EngineError("internal", "bulk check answered fewer items than asked"));
        else if (result.error !== undefined) w.reject(new EngineError("failed_precondition", result.error));
        else w.resolve({ allowed: result.allowed, token: bulk.token });
      });
    } catch (err) {
      for (const w of waiting) w.reject(err);
    }
  }

  // Everything else goes straight through.
  writeSchema: Engine["writeSchema"] = (schema) => this.inner.writeSchema(schema);
  readSchema: Engine["readSchema"] = () => this.inner.readSchema();
  checkBulk: Engine["checkBulk"] = (items, consistency, signal) => this.inner.checkBulk(items, consistency, signal);
  checkWithTrace: Engine["checkWithTrace"] = (item, consistency) => this.inner.checkWithTrace(item, consistency);
  lookupResources: Engine["lookupResources"] = (query, consistency, signal) => this.inner.lookupResources(query, consistency, signal);
  lookupSubjects: Engine["lookupSubjects"] = (query, consistency, signal) => this.inner.lookupSubjects(query, consistency, signal);
  readRelationships: Engine["readRelationships"] = (filter, consistency) => this.inner.readRelationships(filter, consistency);
  write: Engine["write"] = (updates) => this.inner.write(updates);
  deleteMatching: Engine["deleteMatching"] = (filter) => this.inner.deleteMatching(filter);
  close: Engine["close"] = () => this.inner.close();
}
