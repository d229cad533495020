import { sql, type Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DatabaseTarget } from "../../src/store/connect.js";
import type { Database } from "../../src/store/database.js";
import { Store } from "../../src/store/store.js";
import { databaseKind, freshStore } from "../support/database.js";
import { deferred, kyselyOf, stateAfter } from "./helpers.js";

/*
 * The PGlite dialect is always under test here. With TEST_DATABASE_URL set the
 * behaviours that do not depend on PGlite's single connection also run on the
 * pg driver, which the dialect has to match: the application runs on either.
 */
const drivers: ReadonlyArray<DatabaseTarget["kind"]> = databaseKind === "postgres" ? ["pglite", "postgres"] : ["pglite"];

async function openStore(kind: DatabaseTarget["kind"]): Promise<{ store: Store; dispose: () => Promise<void> }> {
  if (kind === databaseKind) return freshStore();
  const store = await Store.open({ kind: "pglite" });
  await store.migrate();
  return { store, dispose: () => store.close() };
}

describe.each(drivers)("the %s driver", (kind) => {
  let store: Store;
  let dispose: () => Promise<void>;
  let db: Kysely<Database>;
  let n = 0;
  /** A user row no other test uses. */
  const newUser = (name = "user") => {
    n += 1;
    return { id: `${name}-${n}`, email: `${name}-${n}@example.com`, display_name: name };
  };
  const userExists = async (id: string) => (await db.selectFrom("users").select("id").where("id", "=", id).executeTakeFirst()) !== undefined;

  beforeAll(async () => {
    ({ store, dispose } = await openStore(kind));
    db = kyselyOf(store);
  });
  afterAll(async () => {
    await dispose();
  });

  it.runIf(kind === "pglite")("a transaction excludes every other query until it ends", async () => {
    const user = newUser("hidden");
    const wrote = deferred();
    const finish = deferred();
    const events: string[] = [];

    const transaction = db.transaction().execute(async (trx) => {
      await trx.insertInto("users").values(user).execute();
      events.push("transaction wrote");
      wrote.resolve();
      await finish.promise;
      events.push("transaction ends");
      throw new Error("roll back");
    });
    await wrote.promise;

    const outside = db
      .selectFrom("users")
      .select("id")
      .where("id", "=", user.id)
      .execute()
      .then((rows) => (events.push("outside query"), rows));
    expect(await stateAfter(outside, 100)).toBe("pending");

    finish.resolve();
    await expect(transaction).rejects.toThrow("roll back");
    // Had the outside query run on the one connection while the transaction was open, it would have seen the uncommitted row.
    expect(await outside).toEqual([]);
    expect(events).toEqual(["transaction wrote", "transaction ends", "outside query"]);
  });

  it.runIf(kind === "pglite")("queued transactions run one after another, in the order they were started", async () => {
    const events: string[] = [];
    const first = deferred();
    const a = db.transaction().execute(async (trx) => {
      events.push("A begins");
      await first.promise;
      await trx.insertInto("users").values(newUser("a")).execute();
      events.push("A ends");
    });
    const b = db.transaction().execute(async (trx) => {
      events.push("B begins");
      await trx.insertInto("users").values(newUser("b")).execute();
      events.push("B ends");
    });
    expect(await stateAfter(b, 50)).toBe("pending");
    first.resolve();
    await Promise.all([a, b]);
    expect(events).toEqual(["A begins", "A ends", "B begins", "B ends"]);
  });

  it("a transaction that throws is rolled back, the error rethrown, and the connection usable again", async () => {
    const user = newUser("rolled-back");

    await expect(
      db.transaction().execute(async (trx) => {
        await trx.insertInto("users").values(user).execute();
        throw new Error("abort");
      }),
    ).rejects.toThrow("abort");

    expect(await userExists(user.id)).toBe(false);
    const after = newUser("after");
    await db.insertInto("users").values(after).execute();
    expect(await userExists(after.id)).toBe(true);
  });

  it("a failing statement inside a transaction rolls it back and releases the connection", async () => {
    const user = newUser("dup");
    await db.insertInto("users").values(user).execute();
    const other = newUser("other");

    await expect(
      db.transaction().execute(async (trx) => {
        await trx.insertInto("users").values(other).execute();
        await trx.insertInto("users").values({ ...newUser(), email: user.email }).execute();
      }),
    ).rejects.toMatchObject({ code: "23505" });

    expect(await userExists(other.id)).toBe(false);
    await expect(db.selectFrom("users").select("id").where("id", "=", user.id).execute()).resolves.toHaveLength(1);
  });

  it("a failing query outside a transaction releases the connection", async () => {
    await expect(sql`select * from no_such_table`.execute(db)).rejects.toMatchObject({ code: "42P01" });
    await expect(sql`select * from no_such_table where x = ${1}`.execute(db)).rejects.toMatchObject({ code: "42P01" });
    expect((await sql<{ one: number }>`select 1 as one`.execute(db)).rows).toEqual([{ one: 1 }]);
  });

  it("begins transactions with the requested isolation level and access mode", async () => {
    const level = await db
      .transaction()
      .setIsolationLevel("serializable")
      .execute(async (trx) => (await sql<{ transaction_isolation: string }>`show transaction_isolation`.execute(trx)).rows[0]);
    expect(level).toEqual({ transaction_isolation: "serializable" });

    await expect(
      db
        .transaction()
        .setAccessMode("read only")
        .execute((trx) => trx.insertInto("users").values(newUser()).execute()),
    ).rejects.toMatchObject({ code: "25006" }); // read_only_sql_transaction
  });

  describe("savepoints (kysely's controlled transactions)", () => {
    it("rolling back to a savepoint undoes only what came after it; a released savepoint keeps its work", async () => {
      const [kept, undone, afterRollback, released] = [newUser("kept"), newUser("undone"), newUser("after-rollback"), newUser("released")];

      const trx = await db.startTransaction().execute();
      await trx.insertInto("users").values(kept).execute();
      const sp1 = await trx.savepoint("sp1").execute();
      await sp1.insertInto("users").values(undone).execute();
      const back = await sp1.rollbackToSavepoint("sp1").execute();
      await back.insertInto("users").values(afterRollback).execute();
      const sp2 = await back.savepoint("sp2").execute();
      await sp2.insertInto("users").values(released).execute();
      const done = await sp2.releaseSavepoint("sp2").execute();
      await done.commit().execute();

      expect(trx.isCommitted).toBe(true);
      expect(await userExists(kept.id)).toBe(true);
      expect(await userExists(undone.id)).toBe(false);
      expect(await userExists(afterRollback.id)).toBe(true);
      expect(await userExists(released.id)).toBe(true);
    });

    it("rolling back to a savepoint recovers a transaction from a failed statement", async () => {
      const existing = newUser("existing");
      await db.insertInto("users").values(existing).execute();
      const [before, after] = [newUser("before"), newUser("after")];

      const trx = await db.startTransaction().execute();
      await trx.insertInto("users").values(before).execute();
      const sp = await trx.savepoint("attempt").execute();
      await expect(sp.insertInto("users").values({ ...newUser(), email: existing.email }).execute()).rejects.toMatchObject({ code: "23505" });
      const recovered = await sp.rollbackToSavepoint("attempt").execute();
      await recovered.insertInto("users").values(after).execute();
      await recovered.commit().execute();

      expect(await userExists(before.id)).toBe(true);
      expect(await userExists(after.id)).toBe(true);
    });

    it("rolling the whole controlled transaction back undoes its savepoints' work", async () => {
      const user = newUser("gone");
      const trx = await db.startTransaction().execute();
      const sp = await trx.savepoint("sp").execute();
      await sp.insertInto("users").values(user).execute();
      await sp.releaseSavepoint("sp").execute();
      await trx.rollback().execute();

      expect(trx.isRolledBack).toBe(true);
      expect(await userExists(user.id)).toBe(false);
    });
  });

  describe("raw SQL", () => {
    it("a parameterless multi-statement script runs every statement (as migrations do)", async () => {
      await sql`
        create table dialect_script (n integer not null);
        insert into dialect_script values (1), (2);
        insert into dialect_script values (3);
      `.execute(db);

      const { rows } = await sql<{ total: number }>`select sum(n)::int as total from dialect_script`.execute(db);
      expect(rows).toEqual([{ total: 6 }]);
    });

    it("a failing statement in a script undoes the statements before it", async () => {
      await expect(
        sql`
          create table dialect_script_failed (n integer);
          select * from no_such_table;
        `.execute(db),
      ).rejects.toMatchObject({ code: "42P01" });

      const { rows } = await sql<{ exists: boolean }>`select to_regclass('dialect_script_failed') is not null as exists`.execute(db);
      expect(rows).toEqual([{ exists: false }]);
    });

    it.runIf(kind === "pglite")("a script answers with its last statement's rows", async () => {
      const { rows } = await sql<{ n: number }>`
        create temporary table dialect_last (n integer);
        insert into dialect_last values (7), (8);
        select n from dialect_last order by n;
      `.execute(db);
      expect(rows).toEqual([{ n: 7 }, { n: 8 }]);

      const counted = await sql`
        insert into dialect_last values (9), (10);
        update dialect_last set n = n + 1 where n = 10;
      `.execute(db);
      // The last statement's count, not the script's total.
      expect(counted.numAffectedRows).toBe(1n);
    });

    it("parameters are bound, not interpolated", async () => {
      const tricky = "it's a '; drop table users; --";
      const { rows } = await sql<{ value: string; number: number }>`select ${tricky}::text as value, ${41}::int + 1 as number`.execute(db);
      expect(rows).toEqual([{ value: tricky, number: 42 }]);
    });
  });

  describe("numAffectedRows", () => {
    const tag = () => `count-${++n}`;
    const insertTagged = async (label: string, count: number) => {
      const users = Array.from({ length: count }, () => ({ ...newUser(label), display_name: label }));
      return db.insertInto("users").values(users).executeTakeFirst();
    };

    it("counts the rows an insert wrote", async () => {
      expect((await insertTagged(tag(), 3)).numInsertedOrUpdatedRows).toBe(3n);
    });

    it("counts the rows an update changed, and zero when nothing matched", async () => {
      const label = tag();
      await insertTagged(label, 3);
      const all = await db.updateTable("users").set({ display_name: `${label}-x` }).where("display_name", "=", label).executeTakeFirst();
      expect(all.numUpdatedRows).toBe(3n);
      const none = await db.updateTable("users").set({ display_name: "y" }).where("display_name", "=", label).executeTakeFirst();
      expect(none.numUpdatedRows).toBe(0n);
    });

    it("counts the rows a delete removed", async () => {
      const label = tag();
      await insertTagged(label, 2);
      expect((await db.deleteFrom("users").where("display_name", "=", label).executeTakeFirst()).numDeletedRows).toBe(2n);
      expect((await db.deleteFrom("users").where("display_name", "=", label).executeTakeFirst()).numDeletedRows).toBe(0n);
    });

    it("counts only the rows an insert … on conflict do nothing wrote", async () => {
      const user = newUser("conflict");
      await db.insertInto("users").values(user).execute();
      const result = await db
        .insertInto("users")
        .values([user, newUser("conflict")])
        .onConflict((oc) => oc.doNothing())
        .executeTakeFirst();
      expect(result.numInsertedOrUpdatedRows).toBe(1n);
    });

    it("counts the rows of a raw write with parameters, and gives no count for a read", async () => {
      const label = tag();
      await insertTagged(label, 2);
      const write = await sql`update users set display_name = ${`${label}-raw`} where display_name = ${label}`.execute(db);
      expect(write.numAffectedRows).toBe(2n);
      const read = await sql`select * from users where display_name = ${label}`.execute(db);
      expect(read.numAffectedRows).toBeUndefined();
    });
  });

  it.runIf(kind === "pglite")("streams a query's rows in chunks", async () => {
    const label = `stream-${++n}`;
    await db
      .insertInto("users")
      .values(Array.from({ length: 5 }, () => ({ ...newUser(label), display_name: label })))
      .execute();

    const ids: string[] = [];
    for await (const row of db.selectFrom("users").select("id").where("display_name", "=", label).orderBy("id").stream(2)) ids.push(row.id);

    expect(ids).toHaveLength(5);
    expect(ids).toEqual([...ids].sort());
  });
});
