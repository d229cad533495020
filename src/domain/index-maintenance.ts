import type { Engine } from "../engine/engine.js";
import type { SchemaModel } from "../engine/schema.js";
import type { Store } from "../store/store.js";
import type { OutboxApplier } from "../sync/applier.js";
import type { ConsistencyTokens } from "../sync/consistency.js";
import { rebuild, reconcile, type ReconcileReport } from "../sync/reconcile.js";
import { Backup } from "./backup.js";
import { deriveAll, deriveBatches } from "./graph.js";

/** Keeping the permission index (SpiceDB) equal to what Postgres implies. */
export class IndexMaintenance {
  /** Export and import of the system of record (an import fills the index through the outbox). */
  readonly backup: Backup;

  constructor(
    private readonly store: Store,
    private readonly engine: Engine,
    private readonly applier: OutboxApplier,
    private readonly tokens: ConsistencyTokens,
    private readonly schema: SchemaModel,
    /** After a rebuild's bulk write, before anything reads it back: a persistent datastore refreshes its planner statistics. */
    private readonly afterBulkWrite: () => Promise<void> = async () => {},
  ) {
    this.backup = new Backup({ store, applier, tokens, maxUpdatesPerBatch: engine.maxUpdatesPerWrite });
  }

  async reconcile(dryRun: boolean): Promise<ReconcileReport & { token: string }> {
    const report = await reconcile(
      { store: this.store, engine: this.engine, applier: this.applier, derive: deriveAll, resourceTypes: [...this.schema.keys()] },
      dryRun,
    );
    return { ...report, token: this.tokens.current() };
  }

  /** Writes everything, then removes what Postgres no longer implies. */
  async rebuild(onProgress?: (written: number) => void): Promise<{ written: number; token: string }> {
    const result = await rebuild({ store: this.store, engine: this.engine, applier: this.applier, derive: deriveBatches, ...(onProgress ? { onProgress } : {}) });
    await this.afterBulkWrite();
    await this.reconcile(false);
    return { written: result.written, token: this.tokens.current() };
  }

  /** Start-up with the embedded engine: the memory datastore is empty. */
  async rebuildEmpty(onProgress?: (written: number) => void): Promise<number> {
    return (await rebuild({ store: this.store, engine: this.engine, applier: this.applier, derive: deriveBatches, ...(onProgress ? { onProgress } : {}) })).written;
  }

  /** The engine's kind ("embedded", "spicedb", "remote"). */
  get engineKind(): string {
    return this.engine.kind;
  }

  outboxStatus() {
    return this.store.read.outbox.status();
  }
}
