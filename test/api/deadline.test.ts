/**
 * Issue 7, item 5: the caller's deadline is honoured end to end
 * (src/api/deadline.ts). The slow part here is the outbox wait — SpiceDB is
 * down, and OUTBOX_APPLY_TIMEOUT_MS is far longer than any deadline — so a
 * call answers only if the deadline cuts it: DEADLINE_EXCEEDED at the
 * caller's `grpc-timeout` / `connect-timeout-ms`, or at CALL_TIMEOUT_MS when
 * the caller sent none; and the waits underneath end with the call instead
 * of piling up. (Deadlines against a partitioned Postgres:
 * test/store/postgres-faults.test.ts.)
 */
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../src/gen/health/v1/health_pb.js";
import { WorkspaceLevel } from "../../src/gen/sharegraph/v1/directory_service_pb.js";
import { PermissionService } from "../../src/gen/sharegraph/v1/permission_service_pb.js";
import { FaultyEngine } from "../support/faulty-engine.js";
import { codeOf, collect, fresh, refusal, user } from "../support/rpc.js";
import { ADMIN_KEY, PLATFORM_ADMIN, bearer, startTestServer, type Clients, type TestServer } from "../support/server.js";

const emea = { type: "workspace", id: "emea" };

let server: TestServer;
let c: Clients;
let spicedb: FaultyEngine;
/** The token of a change that cannot reach SpiceDB while it is broken. */
let pending = "";

beforeAll(async () => {
  spicedb = await FaultyEngine.create();
  server = await startTestServer({
    // A read waits for the outbox far longer than the test would: only a deadline ends it.
    env: { OUTBOX_APPLY_TIMEOUT_MS: "600000", OUTBOX_POLL_MS: "50", OUTBOX_MAX_BACKOFF_MS: "200", CALL_TIMEOUT_MS: "1500" },
    overrides: { engine: async () => spicedb },
  });
  c = server.clients();
  await c.directory.createUser({ actor: PLATFORM_ADMIN, userId: "alice", email: "alice@acme.example" });
  await c.directory.createUser({ actor: PLATFORM_ADMIN, userId: "bob", email: "bob@acme.example" });
  await c.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: "acme", name: "Acme", adminUserIds: ["alice"] });
  await c.directory.createWorkspace({ actor: "alice", organizationId: "acme", workspaceId: "emea", name: "EMEA" });
  spicedb.breakWrites();
  // The write commits, then waits for SpiceDB until its deadline; its batch stays on its way.
  const write = await codeOf(
    c.directory.setWorkspacePermission({ actor: "alice", workspaceId: "emea", subject: user("bob"), level: WorkspaceLevel.VIEW }, grpcDeadline(300)),
  );
  expect(Code[write.code]).toBe("DeadlineExceeded");
  // The token the write would have returned (committed, so issued).
  pending = server.app.domain.tokens.forWrite(await server.app.domain.store.read.outbox.maxId(), "");
  expect((await server.app.domain.store.read.outbox.status()).pending).toBe(1);
}, 120_000);

afterAll(async () => {
  spicedb?.heal();
  await server?.stop();
});

async function noWaiters(): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (server.app.domain.applier.waiting > 0) {
    if (Date.now() > deadline) throw new Error(`${server.app.domain.applier.waiting} outbox waits outlived their calls`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * The deadline, sent as the header only: the client itself then waits for
 * the server's answer, instead of giving up at its own deadline whatever the
 * server does — so an answer shows that the server honoured it.
 */
const grpcDeadline = (ms: number) => ({ headers: { "grpc-timeout": `${ms}m` } });
const connectDeadline = (ms: number) => ({ headers: { "connect-timeout-ms": String(ms) } });

const question = { resource: emea, permission: "view", subject: user("bob") };

describe("issue 7.5: deadlines", () => {
  it("grpc-timeout: a check waiting for the outbox answers DEADLINE_EXCEEDED, and its wait ends with it", async () => {
    const calls = Array.from({ length: 5 }, () =>
      codeOf(c.permission.checkPermission({ ...question, consistency: fresh(pending) }, grpcDeadline(200))),
    );
    for (const err of await Promise.all(calls)) expect({ code: Code[err.code], message: err.message }).toEqual({ code: "DeadlineExceeded", message: "the call's deadline passed before it completed" });
    await noWaiters();
  });

  it("connect-timeout-ms (Connect protocol over HTTP/1.1): DEADLINE_EXCEEDED too", async () => {
    const transport = createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1", interceptors: [bearer(ADMIN_KEY)] });
    const permission = createClient(PermissionService, transport);
    await refusal(permission.checkPermission({ ...question, consistency: fresh(pending) }, connectDeadline(200)), Code.DeadlineExceeded, /deadline/);
    await noWaiters();
  });

  it("no deadline from the caller: CALL_TIMEOUT_MS bounds the call, and the answer says so", async () => {
    await refusal(c.permission.checkPermission({ ...question, consistency: fresh(pending) }), Code.DeadlineExceeded, /CALL_TIMEOUT_MS = 1500 ms/);
    await noWaiters();
  });

  it("a server stream (LookupResources) is bounded by the deadline as a whole", async () => {
    const stream = c.permission.lookupResources({ resourceType: "workspace", permission: "view", subject: user("bob"), consistency: fresh(pending) }, grpcDeadline(200));
    await refusal(collect(stream), Code.DeadlineExceeded, /deadline/);
    await noWaiters();
  });

  it("a fully consistent check (as every mutating call's authorization is) answers DEADLINE_EXCEEDED at the deadline", async () => {
    const fullyConsistent = { requirement: { case: "fullyConsistent" as const, value: true } };
    await refusal(c.permission.checkPermission({ ...question, consistency: fullyConsistent }, grpcDeadline(200)), Code.DeadlineExceeded, /deadline/);
    await refusal(c.directory.createGroup({ actor: "alice", organizationId: "acme", groupId: "g1", name: "G1" }, grpcDeadline(200)), Code.DeadlineExceeded, /deadline/);
    await noWaiters();
  });

  it("a bulk check hands its call's signal to the engine, which stops asking SpiceDB once the call has ended", async () => {
    const before = spicedb.bulkSignals.length;
    const r = await c.permission.checkBulkPermissions({ items: [question, { ...question, subject: user("alice") }] }, grpcDeadline(5_000));
    expect(r.results).toHaveLength(2);
    const given = spicedb.bulkSignals.slice(before);
    expect(given).toHaveLength(1);
    expect(given[0]).toBeInstanceOf(AbortSignal);
    expect(given[0]!.aborted).toBe(false);
  });

  it("calls that need no wait answer as usual within a deadline, and answer once SpiceDB is back", async () => {
    const quick = await c.permission.checkPermission(question, { timeoutMs: 5_000 });
    expect(quick.consistencyToken).not.toBe("");
    expect((await c.directory.getUser({ userId: "bob" }, { timeoutMs: 5_000 })).user?.id).toBe("bob");
    spicedb.heal();
    const r = await c.permission.checkPermission({ ...question, consistency: fresh(pending) }, { timeoutMs: 20_000 });
    expect(r.allowed).toBe(true);
  });

  it("health is not capped by CALL_TIMEOUT_MS: Health/Watch stays open past it", async () => {
    const health = createClient(Health, createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "2" }));
    const controller = new AbortController();
    const seen: number[] = [];
    const watching = (async () => {
      try {
        for await (const r of health.watch({ service: "" }, { signal: controller.signal })) seen.push(r.status);
      } catch (err) {
        if (!controller.signal.aborted) throw err;
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 2_500)); // past CALL_TIMEOUT_MS (1.5 s): a bound, not a measurement
    expect(seen).toEqual([Status.SERVING]);
    controller.abort();
    await watching;
  });
});
