import { App } from "./app.js";
import { ConfigError, loadConfig } from "./config.js";
import { loadDemo } from "./demo.js";

/** Reads the config, creates the app, serves until SIGINT/SIGTERM, then stops once. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env, process.argv.slice(2));
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const app = await App.create(config, config.demo ? { afterIndexReady: (domain, log) => loadDemo(domain, log, config.platformAdmins[0]) } : {});
  // Listen first: while the index is prepared, health says NOT_SERVING and reads say UNAVAILABLE.
  await app.start();
  let signals = 0;
  const { shutdownGraceMs, shutdownTimeoutMs } = config.transport;
  const stop = (signal: string) => {
    if (++signals > 1) {
      app.log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    app.log.info({ signal, graceMs: shutdownGraceMs, timeoutMs: shutdownTimeoutMs }, "shutting down");
    // Whatever hangs (a database that no longer answers, a stuck close), the process ends within SHUTDOWN_TIMEOUT_MS.
    setTimeout(() => {
      app.log.error({ timeoutMs: shutdownTimeoutMs }, "shutdown did not finish within SHUTDOWN_TIMEOUT_MS; exiting");
      process.exit(1);
    }, shutdownTimeoutMs);
    app.stop(shutdownGraceMs).then(
      () => process.exit(0),
      (err: unknown) => {
        app.log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  try {
    await app.ready;
  } catch {
    // Logged by the App. A shutdown that began meanwhile ends the process itself.
    if (signals > 0) return;
    await app.stop(0);
    process.exit(1);
  }
}

main().catch((err: unknown) => {
  console.error("sharegraph failed to start:", err instanceof Error ? err.message : err);
  process.exit(1);
});
