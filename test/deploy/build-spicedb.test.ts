/**
 * Issue 8: .ci/build-spicedb (npm run spicedb:build) builds SpiceDB into
 * .spicedb/bin/spicedb. Each case runs the script in a scratch copy of the
 * project layout, so the real build output is never touched and nothing is
 * built here (a build takes minutes).
 */
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { SPICEDB_VERSION } from "../../src/engine/spicedb-config.js";
import { SPICEDB_BINARY, realSpiceDb } from "../support/spicedb-server.js";

const SCRIPT = fileURLToPath(new URL("../../.ci/build-spicedb", import.meta.url));
const hasBinary = realSpiceDb.available || !realSpiceDb.reason.startsWith("no SpiceDB binary");

/** The tools the script uses, found on this machine's PATH. */
const TOOLS = ["bash", "env", "dirname", "cat", "mktemp", "date", "mkdir", "mv", "rm"];

/** A scratch project with .ci/build-spicedb, and a tools/ directory to use as a PATH without Go; returns its root. */
function scratch(): string {
  const root = mkdtempSync(join(tmpdir(), "sharegraph-build-spicedb-"));
  mkdirSync(join(root, ".ci"));
  copyFileSync(SCRIPT, join(root, ".ci", "build-spicedb"));
  mkdirSync(join(root, "tools"));
  for (const tool of TOOLS) {
    const found = (process.env["PATH"] ?? "").split(delimiter).map((dir) => join(dir, tool)).find((path) => existsSync(path));
    if (found) symlinkSync(found, join(root, "tools", tool));
  }
  return root;
}

/** Runs the scratch copy with only the scratch tools on PATH (so: no Go). */
function run(root: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(join(root, ".ci", "build-spicedb"), [], { env: { PATH: join(root, "tools"), HOME: root }, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe(".ci/build-spicedb", () => {
  const roots: string[] = [];
  const project = () => {
    const root = scratch();
    roots.push(root);
    return root;
  };

  afterEach(() => {
    for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
  });

  it.skipIf(!hasBinary)(`does nothing when .spicedb/bin/spicedb already is ${SPICEDB_VERSION} (no Go needed)`, async () => {
    const root = project();
    mkdirSync(join(root, ".spicedb", "bin"), { recursive: true });
    symlinkSync(SPICEDB_BINARY, join(root, ".spicedb", "bin", "spicedb"));
    const result = await run(root);
    expect(result).toMatchObject({ code: 0, stdout: `SpiceDB ${SPICEDB_VERSION} is already built: ${join(root, ".spicedb", "bin", "spicedb")}\n` });
  });

  it("without Go, fails and says what to install", async () => {
    const result = await run(project());
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("error: Go is not installed (no 'go' on PATH).");
    expect(result.stderr).toContain("install Go 1.26.6 or later");
  });

  it("a binary of another version (here: one that prints no version) is rebuilt, not trusted", async () => {
    const root = project();
    mkdirSync(join(root, ".spicedb", "bin"), { recursive: true });
    copyFileSync("/bin/true", join(root, ".spicedb", "bin", "spicedb"));
    const result = await run(root);
    expect(result.stdout).toContain(`found an unusable binary at ${join(root, ".spicedb", "bin", "spicedb")}; building ${SPICEDB_VERSION}`);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("Go is not installed");
  });
});
