/**
 * Issue 7.7: what SIGTERM does to a real sharegraph process (node on
 * src/main.ts, as `npm run dev` runs it). Shutdown used to keep serving new
 * calls on open connections for the whole grace period and then cut
 * everything without a status. Now: GOAWAY on HTTP/2, idle keep-alive
 * connections closed and `Connection: close` on busy ones, new calls
 * refused, calls in flight finish (within SHUTDOWN_GRACE_MS) or end with
 * UNAVAILABLE, and the process exits within SHUTDOWN_TIMEOUT_MS whatever
 * hangs.
 *
 * Time bounds here are liveness bounds (it exits at all, an answer arrives
 * at all) with seconds of margin; nothing measures speed.
 */
import http from "node:http";
import type { ClientHttp2Session, ClientHttp2Stream } from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../src/gen/health/v1/health_pb.js";
import { DirectoryService } from "../src/gen/sharegraph/v1/directory_service_pb.js";
import { CheckPermissionRequestSchema, PermissionService } from "../src/gen/sharegraph/v1/permission_service_pb.js";
import { TEST_DATABASE_URL } from "./support/database.js";
import { FreezableProxy, spawnServer, type ServerProcess } from "./support/process.js";
import { startSpiceDbFixture, type SpiceDbFixture } from "./support/spicedb-grpc-fixture.js";
import { grpcJsClient } from "./support/grpc-js-client.js";
import { bearer } from "./support/server.js";
import { envelope, h2Connect, settleWithin, type H1Answer } from "./support/wire.js";

const ADMIN_KEY = "process-admin-key-0123456789";
const KEYS = { SHAREGRAPH_API_KEYS: `${ADMIN_KEY}:admin;name=tests` };
const CHECK = "/sharegraph.v1.PermissionService/CheckPermission";
const checkBytes = () =>
  toBinary(CheckPermissionRequestSchema, create(CheckPermissionRequestSchema, { resource: { type: "organization", id: "acme" }, permission: "manage", subject: { type: "user", id: "alice" } }));

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function setUp(server: ServerProcess): Promise<void> {
  const d = createClient(DirectoryService, createGrpcTransport({ baseUrl: server.baseUrl, interceptors: [bearer(ADMIN_KEY)] }));
  await d.createUser({ actor: "admin", userId: "alice", email: "alice@acme.example" });
  await d.createOrganization({ actor: "admin", organizationId: "acme", name: "Acme", adminUserIds: ["alice"] });
}

describe("issue 7.7: SIGTERM on a real process", () => {
  it("drains: GOAWAY, idle keep-alive closed, new calls refused, calls in flight finish with their answer, exit 0", async () => {
    const server = await spawnServer({ ...KEYS, SHUTDOWN_GRACE_MS: "8000", SHUTDOWN_TIMEOUT_MS: "15000", REQUEST_READ_TIMEOUT_MS: "20000" });
    cleanup.push(() => server.dispose());
    await setUp(server);

    // An HTTP/2 connection with a call in flight: headers and half of its body sent.
    const session: ClientHttp2Session = await h2Connect(server.baseUrl);
    cleanup.push(async () => void session.destroy());
    const goaway = new Promise<void>((resolve) => session.once("goaway", () => resolve()));
    const body = envelope(checkBytes());
    const headers = { ":path": CHECK, "content-type": "application/grpc", authorization: `Bearer ${ADMIN_KEY}` };
    const stream = session.request({ ":method": "POST", ...headers }, { endStream: false });
    stream.write(body.subarray(0, 4));
    const inFlight = collectH2(stream);

    // An HTTP/1.1 keep-alive connection, idle, and another with a call in flight.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    cleanup.push(async () => agent.destroy());
    const idle = await h1Post(server.baseUrl, agent, Buffer.from("{}"), "/grpc.health.v1.Health/Check");
    expect(idle.status).toBe(200);
    const idleSocket = Object.values(agent.freeSockets).flat()[0]!;
    const idleClosed = new Promise<void>((resolve) => idleSocket.once("close", () => resolve()));
    const slowH1 = h1Slow(server.baseUrl, JSON.stringify({ resource: { type: "organization", id: "acme" }, permission: "manage", subject: { type: "user", id: "alice" } }));

    // A health Watch: it must see NOT_SERVING, then end with a status.
    const watchStatuses: string[] = [];
    const health = createClient(Health, createGrpcTransport({ baseUrl: server.baseUrl }));
    let watchEnd: unknown = "still open";
    let seen!: () => void;
    const firstSeen = new Promise<void>((resolve) => (seen = resolve));
    const watching = (async () => {
      try {
        for await (const res of health.watch({ service: "" })) {
          watchStatuses.push(Status[res.status]);
          seen();
        }
        watchEnd = "OK";
      } catch (err) {
        watchEnd = Code[ConnectError.from(err).code];
      }
    })();
    await firstSeen;
    // A gRPC client with an open connection: after GOAWAY it is not served, on that connection or a new one.
    const grpcJs = grpcJsClient(PermissionService, `127.0.0.1:${server.port}`, ADMIN_KEY);
    cleanup.push(async () => grpcJs.close());
    const question = { resource: { type: "organization", id: "acme" }, permission: "manage", subject: { type: "user", id: "alice" } };
    expect((await grpcJs.client.checkPermission(question)).allowed).toBe(true);

    server.child.kill("SIGTERM");
    await server.line((l) => l["msg"] === "shutting down");
    expect(await settleWithin(goaway, 5_000)).toBeUndefined();
    expect(await settleWithin(idleClosed, 5_000)).toBeUndefined();
    expect((await codeAndMessageOf(grpcJs.client.checkPermission(question))).code).toBe("Unavailable");

    // The calls in flight complete normally.
    stream.end(body.subarray(4));
    const answer = await inFlight;
    expect([answer.grpcCode, answer.body.length > 5]).toEqual(["OK", true]);
    const h1 = await slowH1.finish();
    expect([h1.status, JSON.parse(h1.body.toString()).allowed, h1.headers["connection"]]).toEqual([200, true, "close"]);

    await watching;
    expect(watchStatuses).toEqual(["SERVING", "NOT_SERVING"]);
    expect(watchEnd).toBe("OK");

    const exit = await settleWithin(server.exited, 20_000);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(server.lines.some((l) => l["msg"] === "stopped")).toBe(true);
  });

  it("a call that hangs in a dependency ends with UNAVAILABLE after SHUTDOWN_GRACE_MS, and the process exits within SHUTDOWN_TIMEOUT_MS", async () => {
    const token = "process-spicedb-token";
    const fixture: SpiceDbFixture = await startSpiceDbFixture({ token });
    cleanup.push(() => fixture.close());
    const [host, port] = fixture.endpoint.split(":");
    const proxy = await FreezableProxy.start({ host: host!, port: Number(port) });
    cleanup.push(() => proxy.close());
    const server = await spawnServer({
      ...KEYS,
      SPICEDB_ENDPOINT: `127.0.0.1:${proxy.port}`,
      SPICEDB_TOKEN: token,
      SPICEDB_INSECURE: "true",
      SPICEDB_TIMEOUT_MS: "120000",
      SHUTDOWN_GRACE_MS: "1500",
      SHUTDOWN_TIMEOUT_MS: "6000",
    });
    cleanup.push(() => server.dispose());
    await setUp(server);

    proxy.freeze();
    const client = createClient(PermissionService, createGrpcTransport({ baseUrl: server.baseUrl, interceptors: [bearer(ADMIN_KEY)] }));
    const hanging = codeAndMessageOf(client.checkPermission({ resource: { type: "organization", id: "acme" }, permission: "manage", subject: { type: "user", id: "alice" } }));
    // The call is in SpiceDB's hands (and stays there) before the signal.
    expect(await settleWithin(hanging, 500)).toBe("pending");
    server.child.kill("SIGTERM");

    expect(await settleWithin(hanging, 10_000)).toEqual({ code: "Unavailable", message: "the server shut down before this call finished; retry" });
    const exit = await settleWithin(server.exited, 15_000);
    expect(exit).not.toBe("pending");
    expect(server.lines.some((l) => l["msg"] === "calls still in flight after the grace period; cancelling them")).toBe(true);
    if (exit !== "pending" && exit.code !== 0) {
      expect(server.lines.some((l) => l["msg"] === "shutdown did not finish within SHUTDOWN_TIMEOUT_MS; exiting")).toBe(true);
    }
  });

  it.skipIf(!TEST_DATABASE_URL)("a database that stops answering cannot keep the process alive past SHUTDOWN_TIMEOUT_MS", async () => {
    const db = new URL(TEST_DATABASE_URL!);
    const proxy = await FreezableProxy.start({ host: db.hostname, port: Number(db.port || 5432) });
    cleanup.push(() => proxy.close());
    const server = await spawnServer(
      { ...KEYS, SHUTDOWN_GRACE_MS: "1000", SHUTDOWN_TIMEOUT_MS: "4000" },
      {
        databaseUrl: (url) => {
          const viaProxy = new URL(url);
          viaProxy.host = `127.0.0.1:${proxy.port}`;
          return viaProxy.toString();
        },
      },
    );
    cleanup.push(() => server.dispose());
    await setUp(server);

    proxy.freeze();
    const d = createClient(DirectoryService, createGrpcTransport({ baseUrl: server.baseUrl, interceptors: [bearer(ADMIN_KEY)] }));
    const hanging = codeAndMessageOf(d.createUser({ actor: "admin", userId: "bob", email: "bob@acme.example" }));
    expect(await settleWithin(hanging, 500)).toBe("pending");
    server.child.kill("SIGTERM");

    expect(await settleWithin(hanging, 10_000)).toMatchObject({ code: "Unavailable" });
    const exit = await settleWithin(server.exited, 15_000);
    expect(exit).not.toBe("pending");
    if (exit !== "pending" && exit.code === 0) expect(server.lines.some((l) => l["msg"] === "stopped")).toBe(true);
    else expect(server.lines.some((l) => l["msg"] === "shutdown did not finish within SHUTDOWN_TIMEOUT_MS; exiting")).toBe(true);
  });
});

async function codeAndMessageOf(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
    return { code: "OK", message: "" };
  } catch (err) {
    const e = ConnectError.from(err);
    return { code: Code[e.code], message: e.rawMessage };
  }
}

function collectH2(stream: ClientHttp2Stream): Promise<{ grpcCode: string | undefined; body: Buffer }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let status: string | undefined;
    stream.on("response", (h) => (status ??= h["grpc-status"] as string | undefined));
    stream.on("trailers", (t) => (status = t["grpc-status"] as string | undefined));
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", () => {});
    stream.on("close", () => resolve({ grpcCode: status === "0" ? "OK" : status === undefined ? undefined : Code[Number(status)], body: Buffer.concat(chunks) }));
  });
}

function h1Post(baseUrl: string, agent: http.Agent, body: Buffer, path: string): Promise<H1Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${baseUrl}${path}`, { method: "POST", agent, headers: { "content-type": "application/json" } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A Connect JSON call over its own HTTP/1.1 connection whose body is sent in two parts: finish() sends the rest. */
function h1Slow(baseUrl: string, json: string): { finish(): Promise<H1Answer> } {
  const body = Buffer.from(json);
  const req = http.request(`${baseUrl}${CHECK}`, {
    method: "POST",
    agent: new http.Agent({ keepAlive: true }),
    headers: { "content-type": "application/json", "content-length": String(body.length), authorization: `Bearer ${ADMIN_KEY}` },
  });
  const answer = new Promise<H1Answer>((resolve, reject) => {
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
  });
  answer.catch(() => {}); // reported by finish()
  req.write(body.subarray(0, 5));
  return {
    finish() {
      req.end(body.subarray(5));
      return answer;
    },
  };
}
