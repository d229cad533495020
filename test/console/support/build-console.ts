import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/**
 * Vitest global setup: builds dist/console when it is missing or older than
 * its sources (scripts/build-if-stale.js --console; nothing to do otherwise),
 * once before any test file runs, so browser tests in parallel files never
 * build it at the same time.
 */
export default function setup(): void {
  const root = fileURLToPath(new URL("../../../", import.meta.url));
  const result = spawnSync(process.execPath, ["scripts/build-if-stale.js", "--console"], { cwd: root, stdio: "inherit" });
  if (result.status !== 0) throw new Error(`building the console failed (scripts/build-if-stale.js --console exited ${result.status})`);
}
