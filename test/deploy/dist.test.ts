/**
 * Issue 8: the built server (`npm run build` → dist/, `npm start`) must find
 * the embedded engine's worker, a plain JavaScript file that tsc copies
 * (allowJs) beside the module that starts it.
 *
 * Always: the build's own configuration emits it there. With TEST_DIST=1
 * (`.ci/run` sets it after `npm run build`; building here would add tsc's
 * ~15 s of CPU to every `npm test`): `node dist/main.js` with the default
 * engine — embedded, in its thread — serves, says so, answers a check and
 * serves the admin console (dist/console, built by Vite in the same step).
 */
import { existsSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { DirectoryService } from "../../src/gen/sharegraph/v1/directory_service_pb.js";
import { PermissionService } from "../../src/gen/sharegraph/v1/permission_service_pb.js";
import { spawnServer } from "../support/process.js";
import { bearer } from "../support/server.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const at = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const TEST_DIST = process.env["TEST_DIST"] === "1";

describe("the build (npm run build → dist/)", () => {
  it("emits the worker (src/engine/embedded-worker.js) as dist/engine/embedded-worker.js, beside dist/engine/threaded.js that starts it", () => {
    const parsed = ts.getParsedCommandLineOfConfigFile(at("tsconfig.build.json"), {}, {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
      },
    });
    expect(parsed?.errors).toEqual([]);
    expect(parsed?.options.noEmit).toBe(false);
    expect(parsed?.options.allowJs).toBe(true);
    expect(parsed?.fileNames).toContain(at("src/engine/embedded-worker.js"));
    expect(parsed?.fileNames).toContain(at("src/engine/threaded.ts"));
    expect(parsed?.options.rootDir).toBe(at("src").replace(/\/$/, ""));
    expect(parsed?.options.outDir).toBe(at("dist").replace(/\/$/, ""));
  });

  it.skipIf(!TEST_DIST)("node dist/main.js serves with the embedded engine in its thread and answers a check (TEST_DIST=1, after npm run build)", async () => {
    const worker = at("dist/engine/embedded-worker.js");
    expect(existsSync(worker), `${worker} is missing: run npm run build first`).toBe(true);
    expect(statSync(worker).mtimeMs, "dist/ is older than src/: run npm run build again").toBeGreaterThanOrEqual(statSync(at("src/engine/embedded-worker.js")).mtimeMs);

    const key = "dist-admin-key-0123456789";
    const server = await spawnServer({ SHAREGRAPH_API_KEYS: `${key}:admin` }, { dist: true });
    try {
      expect(server.lines.find((l) => l["msg"] === "embedded SpiceDB runs in a worker thread")?.["threadId"]).toBeGreaterThan(0);
      const transport = createGrpcTransport({ baseUrl: server.baseUrl, interceptors: [bearer(key)] });
      const directory = createClient(DirectoryService, transport);
      await directory.createUser({ actor: "admin", userId: "alice", email: "alice@acme.example" });
      await directory.createUser({ actor: "admin", userId: "bob", email: "bob@acme.example" });
      await directory.createOrganization({ actor: "admin", organizationId: "acme", name: "Acme", adminUserIds: ["alice"] });
      const permission = createClient(PermissionService, transport);
      const check = (userId: string) =>
        permission.checkPermission({ resource: { type: "organization", id: "acme" }, permission: "manage", subject: { type: "user", id: userId, relation: "" } });
      expect((await check("alice")).allowed).toBe(true);
      expect((await check("bob")).allowed).toBe(false);
      const health = await fetch(`${server.baseUrl}/healthz`);
      expect(health.status).toBe(200);

      // Issue 11: the build serves the admin console on the same port, with the script it names.
      const page = await fetch(`${server.baseUrl}/console/`);
      expect(page.status).toBe(200);
      expect(page.headers.get("content-type")).toMatch(/^text\/html/);
      const html = await page.text();
      const script = /<script[^>]+src="([^"]+\.js)"/.exec(html)?.[1];
      expect(script, `no script in dist/console/index.html: ${html.slice(0, 300)}`).toMatch(/^\/console\/assets\//);
      const asset = await fetch(new URL(script!, server.baseUrl));
      expect(asset.status).toBe(200);
      expect(asset.headers.get("content-type")).toMatch(/^text\/javascript/);
    } finally {
      await server.dispose();
    }
  });
});

if (!TEST_DIST) console.log(`test/deploy/dist.test.ts: node dist/main.js not started (set TEST_DIST=1 after npm run build in ${ROOT}; .ci/run does)`);
