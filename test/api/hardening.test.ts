import type http from "node:http";
import type { ClientHttp2Session } from "node:http2";
import { Writable } from "node:stream";
import { gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { Health, HealthCheckRequestSchema } from "../../src/gen/health/v1/health_pb.js";
import { ServerReflection } from "../../src/gen/grpc/reflection/v1/reflection_pb.js";
import { DirectoryService } from "../../src/gen/sharegraph/v1/directory_service_pb.js";
import { CheckPermissionRequestSchema, PermissionService } from "../../src/gen/sharegraph/v1/permission_service_pb.js";
import { ADMIN_KEY, CHECK_KEY, PLATFORM_ADMIN, bearer, startTestServer, type TestServer } from "../support/server.js";
import { codeOf, refusal, user } from "../support/rpc.js";
import { envelope, h1Request, h2Connect, h2Request, rawSocket, settleWithin } from "../support/wire.js";

/*
 * Issue 7 (transport side): what an attacker-minded caller did to the
 * server, each kept fixed here — exhaustion before authentication (7.3),
 * idle and half-open connections (7.4), INTERNAL for bad input (7.6) and
 * actors taken on trust from any admin key (7.10).
 *
 * Bounds like "within 5 s" below are liveness bounds (the server answers at
 * all, a connection is closed at all), far above the configured timeouts;
 * they never measure speed.
 */

const LIMIT = 64 * 1024;
const READ_TIMEOUT_MS = 2_000;
const IDLE_TIMEOUT_MS = 1_500;
const MAX_CONNECTIONS = 40;
const DASHBOARD_KEY = "dashboard-key-0123456789";
const REPORTING_KEY = "reporting-key-0123456789";

/** Every log line the server writes, parsed. */
const lines: Array<Record<string, unknown>> = [];
const logger = pino(
  { level: "info" },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString("utf8").split("\n").filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  }),
);
const rpcLines = (method: string) => lines.filter((l) => l["msg"] === "rpc" && l["method"] === method);

let server: TestServer;
let port: number;

beforeAll(async () => {
  server = await startTestServer({
    env: {
      SHAREGRAPH_API_KEYS: [
        `${ADMIN_KEY}:admin`,
        `${CHECK_KEY}:check`,
        `${DASHBOARD_KEY}:admin;name=dashboard;actors=alice|bob`,
        `${REPORTING_KEY}:admin;name=reporting;actors=-`,
      ].join(","),
      MAX_REQUEST_BYTES: String(LIMIT),
      REQUEST_READ_TIMEOUT_MS: String(READ_TIMEOUT_MS),
      IDLE_TIMEOUT_MS: String(IDLE_TIMEOUT_MS),
      MAX_CONNECTIONS: String(MAX_CONNECTIONS),
      MAX_STREAMS_PER_CONNECTION: "16",
    },
    overrides: { logger },
  });
  port = Number(new URL(server.baseUrl).port);
  const d = server.clients().directory;
  for (const id of ["alice", "bob"]) await d.createUser({ actor: PLATFORM_ADMIN, userId: id, email: `${id}@acme.example`, displayName: id });
  await d.createOrganization({ actor: PLATFORM_ADMIN, organizationId: "acme", name: "Acme", adminUserIds: ["alice"] });
});

afterAll(async () => {
  await server?.stop();
});

const CHECK = "/sharegraph.v1.PermissionService/CheckPermission";
const question = () => ({ resource: { type: "organization", id: "acme" }, permission: "manage", subject: user("alice") });
const checkRequest = () => create(CheckPermissionRequestSchema, question());

async function h2(): Promise<ClientHttp2Session> {
  const session = await h2Connect(server.baseUrl);
  onTestFinished(() => void session.destroy());
  return session;
}

/** The server still answers a real call. */
async function healthy(): Promise<void> {
  const client = createClient(PermissionService, createGrpcTransport({ baseUrl: server.baseUrl, interceptors: [bearer(CHECK_KEY)] }));
  expect((await client.checkPermission(checkRequest())).allowed).toBe(true);
}

describe("issue 7.3: no exhaustion before authentication; a request size limit", () => {
  it("gRPC: a call without a key is refused (UNAUTHENTICATED) before any of its body is sent", async () => {
    const session = await h2();
    const answer = await settleWithin(h2Request(session, { ":path": CHECK, "content-type": "application/grpc" }, undefined), 5_000);
    expect(answer).not.toBe("pending");
    if (answer === "pending") return;
    expect([answer.status, answer.grpcCode, answer.grpcMessage]).toEqual([200, "Unauthenticated", 'missing API key: send "authorization: Bearer <key>"']);
  });

  it("Connect over HTTP/1.1: a 400 KB gzip bomb without a key is refused (401) before its body is sent, and the connection is not kept for it", async () => {
    const bomb = gzipSync(Buffer.alloc(400 * 1024 * 1024));
    const answer = await settleWithin(
      h1Request(`${server.baseUrl}${CHECK}`, { "content-type": "application/proto", "content-encoding": "gzip", "content-length": String(bomb.length) }, undefined),
      5_000,
    );
    expect(answer).not.toBe("pending");
    if (answer === "pending") return;
    expect(answer.status).toBe(401);
    expect(JSON.parse(answer.body.toString())).toEqual({ code: "unauthenticated", message: 'missing API key: send "authorization: Bearer <key>"' });
    expect(answer.headers["connection"]).toBe("close");
    await healthy();
  });

  it("a gzip bomb with a valid key is RESOURCE_EXHAUSTED: decompression stops at MAX_REQUEST_BYTES", async () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    // Connect unary (content-encoding) …
    const unary = await h1Request(
      `${server.baseUrl}${CHECK}`,
      { "content-type": "application/proto", "content-encoding": "gzip", authorization: `Bearer ${CHECK_KEY}` },
      bomb,
    );
    expect(unary.status).toBe(429);
    expect(JSON.parse(unary.body.toString())).toEqual({
      code: "resource_exhausted",
      message: `the request is larger; requests are limited to ${LIMIT} bytes (MAX_REQUEST_BYTES), after decompression`,
    });
    // … and gRPC (a compressed envelope).
    const session = await h2();
    const grpc = await h2Request(
      session,
      { ":path": CHECK, "content-type": "application/grpc", "grpc-encoding": "gzip", authorization: `Bearer ${CHECK_KEY}` },
      envelope(bomb, 1),
    );
    expect([grpc.grpcCode, grpc.grpcMessage]).toEqual(["ResourceExhausted", expect.stringContaining("MAX_REQUEST_BYTES")]);
    await healthy();
  });

  it("a declared length over the limit is refused before the body is sent", async () => {
    const answer = await settleWithin(
      h1Request(`${server.baseUrl}${CHECK}`, { "content-type": "application/proto", "content-length": String(LIMIT + 1), authorization: `Bearer ${CHECK_KEY}` }, undefined),
      5_000,
    );
    expect(answer).not.toBe("pending");
    if (answer === "pending") return;
    expect([answer.status, JSON.parse(answer.body.toString()).code]).toEqual([429, "resource_exhausted"]);
    expect(answer.headers["connection"]).toBe("close");
  });

  const transports: Array<[string, () => Transport]> = [
    ["gRPC", () => createGrpcTransport({ baseUrl: server.baseUrl, interceptors: [bearer(CHECK_KEY)] })],
    ["gRPC-Web", () => createGrpcWebTransport({ baseUrl: server.baseUrl, httpVersion: "1.1", interceptors: [bearer(CHECK_KEY)] })],
    ["Connect", () => createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1", interceptors: [bearer(CHECK_KEY)] })],
  ];
  it.each(transports)("over %s, a message over MAX_REQUEST_BYTES is RESOURCE_EXHAUSTED, logged and counted", async (_name, make) => {
    const client = createClient(PermissionService, make());
    const before = rpcLines("sharegraph.v1.PermissionService/CheckPermission").filter((l) => l["code"] === "ResourceExhausted").length;
    await refusal(client.checkPermission({ ...checkRequest(), permission: "x".repeat(LIMIT + 10) }), Code.ResourceExhausted, /MAX_REQUEST_BYTES/);
    const exhausted = rpcLines("sharegraph.v1.PermissionService/CheckPermission").filter((l) => l["code"] === "ResourceExhausted");
    expect(exhausted).toHaveLength(before + 1);
    expect(exhausted.at(-1)?.["key"]).toMatch(/^key-[0-9a-f]{8}$/);
    // Just under the limit is an ordinary (refused) permission name.
    await refusal(client.checkPermission({ ...checkRequest(), permission: "x".repeat(LIMIT - 200) }), Code.InvalidArgument, /permission/);
  });
});

describe("issue 7.4: idle and half-open connections are timed out", () => {
  it("a socket that sends nothing is closed (REQUEST_READ_TIMEOUT_MS), and so is one that stops inside the HTTP/2 preface", async () => {
    const silent = await rawSocket(port);
    const partial = await rawSocket(port);
    partial.socket.write("PRI * HTTP/2.0\r\n");
    expect(await settleWithin(silent.closed, 5_000)).toBe("");
    expect(await settleWithin(partial.closed, 5_000)).toBe("");
  });

  it("HTTP/1.1: headers that never end get 408 and a closed connection; an idle keep-alive connection is closed (IDLE_TIMEOUT_MS)", async () => {
    const slow = await rawSocket(port);
    slow.socket.write("POST /sharegraph.v1.PermissionService/CheckPermission HTTP/1.1\r\nHost: x\r\n");
    expect(await settleWithin(slow.closed, 5_000)).toMatch(/^HTTP\/1\.1 408/);

    const kept = await rawSocket(port);
    kept.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(await settleWithin(kept.closed, 5_000)).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*SERVING\n/);
  });

  it("HTTP/2: a session without streams gets GOAWAY and is closed (IDLE_TIMEOUT_MS)", async () => {
    const session = await h2();
    const goaway = new Promise<number>((resolve) => session.once("goaway", (code: number) => resolve(code)));
    const closed = new Promise<void>((resolve) => session.once("close", () => resolve()));
    expect(await settleWithin(goaway, 5_000)).toBe(0);
    expect(await settleWithin(closed, 5_000)).toBeUndefined();
  });

  it("HTTP/2: a call whose body never comes ends with DEADLINE_EXCEEDED (REQUEST_READ_TIMEOUT_MS); the session stays usable", async () => {
    const session = await h2();
    const stalled = await settleWithin(h2Request(session, { ":path": CHECK, "content-type": "application/grpc", authorization: `Bearer ${CHECK_KEY}` }, undefined), 5_000);
    expect(stalled).not.toBe("pending");
    if (stalled === "pending") return;
    expect([stalled.grpcCode, stalled.grpcMessage]).toEqual(["DeadlineExceeded", `the request was not received within ${READ_TIMEOUT_MS} ms (REQUEST_READ_TIMEOUT_MS)`]);
    const next = await h2Request(session, { ":path": CHECK, "content-type": "application/grpc", authorization: `Bearer ${CHECK_KEY}` }, envelope(toBinary(CheckPermissionRequestSchema, checkRequest())));
    expect({ status: next.status, code: next.grpcCode, rst: next.rstCode, body: next.body.length }).toEqual({ status: 200, code: "OK", rst: 0, body: expect.any(Number) });
  });

  it("HTTP/2: streams per connection are capped (SETTINGS_MAX_CONCURRENT_STREAMS)", async () => {
    const session = await h2();
    if (!session.remoteSettings.maxConcurrentStreams || session.remoteSettings.maxConcurrentStreams > 16) {
      await new Promise((resolve) => session.once("remoteSettings", resolve));
    }
    expect(session.remoteSettings.maxConcurrentStreams).toBe(16);
  });

  it("connections beyond MAX_CONNECTIONS are closed at once; silent ones are reaped, and real clients get through again", async () => {
    const sockets: Array<Awaited<ReturnType<typeof rawSocket>>> = [];
    const closedOrder: number[] = [];
    for (let i = 0; i < MAX_CONNECTIONS + 5; i++) {
      const s = await rawSocket(port);
      void s.closed.then(() => closedOrder.push(i));
      sockets.push(s);
    }
    for (const s of sockets) expect(await settleWithin(s.closed, 10_000)).toBe("");
    // Silent sockets are reaped in the order they were opened; the first to go was one over the cap, closed on arrival.
    expect(closedOrder[0]).toBeGreaterThan(0);
    await healthy();
  });
});

describe("issue 7.6: what a caller sends is never INTERNAL, and every failure is logged and counted", () => {
  const garbage = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);

  it("invalid protobuf over gRPC: INVALID_ARGUMENT with a key, UNAUTHENTICATED without, INVALID_ARGUMENT on an open service", async () => {
    const session = await h2();
    const call = (path: string, key: string | undefined) =>
      h2Request(session, { ":path": path, "content-type": "application/grpc", ...(key ? { authorization: `Bearer ${key}` } : {}) }, envelope(garbage));
    const withKey = await call(CHECK, CHECK_KEY);
    expect([withKey.grpcCode, withKey.grpcMessage]).toEqual([
      "InvalidArgument",
      expect.stringMatching(/^the request is not a valid sharegraph\.v1\.CheckPermissionRequest in the protobuf binary format: /),
    ]);
    expect((await call(CHECK, undefined)).grpcCode).toBe("Unauthenticated");
    const open = await call("/grpc.health.v1.Health/Check", undefined);
    expect(open.grpcCode).toBe("InvalidArgument");
  });

  it("parse failures get the log line and the metrics", async () => {
    const session = await h2();
    await h2Request(session, { ":path": "/grpc.health.v1.Health/Check", "content-type": "application/grpc" }, envelope(garbage));
    expect(rpcLines("grpc.health.v1.Health/Check").filter((l) => l["code"] === "InvalidArgument").length).toBeGreaterThan(0);
    const metrics = await (await fetch(`${server.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/sharegraph_rpc_total\{method="grpc\.health\.v1\.Health\/Check",code="InvalidArgument"\} [1-9]/);
    // A request Connect answers at the HTTP level (wrong content type: 415) is counted too.
    const res = await fetch(`${server.baseUrl}/grpc.health.v1.Health/Check`, { method: "POST", headers: { "content-type": "text/plain" }, body: "hello" });
    expect(res.status).toBe(415);
    // (The server writes the line when its response has finished, which may be just after the client has it.)
    const counted = async () => {
      while (!rpcLines("grpc.health.v1.Health/Check").some((l) => l["httpStatus"] === 415)) await new Promise((resolve) => setTimeout(resolve, 20));
    };
    expect(await settleWithin(counted(), 5_000)).toBeUndefined();
    expect(rpcLines("grpc.health.v1.Health/Check").find((l) => l["httpStatus"] === 415)).toMatchObject({ code: "InvalidArgument" });
  });

  it("a JSON body sent as application/proto, truncated gzip, a message cut short, two messages: INVALID_ARGUMENT (HTTP 400)", async () => {
    const post = (headers: http.OutgoingHttpHeaders, body: Uint8Array) => h1Request(`${server.baseUrl}${CHECK}`, { authorization: `Bearer ${CHECK_KEY}`, ...headers }, body);
    const json = Buffer.from(JSON.stringify({ resource: { type: "organization", id: "acme" }, permission: "manage" }));
    for (const answer of [
      await post({ "content-type": "application/proto" }, json),
      await post({ "content-type": "application/proto", "content-encoding": "gzip" }, gzipSync(json).subarray(0, 12)),
    ]) {
      expect([answer.status, JSON.parse(answer.body.toString()).code]).toEqual([400, "invalid_argument"]);
    }
    const session = await h2();
    const message = toBinary(CheckPermissionRequestSchema, checkRequest());
    const headers = { ":path": CHECK, "content-type": "application/grpc", authorization: `Bearer ${CHECK_KEY}` };
    const cut = await h2Request(session, headers, envelope(message).subarray(0, 9));
    const two = await h2Request(session, headers, Buffer.concat([envelope(message), envelope(message)]));
    const none = await h2Request(session, headers, Buffer.alloc(0));
    expect([cut.grpcCode, two.grpcCode, none.grpcCode]).toEqual(["InvalidArgument", "InvalidArgument", "InvalidArgument"]);
  });

  it("a NUL character in a free-text field is INVALID_ARGUMENT naming the field (not a database error)", async () => {
    const d = server.clients("connect").directory;
    await refusal(
      d.createUser({ actor: PLATFORM_ADMIN, userId: "nul", email: "nul@acme.example", displayName: "Nu\u0000ll" }),
      Code.InvalidArgument,
      /^display_name: must not contain the NUL character \(U\+0000\)$/,
    );
    await refusal(d.listUsers({ query: "a\u0000" }), Code.InvalidArgument, /^query: must not contain the NUL character/);
    await refusal(d.createOrganization({ actor: PLATFORM_ADMIN, organizationId: "nul-org", name: "\u0000" }), Code.InvalidArgument, /^name: /);
    const p = server.clients("grpc-js").permission;
    await refusal(
      p.checkBulkPermissions({ items: [question(), { ...question(), subject: user("al\u0000ice") }] }),
      Code.InvalidArgument,
      /^items\[1\]\.subject\.id: must not contain the NUL character/,
    );
  });

  it("an HTTP/1.0 request without a Host header is answered (it used to crash the process)", async () => {
    const s = await rawSocket(port);
    s.socket.write("POST /grpc.health.v1.Health/Check HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
    expect(await settleWithin(s.closed, 5_000)).toMatch(/^HTTP\/1\.[01] 200 OK\r\n[\s\S]*"status":"SERVING"/);
    await healthy();
  });

  it("a reflection stream with undecodable bytes is INVALID_ARGUMENT", async () => {
    const session = await h2();
    const answer = await h2Request(session, { ":path": "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "content-type": "application/grpc" }, envelope(garbage));
    expect(answer.grpcCode).toBe("InvalidArgument");
  });

  it("health Check still answers with a well-formed message (no regression for open services)", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: server.baseUrl }));
    expect((await health.check(create(HealthCheckRequestSchema, {}))).status).toBe(1);
    const reflection = createClient(ServerReflection, createGrpcTransport({ baseUrl: server.baseUrl }));
    for await (const answer of reflection.serverReflectionInfo((async function* () {
      yield { host: "", messageRequest: { case: "listServices" as const, value: "" } };
    })())) {
      expect(answer.messageResponse.case).toBe("listServicesResponse");
    }
  });
});

describe("issue 7.10: keys bound to a calling service and the actors it may assert", () => {
  const directory = (key: string) => createClient(DirectoryService, createGrpcTransport({ baseUrl: server.baseUrl, interceptors: [bearer(key)] }));

  it("a key bound to alice|bob cannot act as the platform admin: PERMISSION_DENIED naming the key, never its secret", async () => {
    const err = await codeOf(directory(DASHBOARD_KEY).createUser({ actor: PLATFORM_ADMIN, userId: "mallory", email: "mallory@evil.example" }));
    expect(Code[err.code]).toBe("PermissionDenied");
    expect(err.message).toBe('API key "dashboard" may not act as "admin": it is bound to other actors (SHAREGRAPH_API_KEYS ;actors=)');
    expect(err.message).not.toContain(DASHBOARD_KEY);
    const line = rpcLines("sharegraph.v1.DirectoryService/CreateUser").at(-1);
    expect(line).toMatchObject({ code: "PermissionDenied", key: "dashboard" });
    expect(JSON.stringify(lines)).not.toContain(DASHBOARD_KEY);
  });

  it("it acts as the actors it is bound to, and reads as before", async () => {
    const d = directory(DASHBOARD_KEY);
    const group = await d.createGroup({ actor: "alice", organizationId: "acme", groupId: "bound-key-group", name: "Made by the dashboard" });
    expect(group.group?.id).toBe("bound-key-group");
    expect((await d.getUser({ userId: "bob" })).user?.id).toBe("bob");
    expect(rpcLines("sharegraph.v1.DirectoryService/CreateGroup").at(-1)).toMatchObject({ code: "OK", key: "dashboard" });
  });

  it("a key bound to no actor may call what names no actor, and nothing that does", async () => {
    const d = directory(REPORTING_KEY);
    expect((await d.listUsers({})).users.length).toBeGreaterThan(0);
    await refusal(d.createGroup({ actor: "alice", organizationId: "acme", groupId: "g2", name: "G2" }), Code.PermissionDenied, /^API key "reporting" may not act as "alice": it is bound to no actor/);
  });

  it("a key in the old secret:scope form may still assert any actor", async () => {
    const created = await directory(ADMIN_KEY).createUser({ actor: PLATFORM_ADMIN, userId: "carol", email: "carol@acme.example" });
    expect(created.user?.id).toBe("carol");
  });
});
