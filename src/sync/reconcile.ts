import type { Engine, Relationship, RelationshipUpdate } from "../engine/engine.js";
import type { Repositories, Store } from "../store/store.js";
import { OutboxPendingError, type OutboxApplier } from "./applier.js";
import { formatRelationship, parseRelationship } from "./relationship-text.js";

/** Every relationship the rows of the store imply (the domain's derivation). */
export type DeriveAll = (tx: Repositories) => Promise<Relationship[]>;
/** The same, in batches (a rebuild never holds them all). */
export type DeriveBatches = (tx: Repositories) => AsyncIterable<Relationship[]>;

export interface ReconcileReport {
  readonly expected: number;
  readonly actual: number;
  readonly missing: string[];
  readonly extra: string[];
  readonly repaired: boolean;
  /** ZedToken after the repair ("" when nothing was written). */
  readonly zed: string;
  /** Outbox batches up to this id are reflected. */
  readonly through: number;
}

export interface ReconcileOptions {
  readonly store: Store;
  readonly engine: Engine;
  readonly applier: OutboxApplier;
  readonly derive: DeriveAll;
  /** Resource types whose relationships are read back from SpiceDB. */
  readonly resourceTypes: readonly string[];
}

/**
 * Compares SpiceDB with what Postgres implies and, unless dryRun, writes the
 * missing relationships and deletes the extra ones.
 *
 * Runs in one repeatable-read transaction holding the apply lock: pending
 * batches visible in the snapshot are applied first, so SpiceDB and the
 * snapshot describe the same moment; later batches wait for the lock.
 */
export async function reconcile(options: ReconcileOptions, dryRun: boolean): Promise<ReconcileReport> {
  const { store, engine, applier } = options;
  const outcome = await store.transaction(async (tx): Promise<ReconcileReport | { blockedAt: number; through: number }> => {
    await tx.outbox.lockForApply();
    let through = 0;
    for (;;) {
      const step = await applier.applyPendingWithin(tx);
      through = step.through;
      // SpiceDB and the snapshot cannot be compared until that batch lands. Return rather
      // than throw, so that the failure recorded on the batch commits (GetOutboxStatus shows it).
      if (step.failed) return { blockedAt: through + 1, through };
      if (!step.more) break;
    }
    const expected = new Set((await options.derive(tx)).map(formatRelationship));
    const actual = new Set<string>();
    for (const resourceType of options.resourceTypes) {
      for await (const r of engine.readRelationships({ resourceType }, { kind: "fully_consistent" })) {
        actual.add(formatRelationship(r));
      }
    }
    const missing = [...expected].filter((r) => !actual.has(r)).sort();
    const extra = [...actual].filter((r) => !expected.has(r)).sort();
    let zed = "";
    if (!dryRun) {
      const updates: RelationshipUpdate[] = [
        ...extra.map((r) => ({ op: "delete" as const, relationship: parseRelationship(r) })),
        ...missing.map((r) => ({ op: "touch" as const, relationship: parseRelationship(r) })),
      ];
      zed = await writeChunked(engine, updates);
    }
    return { expected: expected.size, actual: actual.size, missing, extra, repaired: !dryRun, zed, through };
  }, "repeatable read");
  if ("blockedAt" in outcome) {
    applier.noteApplied(outcome.through, "");
    throw new OutboxPendingError(outcome.blockedAt);
  }
  applier.noteApplied(outcome.through, outcome.zed);
  return outcome;
}

export interface RebuildOptions {
  readonly store: Store;
  readonly engine: Engine;
  readonly applier: OutboxApplier;
  readonly derive: DeriveBatches;
  /** Called after each write with the relationships written so far. */
  readonly onProgress?: (written: number) => void;
}

/**
 * Writes every relationship Postgres implies into SpiceDB (TOUCH), marking
 * the outbox as applied up to the snapshot. Used at start-up on the empty
 * embedded SpiceDB; on a used one, reconcile also removes what is extra.
 */
export async function rebuild(options: RebuildOptions): Promise<{ written: number; zed: string; through: number }> {
  const { store, engine, applier } = options;
  const result = await store.transaction(async (tx) => {
    await tx.outbox.lockForApply();
    const through = await tx.outbox.maxId();
    let written = 0;
    let zed = "";
    let pending: RelationshipUpdate[] = [];
    const flush = async (all: boolean) => {
      while (pending.length >= engine.maxUpdatesPerWrite || (all && pending.length > 0)) {
        const chunk = pending.slice(0, engine.maxUpdatesPerWrite);
        pending = pending.slice(chunk.length);
        zed = await engine.write(chunk);
        written += chunk.length;
        options.onProgress?.(written);
      }
    };
    for await (const batch of options.derive(tx)) {
      for (const relationship of batch) pending.push({ op: "touch", relationship });
      await flush(false);
    }
    await flush(true);
    await tx.outbox.markAppliedThrough(through, zed);
    return { written, zed, through };
  }, "repeatable read");
  applier.noteApplied(result.through, result.zed);
  return result;
}

async function writeChunked(engine: Engine, updates: readonly RelationshipUpdate[]): Promise<string> {
  let zed = "";
  for (let i = 0; i < updates.length; i += engine.maxUpdatesPerWrite) {
    zed = await engine.write(updates.slice(i, i + engine.maxUpdatesPerWrite));
  }
  return zed;
}
