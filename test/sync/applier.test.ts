/**
 * OutboxApplier on its own: a store, an embedded SpiceDB behind the fault
 * switch, no server. What "through" means (every batch up to it has reached
 * SpiceDB) is what read-your-writes rests on, so it is pinned down here.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadSchemaText } from "../../src/engine/schema.js";
import { createLogger } from "../../src/logger.js";
import type { OutboxOp } from "../../src/store/database.js";
import type { OutboxRepo } from "../../src/store/outbox.js";
import type { Repositories, Store } from "../../src/store/store.js";
import { CallAbortedError, withCallSignal } from "../../src/call-signal.js";
import { groupBatches, mergeUpdates, OutboxApplier, OutboxPendingError } from "../../src/sync/applier.js";
import { UnissuedTokenError } from "../../src/sync/tokens.js";
import { databaseKind, freshStore } from "../support/database.js";
import { FaultyEngine } from "../support/faulty-engine.js";

const touch = (r: string): OutboxOp => ({ o: "t", r });
const remove = (r: string): OutboxOp => ({ o: "d", r });

let spicedb: FaultyEngine;
let store: Store;
let dispose: () => Promise<void>;
let applier: OutboxApplier;

beforeAll(async () => {
  spicedb = await FaultyEngine.create();
  await spicedb.writeSchema(loadSchemaText());
});

afterAll(async () => {
  await spicedb?.close();
});

beforeEach(async () => {
  ({ store, dispose } = await freshStore());
  applier = new OutboxApplier(store, spicedb, createLogger("silent"), { applyTimeoutMs: 200, pollMs: 50, maxBackoffMs: 200, retentionMs: 3_600_000 });
});

afterEach(async () => {
  spicedb.heal();
  await applier.stop();
  await dispose();
});

async function appendEach(...batches: OutboxOp[][]): Promise<number[]> {
  const ids: number[] = [];
  for (const ops of batches) ids.push(await store.transaction((tx) => tx.outbox.append(ops)));
  return ids;
}

/** Runs applyPendingWithin the way the applier does: in a transaction holding the apply lock. */
function applyWithin(decorate: (tx: Repositories) => Repositories = (tx) => tx) {
  return store.transaction(async (tx) => {
    await tx.outbox.lockForApply();
    return applier.applyPendingWithin(decorate(tx));
  });
}

describe("applyPendingWithin", () => {
  it("applies pending batches as one write in which each relationship's last update (in id order) wins, and reports the last batch as through", async () => {
    const ids = await appendEach([touch("workspace:w1#viewer@user:ann")], [remove("workspace:w1#viewer@user:ann")], [touch("workspace:w1#manager@user:bob")]);
    const from = spicedb.writes.length;

    const result = await applyWithin();

    expect(result).toEqual({ through: ids[2], failed: false, more: false });
    expect(spicedb.writes.slice(from).map((w) => w.updates)).toEqual([["delete workspace:w1#viewer@user:ann", "touch workspace:w1#manager@user:bob"]]);
    expect(await store.read.outbox.pending(10)).toEqual([]);
    // One write, one snapshot: every batch of the group has its token.
    const zeds = await Promise.all(ids.map((id) => store.read.outbox.zedToken(id)));
    expect(new Set(zeds).size).toBe(1);
    expect(zeds[0]).not.toBe("");
  });

  it("stops at the first failure, records it on that batch only, and reports through as the batch before it", async () => {
    const ids = await appendEach([touch("workspace:w2#viewer@user:ann")], [touch("workspace:w2#viewer@user:bob")]);
    spicedb.breakWrites();

    const result = await applyWithin();

    expect(result).toEqual({ through: ids[0]! - 1, failed: true, more: true });
    const [first, second] = await store.read.outbox.pending(10);
    expect(first).toMatchObject({ id: ids[0], attempts: 1, last_error: "injected fault: SpiceDB is down" });
    expect(second).toMatchObject({ id: ids[1], attempts: 0, last_error: null });
  });

  it("never counts as applied a batch committed after it looked for pending ones (read committed sees it in the next statement)", async () => {
    const [applied] = await appendEach([touch("workspace:w3#viewer@user:ann")]);
    await applyWithin();
    let late = 0;

    const result = await applyWithin((tx) => {
      // A change commits between the applier's "what is pending?" and its answer. With
      // Postgres that is a transaction on another connection; PGlite has one connection, so
      // the insert is made in the applier's own transaction, which later statements see alike.
      const outbox = Object.create(tx.outbox) as OutboxRepo;
      outbox.pendingWithNewest = async (limit) => {
        const found = await tx.outbox.pendingWithNewest(limit);
        const ops = [touch("workspace:w3#viewer@user:late")];
        late = databaseKind === "postgres" ? await store.transaction((other) => other.outbox.append(ops)) : await tx.outbox.append(ops);
        return found;
      };
      return Object.assign(Object.create(tx) as Repositories, { outbox });
    });

    expect(late).toBeGreaterThan(applied!);
    expect(result.through).toBeLessThan(late);
    expect(result.through).toBeGreaterThanOrEqual(applied!);
    expect(await store.read.outbox.appliedThrough(late)).toBe(false);
  });
});

describe("grouped applies", () => {
  const row = (id: number, ...ops: OutboxOp[]) => ({ id, ops, op_count: ops.length, applied_at: null, zed_token: null, attempts: 0, last_error: null, created_at: new Date() });

  it("groups consecutive batches up to the write limit of distinct relationships; a batch bigger than the limit goes alone", () => {
    const rows = [
      row(1, touch("a:1#r@user:x"), touch("a:2#r@user:x")),
      row(2, remove("a:1#r@user:x")),
      row(3, touch("a:3#r@user:x")),
      row(4, touch("a:4#r@user:x"), touch("a:5#r@user:x"), touch("a:6#r@user:x"), touch("a:7#r@user:x")),
      row(5, touch("a:8#r@user:x")),
    ];
    expect(groupBatches(rows, 3).map((g) => g.map((r) => r.id))).toEqual([[1, 2, 3], [4], [5]]);
    expect(groupBatches(rows, 100).map((g) => g.map((r) => r.id))).toEqual([[1, 2, 3, 4, 5]]);
  });

  it("merges a group into each relationship's last update", () => {
    const merged = mergeUpdates([row(1, touch("a:1#r@user:x"), touch("a:2#r@user:x")), row(2, remove("a:1#r@user:x")), row(3, touch("a:1#r@user:x"), remove("a:2#r@user:x"))]);
    expect(merged.map((u) => `${u.op} ${u.relationship.resource.id}`)).toEqual(["touch 1", "delete 2"]);
  });

  it("when SpiceDB refuses a group, applies its batches one at a time and stops at the one it refuses", async () => {
    const ids = await appendEach([touch("workspace:w4#viewer@user:ann")], [touch("workspace:w4#no_such_relation@user:bob")], [touch("workspace:w4#viewer@user:cid")]);
    const from = spicedb.writes.length;

    const result = await applyWithin();

    expect(result).toEqual({ through: ids[0], failed: true, more: true });
    // SpiceDB took nothing of the refused group; then only the batch before the refused one.
    expect(spicedb.writes.slice(from).map((w) => w.updates)).toEqual([["touch workspace:w4#viewer@user:ann"]]);
    const [refused, after] = await store.read.outbox.pending(10);
    expect(refused).toMatchObject({ id: ids[1], attempts: 1 });
    expect(refused!.last_error).toMatch(/no_such_relation/);
    expect(after).toMatchObject({ id: ids[2], attempts: 0 });
  });

  it("while SpiceDB is down, a group costs one failed write, recorded on its first batch", async () => {
    const ids = await appendEach([touch("workspace:w5#viewer@user:ann")], [touch("workspace:w5#viewer@user:bob")]);
    spicedb.breakWrites();
    const from = spicedb.writes.length;

    await applyWithin();

    expect(spicedb.writes.length - from).toBe(1);
    expect((await store.read.outbox.pending(10)).map((r) => [r.id, r.attempts])).toEqual([
      [ids[0], 1],
      [ids[1], 0],
    ]);
  });
});

describe("waitFor", () => {
  it("rejects with OutboxPendingError while SpiceDB is down, and resolves with the batch's ZedToken once it is back", async () => {
    spicedb.breakWrites();
    const [id] = await appendEach([touch("workspace:w4#viewer@user:ann")]);

    await expect(applier.waitFor(id!, 150)).rejects.toBeInstanceOf(OutboxPendingError);
    expect(applier.appliedThrough).toBeLessThan(id!);
    expect(applier.failing).toBe(true);

    spicedb.heal();
    const zed = await applier.waitFor(id!, 10_000);

    expect(zed).not.toBe("");
    expect(zed).toBe(await store.read.outbox.zedToken(id!));
    expect(applier.appliedThrough).toBe(id);
    expect(applier.failing).toBe(false);
  });

  it("the background loop applies a batch nobody waits for", async () => {
    applier.startBackground();
    const [id] = await appendEach([touch("workspace:w5#viewer@user:ann")]);
    const deadline = Date.now() + 20_000;
    while (!(await store.read.outbox.appliedThrough(id!))) {
      if (Date.now() > deadline) throw new Error("timed out waiting for the background applier");
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(spicedb.reached()).toContainEqual(["touch workspace:w5#viewer@user:ann"]);
  });
});

describe("issue 7: waits bounded by their call, and never beyond the outbox", () => {
  async function until(what: string, condition: () => boolean): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  it("issue 7.1: a batch beyond the newest is UnissuedTokenError, never recorded as applied", async () => {
    const [id] = await appendEach([touch("workspace:w6#viewer@user:ann")]);
    await applier.waitFor(id!);
    await expect(applier.waitFor(id! + 1_000_000)).rejects.toBeInstanceOf(UnissuedTokenError);
    expect(applier.appliedThrough).toBe(id);
    // The next real batch is still waited for.
    spicedb.breakWrites();
    const [next] = await appendEach([touch("workspace:w6#viewer@user:bob")]);
    await expect(applier.waitFor(next!, 100)).rejects.toBeInstanceOf(OutboxPendingError);
  });

  it("issue 7.5: a wait ends when its call's deadline passes (CallAbortedError), or as OutboxPendingError when the call is cancelled", async () => {
    spicedb.breakWrites();
    const [id] = await appendEach([touch("workspace:w7#viewer@user:ann")]);
    for (const reason of ["deadline", "cancelled"] as const) {
      const call = new AbortController();
      const waiting = withCallSignal(call.signal, () => applier.waitFor(id!, 600_000)).catch((err: unknown) => err);
      await until("the wait to start", () => applier.waiting === 1);
      call.abort(new CallAbortedError(reason));
      const err = await waiting;
      expect(err).toBeInstanceOf(reason === "deadline" ? CallAbortedError : OutboxPendingError);
      expect(applier.waiting).toBe(0);
    }
  });

  it("issue 8: a write applied by one pass of a drain is answered without waiting for the passes of the writes behind it", async () => {
    spicedb.hold();
    const [first] = await appendEach([touch("workspace:w9#viewer@user:ann")]);
    const firstAnswered = applier.waitFor(first!, 600_000).then(() => "answered");
    await until("the first pass to reach SpiceDB", () => spicedb.heldWrites === 1);
    // A write behind it (committed meanwhile; on PGlite, right after the first pass) asks the drain for
    // one more pass, and SpiceDB hangs on that pass.
    const appending = appendEach([touch("workspace:w9#viewer@user:bob")]);
    void applier.drain();
    spicedb.holdNextArriving();
    spicedb.release();
    const [second] = await appending;
    const secondAnswered = applier.waitFor(second!, 600_000);
    await until("the second pass to reach SpiceDB", () => spicedb.heldWrites === 1);
    const stillWaiting = new Promise<string>((resolve) => setTimeout(() => resolve("still waiting"), 5_000));
    expect(await Promise.race([firstAnswered, stillWaiting])).toBe("answered");
    expect(applier.appliedThrough).toBe(first);
    spicedb.release();
    expect(await secondAnswered).not.toBe("");
  });

  it("issue 7.5: a drain started inside a call is shared work: the call's deadline does not cut it short", async () => {
    spicedb.hold();
    const [id] = await appendEach([touch("workspace:w8#viewer@user:ann")]);
    const call = new AbortController();
    const waiting = withCallSignal(call.signal, () => applier.waitFor(id!, 600_000)).catch((err: unknown) => err);
    await until("the drain to reach SpiceDB", () => spicedb.heldWrites === 1);
    call.abort(new CallAbortedError("deadline"));
    expect(await waiting).toBeInstanceOf(CallAbortedError);
    // Another caller joins the drain under way (one more pass after it), then SpiceDB answers.
    const joined = applier.drain();
    spicedb.release();
    await joined;
    expect(applier.failing).toBe(false);
    expect(applier.appliedThrough).toBe(id);
  });
});
