import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../src/gen/health/v1/health_pb.js";
import { WorkspaceLevel } from "../../src/gen/sharegraph/v1/directory_service_pb.js";
import { PermissionService } from "../../src/gen/sharegraph/v1/permission_service_pb.js";
import { grpcJsClient } from "../support/grpc-js-client.js";
import { ADMIN_KEY, CHECK_KEY, PLATFORM_ADMIN, bearer, startTestServer, type TestServer } from "../support/server.js";
import { codeOf, fresh } from "../support/rpc.js";

/*
 * The one port: gRPC (HTTP/2), Connect (HTTP/1.1 and HTTP/2) and gRPC-Web,
 * health and reflection without a key, /metrics and /healthz, and shutdown.
 */

const exec = promisify(execFile);

const ws = (id: string) => ({ type: "workspace", id });
const user = (id: string) => ({ type: "user", id });


let server: TestServer;
let token: string;
/** Workspaces of acme; alice, its admin, can view them all. */
const WORKSPACES = 5;

beforeAll(async () => {
  server = await startTestServer();
  const d = server.clients("connect").directory;
  for (const id of ["alice", "bob"]) await d.createUser({ actor: PLATFORM_ADMIN, userId: id, email: `${id}@acme.example`, displayName: id });
  await d.createOrganization({ actor: PLATFORM_ADMIN, organizationId: "acme", name: "Acme", adminUserIds: ["alice"] });
  for (let i = 0; i < WORKSPACES; i++) {
    await d.createWorkspace({ actor: "alice", organizationId: "acme", workspaceId: `ws-${String(i).padStart(2, "0")}`, name: `Workspace ${i}` });
  }
  const granted = await d.setWorkspacePermission({ actor: "alice", workspaceId: "ws-00", subject: { type: "user", id: "bob" }, level: WorkspaceLevel.VIEW });
  token = granted.consistencyToken;
});

afterAll(async () => {
  await server?.stop();
});

const question = () => ({ resource: ws("ws-00"), permission: "view", subject: user("bob"), consistency: fresh(token) });

describe("one port, every protocol", () => {
  const transports: Array<[string, () => Transport]> = [
    ["gRPC over HTTP/2 (connect-node)", () => createGrpcTransport({ baseUrl: server.baseUrl, interceptors: [bearer(CHECK_KEY)] })],
    ["Connect over HTTP/2", () => createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "2", interceptors: [bearer(CHECK_KEY)] })],
    ["Connect over HTTP/1.1", () => createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1", interceptors: [bearer(CHECK_KEY)] })],
    ["gRPC-Web over HTTP/1.1", () => createGrpcWebTransport({ baseUrl: server.baseUrl, httpVersion: "1.1", interceptors: [bearer(CHECK_KEY)] })],
    ["gRPC-Web over HTTP/2", () => createGrpcWebTransport({ baseUrl: server.baseUrl, httpVersion: "2", interceptors: [bearer(CHECK_KEY)] })],
  ];

  it.each(transports)("%s: CheckPermission answers", async (_name, make) => {
    const client = createClient(PermissionService, make());
    const yes = await client.checkPermission(question());
    expect(yes.allowed).toBe(true);
    expect(yes.consistencyToken).not.toBe("");
    expect((await client.checkPermission({ ...question(), subject: user("nobody") })).allowed).toBe(false);
  });

  it("gRPC with @grpc/grpc-js", async () => {
    const { client, close } = grpcJsClient(PermissionService, server.address, CHECK_KEY);
    onTestFinished(close);
    expect((await client.checkPermission(question())).allowed).toBe(true);
  });

  it("Connect JSON over HTTP/1.1 with plain fetch", async () => {
    const url = `${server.baseUrl}/sharegraph.v1.PermissionService/CheckPermission`;
    const body = JSON.stringify({
      resource: { type: "workspace", id: "ws-00" },
      permission: "view",
      subject: { type: "user", id: "bob" },
      consistency: { atLeastAsFresh: token },
    });
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${CHECK_KEY}` },
      body,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const json = (await res.json()) as { allowed?: boolean; consistencyToken?: string };
    expect(json.allowed).toBe(true);
    expect(json.consistencyToken).toEqual(expect.any(String));

    // Without a key: the Connect error, as JSON with an HTTP status.
    const anonymous = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toEqual({ code: "unauthenticated", message: expect.stringContaining("missing API key") });

    // Bad input: INVALID_ARGUMENT naming the field (HTTP 400).
    const bad = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${CHECK_KEY}` },
      body: JSON.stringify({ permission: "view", subject: { type: "user", id: "bob" } }),
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ code: "invalid_argument", message: expect.stringMatching(/^resource: is required/) });
  });

  it("every transport gets UNAUTHENTICATED without a key", async () => {
    const makers = [
      () => createGrpcTransport({ baseUrl: server.baseUrl }),
      () => createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "2" }),
      () => createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }),
      () => createGrpcWebTransport({ baseUrl: server.baseUrl, httpVersion: "1.1" }),
    ];
    for (const make of makers) {
      const err = await codeOf(createClient(PermissionService, make()).checkPermission(question()));
      expect([Code[err.code], err.message]).toEqual(["Unauthenticated", 'missing API key: send "authorization: Bearer <key>"']);
    }
  });

  it("unknown paths get a plain 404 that says what this port serves", async () => {
    const res = await fetch(`${server.baseUrl}/nope`);
    expect(res.status).toBe(404);
    expect(await res.text()).toMatch(/serves gRPC, Connect and gRPC-Web/);
  });
});

describe("R41: AdminService needs the admin key", () => {
  it.each(["connect", "grpc-js"] as const)("over %s, a check key is PERMISSION_DENIED and the admin key works", async (kind) => {
    const checker = server.clients(kind, CHECK_KEY);
    const err = await codeOf(checker.admin.getOutboxStatus({}));
    expect([Code[err.code], err.message]).toEqual(["PermissionDenied", 'sharegraph.v1.AdminService/GetOutboxStatus needs an admin API key; this key has scope "check"']);
    expect(Code[(await codeOf(checker.admin.reconcile({ dryRun: true }))).code]).toBe("PermissionDenied");
    const admin = server.clients(kind, ADMIN_KEY);
    const status = await admin.admin.getOutboxStatus({});
    expect(status.pendingBatches).toBe(0);
    expect(status.lastAppliedBatch).toBeGreaterThan(0n);
  });
});

describe("health", () => {
  it("Check needs no key and answers SERVING for the server and each service; unknown services are NOT_FOUND", async () => {
    const grpcJs = grpcJsClient(Health, server.address, undefined);
    const clients = [
      ["connect", createClient(Health, createGrpcTransport({ baseUrl: server.baseUrl }))],
      ["grpc-js", grpcJs.client],
    ] as const;
    onTestFinished(() => grpcJs.close());
    for (const [kind, health] of clients) {
      for (const service of ["", "sharegraph.v1.PermissionService", "sharegraph.v1.DirectoryService", "sharegraph.v1.AdminService"]) {
        expect([kind, service, Status[(await health.check({ service })).status]]).toEqual([kind, service, "SERVING"]);
      }
      const err = await codeOf(health.check({ service: "sharegraph.v1.NoSuchService" }));
      expect([kind, Code[err.code], err.message]).toEqual([kind, "NotFound", "unknown service sharegraph.v1.NoSuchService"]);
    }
  });

  it("Watch streams the current status first", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: server.baseUrl }));
    const abort = new AbortController();
    const seen: string[] = [];
    try {
      for await (const res of health.watch({ service: "sharegraph.v1.PermissionService" }, { signal: abort.signal })) {
        seen.push(Status[res.status]);
        abort.abort();
      }
    } catch (err) {
      expect(ConnectError.from(err).code).toBe(Code.Canceled);
    }
    expect(seen).toEqual(["SERVING"]);
    const unknown = health.watch({ service: "nope" }, { signal: AbortSignal.timeout(5_000) });
    for await (const res of unknown) {
      expect(Status[res.status]).toBe("SERVICE_UNKNOWN");
      break;
    }
  });

  it("GET /healthz is 200 while serving", async () => {
    const res = await fetch(`${server.baseUrl}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("SERVING\n");
  });
});

describe("administrators' tools", () => {
  async function bufCurl(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
    try {
      const { stdout, stderr } = await exec("node_modules/.bin/buf", ["curl", "--http2-prior-knowledge", ...args], { timeout: 30_000 });
      return { stdout, stderr, code: 0 };
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; code?: number };
      return { stdout: e.stdout ?? "", stderr: e.stderr ?? "", code: typeof e.code === "number" ? e.code : -1 };
    }
  }

  it("buf curl lists the services through reflection, without a key", async () => {
    const out = await bufCurl("--list-services", server.baseUrl);
    expect(out.code).toBe(0);
    expect(out.stdout.trim().split("\n")).toEqual(
      expect.arrayContaining([
        "sharegraph.v1.PermissionService",
        "sharegraph.v1.DirectoryService",
        "sharegraph.v1.AdminService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
      ]),
    );
  });

  it.each(["grpc", "connect"])("buf curl calls CheckPermission over %s with the schema from reflection and an API key", async (protocol) => {
    const data = JSON.stringify({ ...question(), consistency: { atLeastAsFresh: token } });
    const url = `${server.baseUrl}/sharegraph.v1.PermissionService/CheckPermission`;
    const ok = await bufCurl("--protocol", protocol, "-H", `authorization: Bearer ${CHECK_KEY}`, "-d", data, url);
    expect(ok.stderr).toBe("");
    expect(JSON.parse(ok.stdout)).toEqual({ allowed: true, decision: "DECISION_ALLOWED", consistencyToken: expect.any(String) });

    // Issue 10: a denial is visible in the JSON, whatever the client does with proto3 defaults.
    const denied = await bufCurl("--protocol", protocol, "-H", `authorization: Bearer ${CHECK_KEY}`, "-d", JSON.stringify({ ...JSON.parse(data), subject: user("nobody") }), url);
    expect(denied.stderr).toBe("");
    expect(JSON.parse(denied.stdout)).toMatchObject({ decision: "DECISION_DENIED", consistencyToken: expect.any(String) });

    const anonymous = await bufCurl("--protocol", protocol, "-d", data, url);
    expect(anonymous.code).not.toBe(0);
    expect(anonymous.stdout + anonymous.stderr).toMatch(/unauthenticated/);
    expect(anonymous.stdout + anonymous.stderr).toContain("missing API key");
  });

  it("GET /metrics serves Prometheus text with per-method call counts", async () => {
    const res = await fetch(`${server.baseUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toContain("# TYPE sharegraph_rpc_total counter");
    expect(text).toMatch(/sharegraph_rpc_total\{method="sharegraph\.v1\.PermissionService\/CheckPermission",code="OK"\} \d+/);
    expect(text).toMatch(/sharegraph_rpc_total\{method="sharegraph\.v1\.PermissionService\/CheckPermission",code="Unauthenticated"\} \d+/);
    expect(text).toContain("sharegraph_rpc_duration_seconds_bucket");
    expect(text).toContain("process_cpu_user_seconds_total");
  });
});

describe("streams cancelled by the client", () => {
  /** Workspaces the bulk org's admin (carol) can view: a stream long enough to be cut in the middle. */
  const BULK = 3_000;
  let bulkToken: string;
  const lookup = (subject = "carol") => ({ resourceType: "workspace", permission: "view", subject: user(subject), consistency: fresh(bulkToken) });

  beforeAll(async () => {
    const admin = server.clients("connect");
    await admin.directory.createUser({ actor: PLATFORM_ADMIN, userId: "carol", email: "carol@bulk.example" });
    await admin.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: "bulk", name: "Bulk", adminUserIds: ["carol"] });
    // Imported straight into Postgres, then indexed by Rebuild: far faster than one API call each.
    await server.app.domain.store.transaction(async (tx) => {
      for (let i = 0; i < BULK; i++) await tx.workspaces.insert({ id: `bulk-${i}`, organization_id: "bulk", name: `Bulk ${i}`, parent_id: null });
    });
    const rebuilt = await admin.admin.rebuild({});
    expect(rebuilt.relationshipsWritten).toBeGreaterThan(BULK);
    bulkToken = rebuilt.consistencyToken;
  });

  it("a LookupResources stream aborted mid-way leaves the server serving", async () => {
    const client = createClient(PermissionService, createGrpcTransport({ baseUrl: server.baseUrl, interceptors: [bearer(CHECK_KEY)] }));
    const abort = new AbortController();
    const received: string[] = [];
    const err = await codeOf(
      (async () => {
        for await (const res of client.lookupResources(lookup(), { signal: abort.signal })) {
          received.push(res.resourceId);
          if (received.length === 3) abort.abort();
        }
      })(),
    );
    expect(Code[err.code]).toBe("Canceled");
    expect(received.length).toBeGreaterThanOrEqual(3);
    expect(received.length).toBeLessThan(BULK);

    // The same client, and the server, still work.
    let n = 0;
    for await (const _ of client.lookupResources(lookup())) n++;
    expect(n).toBe(BULK);
    expect((await client.checkPermission(question())).allowed).toBe(true);
  });

  it.each(["connect", "grpc-js"] as const)("over %s, leaving a stream early (break) leaves the server serving", async (kind) => {
    const c = server.clients(kind, CHECK_KEY);
    for (let round = 0; round < 3; round++) {
      let n = 0;
      for await (const _ of c.permission.lookupResources(lookup())) if (++n === 2) break;
      expect(n).toBe(2);
    }
    const all: string[] = [];
    for await (const res of c.permission.lookupResources(lookup("alice"))) all.push(res.resourceId);
    expect(all.sort()).toEqual(Array.from({ length: WORKSPACES }, (_, i) => `ws-${String(i).padStart(2, "0")}`));
    const health = await server.clients(kind, ADMIN_KEY).admin.getOutboxStatus({});
    expect(health.pendingBatches).toBe(0);
  });
});

// Last: this stops the server.
describe("shutdown", () => {
  it("app.stop() turns health NOT_SERVING (Watch sees it), then the port refuses connections", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: server.baseUrl }));
    const statuses: string[] = [];
    let firstSeen!: () => void;
    const first = new Promise<void>((resolve) => (firstSeen = resolve));
    const watching = (async () => {
      try {
        for await (const res of health.watch({ service: "" })) {
          statuses.push(Status[res.status]);
          firstSeen();
        }
      } catch {
        // the stream may end with an error when the server goes away
      }
    })();
    await first;

    await server.app.stop(1_000);
    await watching;
    expect(statuses).toEqual(["SERVING", "NOT_SERVING"]);
    expect(server.app.health.get("")).toBe(Status.NOT_SERVING);
    expect(server.app.health.get("sharegraph.v1.PermissionService")).toBe(Status.NOT_SERVING);

    await expect(fetch(`${server.baseUrl}/healthz`)).rejects.toThrow();
    const err = await codeOf(createClient(PermissionService, createGrpcTransport({ baseUrl: server.baseUrl, interceptors: [bearer(CHECK_KEY)] })).checkPermission(question()));
    expect(Code[err.code]).toBe("Unavailable");
  });
});
