import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Prints which engines ran (and why a real SpiceDB server was skipped).
    // Then builds the console (dist/console) when stale, for the browser tests in test/console.
    globalSetup: ["test/support/engines-report.ts", "test/console/support/build-console.ts"],
    // Each file starts real servers (PGlite, embedded SpiceDB); forks keep
    // their native memory apart and let a file's exit free it.
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
  },
});
