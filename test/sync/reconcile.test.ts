/**
 * reconcile() racing an applier on real Postgres (PGlite has one connection,
 * so its transactions never interleave). The "system of record" here is the
 * outbox itself: the relationships Postgres implies are the outbox's ops
 * folded in id order, so a batch's commit is also its domain change.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatRelationship } from "../../src/engine/engine.js";
import { loadSchemaText } from "../../src/engine/schema.js";
import { createLogger } from "../../src/logger.js";
import type { OutboxOp } from "../../src/store/database.js";
import type { Repositories, Store } from "../../src/store/store.js";
import { OutboxApplier } from "../../src/sync/applier.js";
import { reconcile } from "../../src/sync/reconcile.js";
import { parseRelationship } from "../../src/sync/relationship-text.js";
import { TEST_DATABASE_URL, databaseKind, freshStore } from "../support/database.js";
import { FaultyEngine } from "../support/faulty-engine.js";

const touch = (r: string): OutboxOp => ({ o: "t", r });
const remove = (r: string): OutboxOp => ({ o: "d", r });

/** Every relationship the outbox visible to tx implies. */
async function fromOutbox(tx: Repositories) {
  const state = new Set<string>();
  for (const row of (await tx.all("outbox")).sort((a, b) => a.id - b.id)) {
    for (const op of row.ops) {
      if (op.o === "t") state.add(op.r);
      else state.delete(op.r);
    }
  }
  return [...state].map(parseRelationship);
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe.skipIf(databaseKind !== "postgres")("reconcile racing an applier (Postgres)", () => {
  let spicedb: FaultyEngine;
  let store: Store;
  let dispose: () => Promise<void>;
  let applier: OutboxApplier;
  let probe: pg.Client;

  beforeAll(async () => {
    spicedb = await FaultyEngine.create();
    await spicedb.writeSchema(loadSchemaText());
    ({ store, dispose } = await freshStore());
    applier = new OutboxApplier(store, spicedb, createLogger("silent"), { applyTimeoutMs: 200, pollMs: 50, maxBackoffMs: 200, retentionMs: 3_600_000 });
    probe = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await probe.connect();
  });

  afterAll(async () => {
    await probe?.end();
    await applier?.stop();
    await dispose?.();
    await spicedb?.close();
  });

  async function waitersForApplyLock(): Promise<number> {
    // OutboxRepo.lockForApply locks the table outbox_apply_lock (src/store/outbox.ts); the store uses a schema of its own.
    const r = await probe.query<{ n: number }>(
      "select count(*)::int as n from pg_locks l join pg_class c on c.oid = l.relation where c.relname = 'outbox_apply_lock' and not l.granted",
    );
    return r.rows[0]?.n ?? 0;
  }

  async function inSpiceDB(relationship: string): Promise<boolean> {
    const r = parseRelationship(relationship);
    for await (const found of spicedb.readRelationships({ resourceType: r.resource.type, resourceId: r.resource.id }, { kind: "fully_consistent" })) {
      if (formatRelationship(found) === relationship) return true;
    }
    return false;
  }

  // A batch that commits while Reconcile waits for the apply lock, and is
  // applied by the lock holder first, must be in Reconcile's snapshot: the
  // lock is a LOCK TABLE, which (unlike a SELECT of an advisory lock) does
  // not take the repeatable-read snapshot, so the snapshot follows the lock.
  it("a revoke applied while Reconcile waits for the apply lock is not undone by it", async () => {
    const access = "workspace:wz#manager@user:mallory";
    await store.transaction((tx) => tx.outbox.append([touch(access)]));
    await applier.drain();
    expect(await inSpiceDB(access)).toBe(true);

    // An applier takes the lock and is about to look for pending batches.
    const locked = deferred();
    const proceed = deferred();
    const applying = store.transaction(async (tx) => {
      await tx.outbox.lockForApply();
      locked.resolve();
      await proceed.promise;
      return applier.applyPendingWithin(tx);
    });
    await locked.promise;
    // Reconcile starts and waits for the lock.
    const reconciling = reconcile({ store, engine: spicedb, applier, derive: fromOutbox, resourceTypes: ["workspace"] }, false);
    const deadline = Date.now() + 10_000;
    while ((await waitersForApplyLock()) === 0) {
      if (Date.now() > deadline) throw new Error("timed out waiting for Reconcile to wait for the apply lock");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // The revoke commits; the applier applies it and lets go of the lock.
    await store.transaction((tx) => tx.outbox.append([remove(access)]));
    proceed.resolve();
    await applying;
    expect(await inSpiceDB(access)).toBe(false);

    const report = await reconciling;

    expect(report.missing).toEqual([]);
    expect(await inSpiceDB(access)).toBe(false);
  });
});
