import { randomBytes } from "node:crypto";
import { dropSchema } from "../../src/store/connect.js";
import type { DatabaseTarget } from "../../src/store/connect.js";
import { Store } from "../../src/store/store.js";

/**
 * The database tests run against: PGlite by default, the real Postgres at
 * TEST_DATABASE_URL when set (each store then gets a schema of its own, so
 * test files run in parallel without seeing each other).
 */
export const TEST_DATABASE_URL = process.env["TEST_DATABASE_URL"] || undefined;
export const databaseKind: DatabaseTarget["kind"] = TEST_DATABASE_URL ? "postgres" : "pglite";

let migratedTemplate: Promise<Blob> | undefined;

/**
 * Where a fresh, migrated, empty database can be opened (by an App), and how
 * to clean up after it.
 */
export async function freshTarget(): Promise<{ target: DatabaseTarget; dispose: () => Promise<void> }> {
  if (TEST_DATABASE_URL) {
    const schema = `t_${randomBytes(6).toString("hex")}`;
    return {
      target: { kind: "postgres", url: TEST_DATABASE_URL, schema, poolSize: 5 },
      dispose: () => dropSchema(TEST_DATABASE_URL, schema),
    };
  }
  return { target: { kind: "pglite", loadDataDir: await pgliteTemplate() }, dispose: async () => {} };
}

/** A fresh, migrated, empty store and how to dispose of it. */
export async function freshStore(): Promise<{ store: Store; target: DatabaseTarget; dispose: () => Promise<void> }> {
  const fresh = await freshTarget();
  const store = await Store.open(fresh.target);
  await store.migrate();
  return {
    store,
    target: fresh.target,
    dispose: async () => {
      await store.close();
      await fresh.dispose();
    },
  };
}

/** Creating PGlite runs initdb (~3 s); loading a migrated dump takes well under 1 s. */
function pgliteTemplate(): Promise<Blob> {
  migratedTemplate ??= (async () => {
    const template = await Store.open({ kind: "pglite" });
    await template.migrate();
    const dump = await template.dump();
    await template.close();
    if (!dump) throw new Error("PGlite dump failed");
    return dump;
  })();
  return migratedTemplate;
}
