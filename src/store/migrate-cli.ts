import { join } from "node:path";
import { ConfigError, loadConfig } from "../config.js";
import { Store } from "./store.js";

/** `npm run migrate`: brings the configured database up to date and exits. */
async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const store = await Store.open(
    config.database.kind === "postgres"
      ? { kind: "postgres", url: config.database.url, poolSize: 1 }
      : { kind: "pglite", dataDir: join(config.dataDir, "pglite") },
  );
  try {
    const { applied } = await store.migrate();
    console.log(applied.length > 0 ? `applied: ${applied.join(", ")}` : "already up to date");
  } finally {
    await store.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? err.message : `migration failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
