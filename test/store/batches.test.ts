/**
 * Rebuild reads every table in batches through a cursor, so the gateway's
 * memory is bounded by a batch, not by the data: each row exactly once, all
 * of the transaction's snapshot (rows committed meanwhile are not seen).
 */
import { describe, expect, it } from "vitest";
import type { Store } from "../../src/store/store.js";
import { databaseKind } from "../support/database.js";
import { freshStoreEach } from "./helpers.js";

describe("Repositories.batches (a cursor inside one transaction)", () => {
  let store!: Store;
  freshStoreEach((s) => (store = s));

  it("yields every row once, in batches of at most the size asked for", async () => {
    await store.transaction(async (tx) => {
      for (let i = 0; i < 23; i++) await tx.users.insert({ id: `u${i}`, email: `u${i}@acme.example` });
    });
    const sizes: number[] = [];
    const ids: string[] = [];
    await store.transaction(async (tx) => {
      for await (const rows of tx.batches("users", 5)) {
        sizes.push(rows.length);
        ids.push(...rows.map((r) => r.id));
      }
    });
    expect(sizes).toEqual([5, 5, 5, 5, 3]);
    expect(ids.sort()).toEqual(Array.from({ length: 23 }, (_, i) => `u${i}`).sort());
  });

  // PGlite has one connection: another transaction could only begin after this one ends.
  it.runIf(databaseKind === "postgres")("reads the transaction's snapshot: rows committed by others after it began are not seen", async () => {
    await store.transaction(async (tx) => {
      for (let i = 0; i < 4; i++) await tx.users.insert({ id: `a${i}`, email: `a${i}@acme.example` });
    });
    const seen = await store.transaction(async (tx) => {
      const ids: string[] = [];
      for await (const rows of tx.batches("users", 2)) {
        ids.push(...rows.map((r) => r.id));
        if (ids.length === 2) await store.transaction((other) => other.users.insert({ id: "late", email: "late@acme.example" }));
      }
      return ids;
    }, "repeatable read");
    expect(seen.sort()).toEqual(["a0", "a1", "a2", "a3"]);
  });

  it("an empty table yields nothing, and the cursor can be opened again in the same transaction", async () => {
    const counts = await store.transaction(async (tx) => {
      const out: number[] = [];
      for (let round = 0; round < 2; round++) {
        let n = 0;
        for await (const rows of tx.batches("groups", 10)) n += rows.length;
        out.push(n);
      }
      return out;
    });
    expect(counts).toEqual([0, 0]);
  });
});
