/**
 * Issue 8: `npm run spicedb:serve` prepares a local SpiceDB on Postgres (its
 * own database, created and migrated), serves it with a preshared key on a
 * free loopback port, prints the variables for a sharegraph in remote mode,
 * and stops it on SIGTERM. Skipped (saying why) without the binary or a Postgres.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createRemoteEngine } from "../../src/engine/remote.js";
import { loadSchemaText } from "../../src/engine/schema.js";
import { dropDatabase } from "../../src/engine/spicedb-datastore.js";
import { SPICEDB_BINARY, freshDatastoreUri, realSpiceDb, realSpiceDbTitle } from "../support/spicedb-server.js";

function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Child pids of pid whose command line is `<binary> serve …`. */
function spicedbChildrenOf(pid: number): number[] {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(" ").filter(Boolean).map(Number);
  return children.filter((child) => {
    try {
      return readFileSync(`/proc/${child}/cmdline`, "utf8").split("\0")[1] === "serve";
    } catch {
      return false;
    }
  });
}

describe.skipIf(!realSpiceDb.available)(realSpiceDbTitle("npm run spicedb:serve"), () => {
  const datastoreUri = realSpiceDb.available ? freshDatastoreUri() : "";

  afterAll(async () => {
    if (datastoreUri) await dropDatabase(datastoreUri);
  });

  it("creates and migrates its database, serves SpiceDB with a preshared key, prints how to reach it, and stops on SIGTERM", async () => {
    const root = fileURLToPath(new URL("../..", import.meta.url));
    const cli = spawn(process.execPath, ["--import", "tsx", "src/engine/spicedb-serve-cli.ts", "--datastore", datastoreUri, "--binary", SPICEDB_BINARY, "--pool", "2"], {
      cwd: root,
      env: { ...process.env, LOG_LEVEL: "warn" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    cli.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    cli.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => cli.once("exit", (code) => resolve(code)));
    try {
      const deadline = Date.now() + 60_000;
      while (!out.includes("SPICEDB_INSECURE=true\n") && cli.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const vars = Object.fromEntries(out.trim().split("\n").map((line) => line.split("=", 2) as [string, string]));
      expect(vars, err).toMatchObject({ SHAREGRAPH_ENGINE: "remote", SPICEDB_INSECURE: "true" });
      expect(vars["SPICEDB_ENDPOINT"]).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(err).toContain(`SpiceDB serving on ${vars["SPICEDB_ENDPOINT"]}`);
      expect(err).not.toContain(vars["SPICEDB_TOKEN"]);

      const engine = await createRemoteEngine({ endpoint: vars["SPICEDB_ENDPOINT"]!, token: vars["SPICEDB_TOKEN"]!, tls: "plaintext", timeoutMs: 5_000, maxUpdatesPerWrite: 1000 });
      try {
        await engine.writeSchema(loadSchemaText());
        expect(await engine.readSchema()).toContain("definition dashboard");
      } finally {
        await engine.close();
      }

      const [spicedb] = spicedbChildrenOf(cli.pid!);
      expect(spicedb).toBeDefined();
      cli.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(running(spicedb!)).toBe(false);
    } finally {
      if (cli.exitCode === null) cli.kill("SIGKILL");
    }
  });
});
