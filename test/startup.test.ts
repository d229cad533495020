/**
 * Issue 10, the first hour: what a person meets when they start sharegraph.
 * The demo answers correctly at once (a default-consistency read right after
 * start-up sees the demo), a second server on the same data directory is
 * refused by name, a port in use names SHAREGRAPH_ADDR, and --demo works
 * whatever SHAREGRAPH_PLATFORM_ADMINS says. Real servers: in this process,
 * and as processes (`node --import tsx src/main.ts`, as `npm run dev`).
 */
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadDemo } from "../src/demo.js";
import { Decision } from "../src/gen/sharegraph/v1/permission_service_pb.js";
import { spawnServer } from "./support/process.js";
import { startTestServer } from "./support/server.js";

const ADMIN_KEY = "startup-admin-key-0123456789";
const KEYS = { SHAREGRAPH_API_KEYS: `${ADMIN_KEY}:admin;name=tests` };
const dashboard = (id: string) => ({ type: "dashboard", id });
const user = (id: string) => ({ type: "user", id });

/** Liveness bounds (it starts at all, it fails at all), for a loaded 2-core machine; nothing measures speed. */
const SLOW = 240_000;

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** CheckPermission over Connect JSON (curl's view), at the default consistency. */
async function check(baseUrl: string, resource: { type: string; id: string }, permission: string, subject: { type: string; id: string }) {
  const res = await fetch(`${baseUrl}/sharegraph.v1.PermissionService/CheckPermission`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_KEY}` },
    body: JSON.stringify({ resource, permission, subject }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

describe("issue 10: the demo answers correctly at once", () => {
  it("a minimize_latency read right after start-up sees the whole demo, even if a read pinned a snapshot during the load", async () => {
    const server = await startTestServer({
      // Reads may keep a pinned snapshot for a minute: start-up must not leave them on one from before the demo.
      env: { READ_MAX_STALENESS_MS: "60000" },
      overrides: {
        afterIndexReady: async (domain, log) => {
          // A read during start-up pins the snapshot of that moment (before the demo).
          const early = await domain.permissions.check(
            { resource: dashboard("q3-revenue"), permission: "edit", subject: user("dave") },
            { kind: "minimize_latency" },
          );
          expect(early.allowed).toBe(false);
          await loadDemo(domain, log);
        },
      },
    });
    cleanup.push(() => server.stop());
    const c = server.clients();
    const dave = await c.permission.checkPermission({ resource: dashboard("q3-revenue"), permission: "edit", subject: user("dave") });
    const bob = await c.permission.checkPermission({ resource: dashboard("q3-revenue"), permission: "view", subject: user("bob") });
    const bobEdits = await c.permission.checkPermission({ resource: dashboard("q3-revenue"), permission: "edit", subject: user("bob") });
    expect([dave.decision, bob.decision, bobEdits.decision]).toEqual([Decision.ALLOWED, Decision.ALLOWED, Decision.DENIED]);
  }, SLOW);

  it("a process started with --demo and SHAREGRAPH_PLATFORM_ADMINS=root loads the demo and answers it at once, denials in the JSON", async () => {
    const server = await spawnServer({ ...KEYS, SHAREGRAPH_PLATFORM_ADMINS: "root" }, { args: ["--demo"] });
    cleanup.push(() => server.dispose());
    expect(server.lines.some((l) => String(l["msg"]).startsWith("demo data loaded"))).toBe(true);
    expect(await check(server.baseUrl, dashboard("q3-revenue"), "edit", user("dave"))).toEqual({
      allowed: true,
      decision: "DECISION_ALLOWED",
      consistencyToken: expect.any(String),
    });
    expect(await check(server.baseUrl, dashboard("q3-revenue"), "edit", user("bob"))).toEqual({
      allowed: false,
      decision: "DECISION_DENIED",
      consistencyToken: expect.any(String),
    });
  }, SLOW);
});

describe("issue 10: clear start-up failures", () => {
  it("a second server on the same data directory is refused: already in use by process N", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "sharegraph-lock-"));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    // PGlite (the lock guards its files): no DATABASE_URL, whatever TEST_DATABASE_URL says.
    const env = { ...KEYS, SHAREGRAPH_DATA_DIR: dataDir, DATABASE_URL: "" };
    const first = await spawnServer(env);
    cleanup.push(() => first.dispose());
    const second = spawnServer(env);
    await expect(second).rejects.toThrow(new RegExp(`the data directory ${dataDir} is already in use by process ${first.child.pid}`));
    await expect(second).rejects.not.toThrow(/Aborted\(\)/);
    // The first one still serves.
    expect((await fetch(`${first.baseUrl}/healthz`)).status).toBe(200);
  }, SLOW);

  it("a port in use names SHAREGRAPH_ADDR", async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    cleanup.push(() => new Promise<void>((resolve) => taken.close(() => resolve())));
    const port = (taken.address() as net.AddressInfo).port;
    await expect(spawnServer({ ...KEYS, SHAREGRAPH_ADDR: `127.0.0.1:${port}` })).rejects.toThrow(
      new RegExp(`SHAREGRAPH_ADDR: 127\\.0\\.0\\.1:${port} is already in use`),
    );
  }, SLOW);

  it("an unreachable SpiceDB is named, with its endpoint", async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await expect(
      spawnServer({ ...KEYS, SPICEDB_ENDPOINT: `127.0.0.1:${port}`, SPICEDB_TOKEN: "t", SPICEDB_INSECURE: "true", SPICEDB_TIMEOUT_MS: "2000" }),
    ).rejects.toThrow(new RegExp(`SpiceDB at 127\\.0\\.0\\.1:${port} \\(SPICEDB_ENDPOINT\\) did not answer`));
  }, SLOW);
});
