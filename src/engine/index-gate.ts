import {
  EngineError,
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
} from "./engine.js";

/** A read refused because the index is still being built at start-up; its message is for the caller. */
export class IndexNotReadyError extends EngineError {
  constructor(written: number) {
    super(
      "unavailable",
      `sharegraph is starting: the permission index is being rebuilt from Postgres (${written.toLocaleString("en-US")} relationships so far); retry shortly`,
    );
    this.name = "IndexNotReadyError";
  }
}

/**
 * Keeps reads away from an index that is still being built. While SpiceDB
 * is rebuilt from Postgres its answers are those of part of the data — a
 * denial that should be an allow, or worse where the schema subtracts — so
 * every read is refused with "unavailable" (callers retry) until open().
 * Writes pass: the rebuild and the outbox write through here.
 */
export class IndexGate implements Engine {
  readonly kind: string;
  readonly maxUpdatesPerWrite: number;
  #open = false;
  #written = 0;

  constructor(private readonly inner: Engine) {
    this.kind = inner.kind;
    this.maxUpdatesPerWrite = inner.maxUpdatesPerWrite;
  }

  get isOpen(): boolean {
    return this.#open;
  }

  /** Relationships written so far by the rebuild (for the refusal's message). */
  progress(written: number): void {
    this.#written = written;
  }

  open(): void {
    this.#open = true;
  }

  #refuseUntilOpen(): void {
    if (this.#open) return;
    throw new IndexNotReadyError(this.#written);
  }

  async #gated<T>(read: () => Promise<T>): Promise<T> {
    this.#refuseUntilOpen();
    return read();
  }

  async *#gatedStream<T>(read: () => AsyncIterable<T>): AsyncIterable<T> {
    this.#refuseUntilOpen();
    yield* read();
  }

  writeSchema(schema: string): Promise<void> {
    return this.inner.writeSchema(schema);
  }

  readSchema(): Promise<string> {
    return this.inner.readSchema();
  }

  check(item: CheckItem, consistency: Consistency): Promise<CheckResult> {
    return this.#gated(() => this.inner.check(item, consistency));
  }

  checkBulk(items: readonly CheckItem[], consistency: Consistency, signal?: AbortSignal): Promise<BulkCheckResult> {
    return this.#gated(() => this.inner.checkBulk(items, consistency, signal));
  }

  checkWithTrace(item: CheckItem, consistency: Consistency): Promise<TracedCheckResult> {
    return this.#gated(() => this.inner.checkWithTrace(item, consistency));
  }

  lookupResources(query: LookupResourcesQuery, consistency: Consistency, signal?: AbortSignal): AsyncIterable<LookedUpResource> {
    return this.#gatedStream(() => this.inner.lookupResources(query, consistency, signal));
  }

  lookupSubjects(query: LookupSubjectsQuery, consistency: Consistency, signal?: AbortSignal): AsyncIterable<LookedUpSubject> {
    return this.#gatedStream(() => this.inner.lookupSubjects(query, consistency, signal));
  }

  readRelationships(filter: RelationshipFilter, consistency: Consistency): AsyncIterable<Relationship> {
    return this.#gatedStream(() => this.inner.readRelationships(filter, consistency));
  }

  write(updates: readonly RelationshipUpdate[]): Promise<string> {
    return this.inner.write(updates);
  }

  deleteMatching(filter: RelationshipFilter): Promise<string> {
    return this.inner.deleteMatching(filter);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
