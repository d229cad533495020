import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import type { OutboxOp } from "../../src/store/database.js";
import { Repositories, type Store } from "../../src/store/store.js";
import { databaseKind } from "../support/database.js";
import { deferred, freshStoreEach, kyselyOf, sleep, stateAfter } from "./helpers.js";

const touch = (r: string): OutboxOp => ({ o: "t", r });
const remove = (r: string): OutboxOp => ({ o: "d", r });

describe("outbox", () => {
  let store!: Store;
  freshStoreEach((s) => (store = s));

  /** Appends one batch per op list, each in its own transaction; returns their ids. */
  async function appendEach(...batches: OutboxOp[][]): Promise<number[]> {
    const ids: number[] = [];
    for (const ops of batches) ids.push(await store.transaction((tx) => tx.outbox.append(ops)));
    return ids;
  }

  /** A transaction that appends with `append`, then stays open until end(). */
  function openAfterAppend(append: (tx: Repositories) => Promise<number>) {
    const appended = deferred<number>();
    const mayEnd = deferred();
    const done = store.transaction(async (tx) => {
      const id = await append(tx);
      appended.resolve(id);
      await mayEnd.promise;
      return id;
    });
    return { appended: appended.promise, end: () => mayEnd.resolve(), done };
  }

  describe("append", () => {
    it("stores the ops and their count and returns the new id", async () => {
      const ops = [touch("document:q3#viewer@user:ann"), remove("document:q3#editor@user:bob")];

      const id = await store.transaction((tx) => tx.outbox.append(ops));

      expect(id).toEqual(expect.any(Number));
      const [row] = await store.read.outbox.pending(10);
      expect(row).toMatchObject({ id, ops, op_count: 2, applied_at: null, attempts: 0, last_error: null, zed_token: null });
      expect(row?.created_at).toBeInstanceOf(Date);
    });

    it("gives increasing ids to batches appended one after another", async () => {
      const ids = await appendEach([touch("a")], [touch("b")], [touch("c")]);
      expect(ids).toEqual([...ids].sort((x, y) => x - y));
      expect(new Set(ids).size).toBe(3);
      expect(await store.read.outbox.maxId()).toBe(ids[2]);
    });

    it("is undone with its transaction", async () => {
      await expect(
        store.transaction(async (tx) => {
          await tx.outbox.append([touch("a")]);
          throw new Error("abort");
        }),
      ).rejects.toThrow("abort");
      expect(await store.read.outbox.pending(10)).toEqual([]);
      expect(await store.read.outbox.maxId()).toBe(0);
    });
  });

  describe("appendAndCommit (the writing transaction's last statement)", () => {
    it("stores the batch with the transaction's other rows, and both are committed", async () => {
      const id = await store.transaction(async (tx) => {
        await tx.users.insert({ id: "ann", email: "ann@example.com" });
        return tx.outbox.appendAndCommit([touch("user:ann")]);
      });
      expect((await store.read.outbox.pending(10)).map((r) => [r.id, r.ops])).toEqual([[id, [touch("user:ann")]]]);
      expect(await store.read.users.get("ann")).toMatchObject({ id: "ann" });
    });

    it("keeps hostile text in the ops exactly: quotes, backslashes, placeholders and a statement of its own are data, not SQL", async () => {
      const hostile = [
        touch(`report:q3#viewer@user:x'); drop table outbox; --`),
        touch(String.raw`folder:a\\'b#editor@user:E'\x27' $1 $2::jsonb`),
        remove(String.raw`group:g#member@user:ünïcødé\n\u0041"quoted"` + "\n"),
      ];
      const id = await store.transaction((tx) => tx.outbox.appendAndCommit(hostile));
      const [row] = await store.read.outbox.pending(10);
      expect(row).toMatchObject({ id, ops: hostile, op_count: 3 });
    });

    it.runIf(databaseKind === "postgres")("commits with the statement: the order lock is free, and the batch visible, before kysely's own COMMIT", async () => {
      const writing = openAfterAppend((tx) => tx.outbox.appendAndCommit([touch("a")]));
      const id = await writing.appended;
      // Another transaction takes the order lock at once and sees the batch: the first one has ended.
      const other = await store.transaction((tx) => tx.outbox.append([touch("b")]));
      expect(other).toBeGreaterThan(id);
      expect((await store.read.outbox.pending(10)).map((r) => r.id)).toEqual([id, other]);
      writing.end();
      expect(await writing.done).toBe(id);
    });

    it.runIf(databaseKind === "postgres")("refuses a statement after it (it would run outside the transaction), naming the rule", async () => {
      await expect(
        store.transaction(async (tx) => {
          await tx.outbox.appendAndCommit([touch("a")]);
          await tx.users.insert({ id: "late", email: "late@example.com" });
        }),
      ).rejects.toThrow(/after a statement that committed its transaction .* must be the last statement/);
      expect(await store.read.users.get("late")).toBeUndefined();
      // The connection goes back to the pool in a clean state: the next transaction works as usual.
      const id = await store.transaction((tx) => tx.outbox.appendAndCommit([touch("b")]));
      expect((await store.read.outbox.pending(10)).map((r) => r.id)).toContain(id);
    });

    it("a failing statement before it rolls the transaction back as usual", async () => {
      await expect(
        store.transaction(async (tx) => {
          await tx.users.insert({ id: "dup", email: "dup@example.com" });
          await tx.users.insert({ id: "dup", email: "dup@example.com" });
          return tx.outbox.appendAndCommit([touch("user:dup")]);
        }),
      ).rejects.toThrow();
      expect(await store.read.outbox.pending(10)).toEqual([]);
      expect(await store.read.users.get("dup")).toBeUndefined();
    });
  });

  describe("pendingWithNewest and markAppliedAndCommit (the applier's reads and last write)", () => {
    it("reads the newest id and the oldest pending batches in one statement, empty or not", async () => {
      expect(await store.read.outbox.pendingWithNewest(10)).toEqual({ newest: 0, rows: [] });
      const [a, b, c] = await appendEach([touch("a")], [touch("b")], [touch("c")]);
      await store.read.outbox.markApplied(a!, "token-a");
      const { newest, rows } = await store.read.outbox.pendingWithNewest(1);
      expect(newest).toBe(c);
      expect(rows).toEqual([expect.objectContaining({ id: b, ops: [touch("b")], applied_at: null })]);
      await store.read.outbox.markAppliedMany([b!, c!], "token-bc");
      expect(await store.read.outbox.pendingWithNewest(10)).toEqual({ newest: c, rows: [] });
    });

    it("marks batches applied with the token as the applying transaction's last statement, and commits", async () => {
      const [a, b, c] = await appendEach([touch("a")], [touch("b")], [touch("c")]);
      await store.transaction(async (tx) => {
        await tx.outbox.lockForApply();
        await tx.outbox.markAppliedAndCommit([a!, b!], "token-ab");
      });
      expect((await store.read.outbox.pending(10)).map((r) => r.id)).toEqual([c]);
      expect(await store.read.outbox.zedToken(b!)).toBe("token-ab");
      // The apply lock is free again: another applier takes it at once.
      await store.transaction((tx) => tx.outbox.lockForApply());
    });
  });

  describe("pending", () => {
    it("lists unapplied batches in id order, up to the limit and the given id", async () => {
      const [a, b, c, d] = await appendEach([touch("a")], [touch("b")], [touch("c")], [touch("d")]);
      await store.read.outbox.markApplied(b!, "token-b");

      expect((await store.read.outbox.pending(10)).map((r) => r.id)).toEqual([a, c, d]);
      expect((await store.read.outbox.pending(2)).map((r) => r.id)).toEqual([a, c]);
      expect((await store.read.outbox.pending(10, c)).map((r) => r.id)).toEqual([a, c]);
      expect((await store.read.outbox.pending(10, a! - 1)).map((r) => r.id)).toEqual([]);
    });
  });

  describe("markApplied and appliedThrough", () => {
    it("records the token and applied time and clears the last error", async () => {
      const [id] = await appendEach([touch("a")]);
      await store.read.outbox.markFailed(id!, "spicedb unavailable");

      await store.read.outbox.markApplied(id!, "zed-1");

      expect(await store.read.outbox.pending(10)).toEqual([]);
      expect(await store.read.outbox.zedToken(id!)).toBe("zed-1");
      const [row] = await store.read.all("outbox");
      expect(row).toMatchObject({ id, zed_token: "zed-1", last_error: null, attempts: 1 });
      expect(row?.applied_at).toBeInstanceOf(Date);
    });

    it("appliedThrough(id) is true only when every batch up to and including id is applied", async () => {
      const [a, b, c] = await appendEach([touch("a")], [touch("b")], [touch("c")]);
      expect(await store.read.outbox.appliedThrough(0)).toBe(true);
      expect(await store.read.outbox.appliedThrough(a!)).toBe(false);

      await store.read.outbox.markApplied(b!, "zed-b");
      expect(await store.read.outbox.appliedThrough(b!)).toBe(false); // a, before it, is not

      await store.read.outbox.markApplied(a!, "zed-a");
      expect(await store.read.outbox.appliedThrough(a!)).toBe(true);
      expect(await store.read.outbox.appliedThrough(b!)).toBe(true);
      expect(await store.read.outbox.appliedThrough(c!)).toBe(false);
    });

    it("zedToken is null for unapplied and unknown batches", async () => {
      const [id] = await appendEach([touch("a")]);
      expect(await store.read.outbox.zedToken(id!)).toBeNull();
      expect(await store.read.outbox.zedToken(id! + 100)).toBeNull();
    });
  });

  describe("markFailed", () => {
    it("counts attempts, keeps the latest error truncated to 2000 characters, and leaves the batch pending", async () => {
      const [id] = await appendEach([touch("a")]);

      await store.read.outbox.markFailed(id!, "first");
      await store.read.outbox.markFailed(id!, "x".repeat(5000));

      const [row] = await store.read.outbox.pending(10);
      expect(row).toMatchObject({ id, attempts: 2, applied_at: null });
      expect(row?.last_error).toBe("x".repeat(2000));
    });
  });

  describe("status", () => {
    it("is empty for an empty outbox", async () => {
      expect(await store.read.outbox.status()).toEqual({ pending: 0, lastApplied: 0, oldestPendingError: null, oldestPendingAttempts: 0 });
    });

    it("counts pending batches and reports the highest applied id and the oldest pending batch's failure", async () => {
      const [a, b, c] = await appendEach([touch("a")], [touch("b")], [touch("c")]);
      await store.read.outbox.markApplied(a!, "zed-a");
      await store.read.outbox.markFailed(b!, "boom");
      await store.read.outbox.markFailed(b!, "boom again");
      await store.read.outbox.markFailed(c!, "later failure");

      expect(await store.read.outbox.status()).toEqual({
        pending: 2,
        lastApplied: a,
        oldestPendingError: "boom again",
        oldestPendingAttempts: 2,
      });

      await store.read.outbox.markApplied(c!, "zed-c");
      expect(await store.read.outbox.status()).toMatchObject({ pending: 1, lastApplied: c });
    });
  });

  describe("markAppliedThrough", () => {
    it("marks every pending batch up to the id applied with the token, leaving already-applied and later ones alone", async () => {
      const [a, b, c, d] = await appendEach([touch("a")], [touch("b")], [touch("c")], [touch("d")]);
      await store.read.outbox.markApplied(a!, "zed-a");
      await store.read.outbox.markFailed(b!, "boom");

      await store.read.outbox.markAppliedThrough(c!, "zed-rebuild");

      expect(await store.read.outbox.zedToken(a!)).toBe("zed-a");
      expect(await store.read.outbox.zedToken(b!)).toBe("zed-rebuild");
      expect(await store.read.outbox.zedToken(c!)).toBe("zed-rebuild");
      expect((await store.read.outbox.pending(10)).map((r) => r.id)).toEqual([d]);
      expect((await store.read.all("outbox")).find((r) => r.id === b)?.last_error).toBeNull();
      expect(await store.read.outbox.appliedThrough(c!)).toBe(true);
    });
  });

  describe("prune", () => {
    it("deletes applied batches older than the cutoff but never pending ones nor the newest batch", async () => {
      const [a, b, c, d] = await appendEach([touch("a")], [touch("b")], [touch("c")], [touch("d")]);
      await store.read.outbox.markApplied(a!, "zed-a");
      await store.read.outbox.markApplied(c!, "zed-c");
      await store.read.outbox.markApplied(d!, "zed-d");

      expect(await store.read.outbox.prune(new Date(Date.now() - 60_000))).toBe(0);
      const pruned = await store.read.outbox.prune(new Date(Date.now() + 60_000));

      expect(pruned).toBe(2);
      expect((await store.read.all("outbox")).map((r) => r.id).sort((x, y) => x - y)).toEqual([b, d]);
      // The newest batch stays so that maxId, and the ids after it, never go back.
      expect(await store.read.outbox.maxId()).toBe(d);
      expect(await store.read.outbox.status()).toMatchObject({ pending: 1, lastApplied: d });
    });

    it("keeps ids increasing after everything older was pruned", async () => {
      const [a, b] = await appendEach([touch("a")], [touch("b")]);
      await store.read.outbox.markAppliedThrough(b!, "zed");
      await store.read.outbox.prune(new Date(Date.now() + 60_000));
      expect((await store.read.all("outbox")).map((r) => r.id)).toEqual([b]);

      const [c] = await appendEach([touch("c")]);
      expect(c).toBeGreaterThan(b!);
      expect(c).toBeGreaterThan(a!);
    });
  });

  describe("ids follow commit order", () => {
    it("a transaction that began earlier but appends after another commits gets the greater id", async () => {
      const aWrote = deferred();
      const bCommitted = deferred();
      const commits: string[] = [];

      const a = store.transaction(async (tx) => {
        await tx.users.insert({ id: "ann", email: "ann@example.com" });
        aWrote.resolve();
        await bCommitted.promise;
        return tx.outbox.append([touch("user:ann")]);
      });
      const aDone = a.then((id) => (commits.push("A"), id));

      if (databaseKind === "postgres") {
        // Truly concurrent: B begins while A is open, appends and commits first.
        await aWrote.promise;
        const bId = await store.transaction(async (tx) => {
          await tx.users.insert({ id: "bob", email: "bob@example.com" });
          return tx.outbox.append([touch("user:bob")]);
        });
        commits.push("B");
        bCommitted.resolve();
        const aId = await aDone;

        expect(commits).toEqual(["B", "A"]);
        expect(aId).toBeGreaterThan(bId);
      } else {
        // PGlite has one connection and the dialect serializes transactions:
        // B cannot begin until A has committed, so it appends after A.
        await aWrote.promise;
        let bBegan = false;
        const b = store.transaction(async (tx) => {
          bBegan = true;
          return tx.outbox.append([touch("user:bob")]);
        });
        const bDone = b.then((id) => (commits.push("B"), id));
        expect(await stateAfter(bDone, 100)).toBe("pending");
        expect(bBegan).toBe(false);

        bCommitted.resolve();
        const [aId, bId] = await Promise.all([aDone, bDone]);

        expect(commits).toEqual(["A", "B"]);
        expect(bId).toBeGreaterThan(aId);
      }
      // The applier sees the batches in commit order.
      expect((await store.read.outbox.pending(10)).map((r) => r.ops[0]?.r)).toEqual(commits.map((c) => (c === "A" ? "user:ann" : "user:bob")));
    });

    it.runIf(databaseKind === "postgres")(
      "a transaction appending while another holds the order lock waits for that one to commit, and gets the greater id",
      async () => {
        const a = openAfterAppend((tx) => tx.outbox.append([touch("a")]));
        const aId = await a.appended;

        const bPid = deferred<number>();
        const b = kyselyOf(store)
          .transaction()
          .execute(async (trx) => {
            const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
            bPid.resolve(rows[0]!.pid);
            return new Repositories(trx).outbox.append([touch("b")]);
          });
        // B is blocked on the order lock, not merely slow: Postgres shows its lock request as waiting.
        await waitUntilBlocked(await bPid.promise);
        expect(await stateAfter(b, 50)).toBe("pending");
        // Meanwhile neither batch is visible: a reader never sees a later id before an earlier one commits.
        expect(await store.read.outbox.pending(10)).toEqual([]);
        // And B has drawn no id yet: ids are drawn under the lock, so they follow commit order.
        const { rows: drawn } = await sql<{ last: string }>`select pg_sequence_last_value(pg_get_serial_sequence('outbox', 'id')::regclass) as last`.execute(kyselyOf(store));
        expect(Number(drawn[0]!.last)).toBe(aId);

        a.end();
        expect(await a.done).toBe(aId);
        expect(await b).toBeGreaterThan(aId);
      },
    );

    async function waitUntilBlocked(pid: number): Promise<void> {
      for (let i = 0; i < 500; i++) {
        const { rows } = await sql<{ waiting: boolean }>`
          select exists (select 1 from pg_locks where pid = ${pid} and locktype = 'advisory' and not granted) as waiting
        `.execute(kyselyOf(store));
        if (rows[0]?.waiting) return;
        await sleep(10);
      }
      throw new Error("the second transaction never waited on the order lock");
    }
  });

  it("20 concurrent appends get 20 distinct, increasing ids and no row is lost", async () => {
    const ids = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        store.transaction(async (tx) => {
          await tx.users.insert({ id: `user-${i}`, email: `user-${i}@example.com` });
          return tx.outbox.append([touch(`user:user-${i}`)]);
        }),
      ),
    );

    expect(new Set(ids).size).toBe(20);
    const rows = await store.read.outbox.pending(100);
    expect(rows.map((r) => r.id)).toEqual([...ids].sort((x, y) => x - y));
    expect(rows.map((r) => r.ops[0]?.r).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `user:user-${i}`).sort());
    const sorted = rows.map((r) => r.id);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]).toBeGreaterThan(sorted[i - 1]!);
    expect(await store.read.outbox.status()).toMatchObject({ pending: 20 });
  });
});
