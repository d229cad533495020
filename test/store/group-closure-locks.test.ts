import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { Repositories, type Store } from "../../src/store/store.js";
import { databaseKind } from "../support/database.js";
import { deferred, freshStoreEach, kyselyOf, sleep, stateAfter } from "./helpers.js";

/*
 * Issue 8 ("no call waiting behind unrelated writes"): membership changes of
 * different users in one organization refresh the group closure at once; one
 * user's changes, and any change of the nesting, still serialize — else two
 * refreshes could each miss the other's edge and leave a closure row that no
 * membership implies. Only on a real Postgres: PGlite runs one transaction at
 * a time.
 */
describe.runIf(databaseKind === "postgres")("group closure refreshes under concurrency (R1)", () => {
  let store: Store;
  freshStoreEach((s) => (store = s));

  /** Acme: all ⊇ emea ⊇ berlin; ann and bob in berlin, ann also directly in all. */
  async function seed(): Promise<void> {
    await store.transaction(async (tx) => {
      await tx.organizations.insert({ id: "acme", name: "Acme" });
      for (const u of ["ann", "bob", "carol"]) await tx.users.insert({ id: u, email: `${u}@acme.example` });
      for (const g of ["all", "emea", "berlin"]) await tx.groups.insert({ id: g, organization_id: "acme", name: g });
      await tx.groups.addMember("all", { groupId: "emea" });
      await tx.groups.addMember("emea", { groupId: "berlin" });
      await tx.groups.addMember("berlin", { userId: "ann" });
      await tx.groups.addMember("berlin", { userId: "bob" });
      await tx.groups.addMember("all", { userId: "ann" });
      await tx.groups.refreshClosure(["berlin"]);
    });
  }

  /**
   * Opens a transaction that changes one membership and refreshes, then
   * holds it open until released: its pid (to see it wait) and its result.
   */
  function held(change: (tx: Repositories) => Promise<void>) {
    const pid = deferred<number>();
    const refreshed = deferred();
    const release = deferred();
    const done = kyselyOf(store)
      .transaction()
      .execute(async (trx) => {
        const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
        pid.resolve(rows[0]!.pid);
        await change(new Repositories(trx));
        refreshed.resolve();
        await release.promise;
      });
    return { pid: pid.promise, refreshed: refreshed.promise, release: () => release.resolve(), done };
  }

  /**
   * Runs `first` and holds its transaction open, then starts `second`:
   * resolves whether `second` waited on an advisory lock, after both committed.
   */
  async function secondWaitsForFirst(first: (tx: Repositories) => Promise<void>, second: (tx: Repositories) => Promise<void>): Promise<boolean> {
    const a = held(first);
    await a.refreshed;
    const b = held(second);
    const waited = await waitsOnAdvisoryLock(await b.pid);
    a.release();
    await a.done;
    await b.refreshed;
    b.release();
    await b.done;
    return waited;
  }

  async function waitsOnAdvisoryLock(pid: number): Promise<boolean> {
    for (let i = 0; i < 300; i++) {
      const { rows } = await sql<{ waiting: boolean }>`
        select exists (select 1 from pg_locks where pid = ${pid} and locktype = 'advisory' and not granted) as waiting
      `.execute(kyselyOf(store));
      if (rows[0]?.waiting) return true;
      await sleep(10);
    }
    return false;
  }

  /** What group_closure holds for a user, as "group" strings. */
  async function closureOf(userId: string): Promise<string[]> {
    const { rows } = await sql<{ group_id: string }>`select group_id from group_closure where user_id = ${userId} order by group_id`.execute(kyselyOf(store));
    return rows.map((r) => r.group_id);
  }

  it("R1: two users' changes in one organization do not wait for each other", async () => {
    await seed();
    const first = held(async (tx) => {
      await tx.groups.addMember("emea", { userId: "carol" });
      await tx.groups.refreshClosure(["emea"], "carol");
    });
    await first.refreshed;
    // bob leaves berlin while carol's change is still open: it commits without waiting.
    const second = store.transaction(async (tx) => {
      await tx.groups.removeMember("berlin", { userId: "bob" });
      return tx.groups.refreshClosure(["berlin"], "bob");
    });
    expect(await stateAfter(second, 2_000)).toBe("settled");
    expect((await second).removed.map((r) => r.group_id).sort()).toEqual(["all", "berlin", "emea"]);
    first.release();
    await first.done;
    expect(await closureOf("carol")).toEqual(["all", "emea"]);
    expect(await closureOf("bob")).toEqual([]);
  });

  it("R1: one user's two changes serialize: leaving two groups at once leaves no closure row behind", async () => {
    await seed();
    // ann is in berlin (so in emea and all) and directly in all. Each removal alone keeps the other path.
    // The second refresh waits for the first to commit; refreshing in parallel, it would see ann
    // still in berlin and keep her in all.
    const waited = await secondWaitsForFirst(
      async (tx) => {
        await tx.groups.removeMember("berlin", { userId: "ann" });
        await tx.groups.refreshClosure(["berlin"], "ann");
      },
      async (tx) => {
        await tx.groups.removeMember("all", { userId: "ann" });
        await tx.groups.refreshClosure(["all"], "ann");
      },
    );
    expect(waited).toBe(true);
    expect(await closureOf("ann")).toEqual([]);
  });

  it("R1: a change of the nesting waits for a user's refresh in flight, and then sees it", async () => {
    await seed();
    const waited = await secondWaitsForFirst(
      async (tx) => {
        await tx.groups.addMember("berlin", { userId: "carol" });
        await tx.groups.refreshClosure(["berlin"], "carol");
      },
      async (tx) => {
        await tx.groups.removeMember("emea", { groupId: "berlin" });
        await tx.groups.refreshClosure(["emea"]);
      },
    );
    expect(waited).toBe(true);
    // berlin left emea: carol (in berlin) is in berlin alone, ann stays in all directly.
    expect(await closureOf("carol")).toEqual(["berlin"]);
    expect(await closureOf("ann")).toEqual(["all", "berlin"]);
  });
});
