/**
 * Issue 8 at the server's edge: with the embedded engine in its thread (the
 * default), a 1,000-item CheckBulkPermissions no longer stalls /healthz, and
 * a thread that dies turns health NOT_SERVING and permission calls
 * UNAVAILABLE instead of hanging them.
 *
 * The data that makes the bulk check compute for a while is written straight
 * into the engine (a shortcut: the test is about the event loop, not the
 * outbox). Nothing measures speed: the health probe must answer while the
 * bulk check is still computing, whatever either takes.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deepTenant, seed } from "./support/deep-tenant.js";
import { startTestServer, type TestServer } from "./support/server.js";

describe("issue 8: the embedded engine's thread, through the server", () => {
  // One server: the second test kills its thread.
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { SPICEDB_EMBEDDED_THREAD: "true" } });
    expect(server.app.embeddedThread?.alive).toBe(true);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("/healthz answers while a 1,000-item bulk check is computing, and the bulk check answers right", { timeout: 180_000 }, async () => {
    const { relationships, items } = deepTenant(1000, 4);
    await seed(server.app.domain.engine, relationships);

    let bulkDone = false;
    const bulk = server
      .clients()
      .permission.checkBulkPermissions({
        items: items.map((i) => ({ resource: i.resource, permission: i.permission, subject: { ...i.subject, relation: "" } })),
        consistency: { requirement: { case: "fullyConsistent", value: true } },
      })
      .finally(() => {
        bulkDone = true;
      });
    // Probe until an answer arrives while the bulk check is still running (or it has finished).
    let answeredDuring = 0;
    while (!bulkDone && answeredDuring === 0) {
      const probe = await fetch(`${server.baseUrl}/healthz`);
      expect(probe.status).toBe(200);
      if (!bulkDone) answeredDuring++;
    }
    const answer = await bulk;
    expect(answeredDuring, "a health probe answered while the bulk check was computing").toBeGreaterThan(0);
    expect(answer.results.map((r) => r.allowed)).toEqual(items.map((_, i) => i % 2 === 0));
  });

  it("a thread that dies: health NOT_SERVING (spicedb down), checks UNAVAILABLE, and the server still stops cleanly", async () => {
    const clients = server.clients();
    await clients.directory.createUser({ actor: "admin", userId: "alice", email: "alice@acme.example" });
    await clients.directory.createOrganization({ actor: "admin", organizationId: "acme", name: "Acme", adminUserIds: ["alice"] });
    const question = { resource: { type: "organization", id: "acme" }, permission: "manage", subject: { type: "user", id: "alice", relation: "" } };
    expect((await clients.permission.checkPermission(question)).allowed).toBe(true);

    await server.app.embeddedThread?.kill();
    const health = await fetch(`${server.baseUrl}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.text()).toBe("NOT_SERVING: spicedb down\n");
    // Another subject: the decision cache cannot answer for the engine.
    const refused = await clients.permission.checkPermission({ ...question, subject: { type: "user", id: "bob", relation: "" } }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ConnectError);
    expect((refused as ConnectError).code).toBe(Code.Unavailable);
  });
});
