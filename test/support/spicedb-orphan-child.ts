/**
 * Run by test/engine/supervised.test.ts as a separate Node process (node
 * --import tsx): starts one supervised SpiceDB per orphan guard named on the
 * command line, prints their pids on one line, and waits to be killed. The
 * test then kills this process with SIGKILL and watches the SpiceDBs die
 * with it.
 *
 *   node --import tsx spicedb-orphan-child.ts <binary> <datastore-uri> <pdeathsig|watchdog>...
 */
import { SpiceDbProcess, freePort, type OrphanGuard } from "../../src/engine/spicedb-process.js";
import { createLogger } from "../../src/logger.js";

const [binary, datastoreUri, ...guards] = process.argv.slice(2);
if (!binary || !datastoreUri || guards.length === 0 || guards.some((g) => g !== "pdeathsig" && g !== "watchdog")) {
  console.error("usage: spicedb-orphan-child.ts <binary> <datastore-uri> <pdeathsig|watchdog>...");
  process.exit(2);
}
const pids: number[] = [];
for (const guard of guards) {
  const spicedb = new SpiceDbProcess(
    { binary, datastoreUri, port: await freePort(), presharedKey: "orphan-test-key-0123456789", maxUpdatesPerWrite: 1000, poolSize: 1 },
    createLogger("silent"),
    {},
    guard as OrphanGuard,
  );
  await spicedb.start();
  pids.push(spicedb.pid!);
}
process.stdout.write(`${pids.join(" ")}\n`);
setInterval(() => {}, 60_000);
