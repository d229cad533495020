import type { Logger } from "../logger.js";
import { StoreRetryableError } from "../store/errors.js";
import type { Repositories, Store } from "../store/store.js";
import { OutboxPendingError, type OutboxApplier } from "./applier.js";
import { RelationshipChanges } from "./changes.js";
import type { ConsistencyTokens } from "./consistency.js";

export interface Committed<T> {
  readonly value: T;
  /** sharegraph consistency token of the change. */
  readonly token: string;
  /** False when SpiceDB had not applied the change when we answered (it will be retried). */
  readonly applied: boolean;
}

const ATTEMPTS = 3;

/**
 * Runs a domain change: the rows and the relationship updates they imply
 * are committed in one Postgres transaction (the outbox), then the batch is
 * applied to SpiceDB before answering, when SpiceDB is up.
 */
export class ChangeWriter {
  constructor(
    private readonly store: Store,
    private readonly applier: OutboxApplier,
    private readonly tokens: ConsistencyTokens,
    private readonly log: Logger,
  ) {}

  async change<T>(fn: (tx: Repositories, relationships: RelationshipChanges) => Promise<T>): Promise<Committed<T>> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#changeOnce(fn);
      } catch (err) {
        if (!(err instanceof StoreRetryableError) || attempt >= ATTEMPTS) throw err;
      }
    }
  }

  async #changeOnce<T>(fn: (tx: Repositories, relationships: RelationshipChanges) => Promise<T>): Promise<Committed<T>> {
    const relationships = new RelationshipChanges();
    const { value, batch } = await this.store.transaction(async (tx) => {
      const value = await fn(tx, relationships);
      const ops = relationships.toOps();
      // Appending takes the ordering lock, so it comes last, and commits in the same message: the lock is held only for the commit.
      const batch = ops.length > 0 ? await tx.outbox.appendAndCommit(ops) : undefined;
      return { value, batch };
    });
    if (batch === undefined) return { value, token: this.tokens.current(), applied: true };
    try {
      const zed = await this.applier.waitFor(batch);
      return { value, token: this.tokens.forWrite(batch, zed), applied: true };
    } catch (err) {
      if (!(err instanceof OutboxPendingError)) throw err;
      this.log.warn({ batch }, "change committed; the permission index will receive it when SpiceDB is reachable");
      return { value, token: this.tokens.forWrite(batch, ""), applied: false };
    }
  }
}
