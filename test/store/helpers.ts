import type { Kysely } from "kysely";
import { afterEach, beforeEach } from "vitest";
import type { DatabaseTarget, OpenDatabase } from "../../src/store/connect.js";
import type { Database } from "../../src/store/database.js";
import type { Store } from "../../src/store/store.js";
import { freshStore } from "../support/database.js";

/**
 * The kysely handle behind a store. Store tests reach below the repositories
 * (raw SQL, catalog queries, the migrator); the store keeps it private.
 */
export function kyselyOf(store: Store): Kysely<Database> {
  return (store as unknown as { readonly opened: OpenDatabase }).opened.db;
}

/** The schema a test database lives in, when it has one of its own (Postgres). */
export function schemaOf(target: DatabaseTarget): string | undefined {
  return target.kind === "postgres" ? target.schema : undefined;
}

export interface Deferred<T = void> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
}

/** A promise settled from outside: the gates tests use to interleave transactions. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Settles to "pending" if the promise has not settled within `ms`. */
export async function stateAfter(promise: Promise<unknown>, ms: number): Promise<"pending" | "settled"> {
  return Promise.race([promise.then(() => "settled" as const, () => "settled" as const), sleep(ms).then(() => "pending" as const)]);
}

/** A fresh, migrated store for each test of the enclosing describe, handed to `use`, disposed after. */
export function freshStoreEach(use: (store: Store) => void): void {
  let dispose: (() => Promise<void>) | undefined;
  beforeEach(async () => {
    const fresh = await freshStore();
    dispose = fresh.dispose;
    use(fresh.store);
  });
  afterEach(async () => {
    await dispose?.();
  });
}
