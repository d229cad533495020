import http2 from "node:http2";
import { gunzipSync, gzipSync } from "node:zlib";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type ConnectRouter, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiKeys } from "../../src/api/auth.js";
import { FrontDoor } from "../../src/api/front-door.js";
import { observeInterceptor, rpcMetrics } from "../../src/api/observe.js";
import { DualProtocolServer } from "../../src/api/server.js";
import type { ApiKey } from "../../src/config.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../src/gen/health/v1/health_pb.js";
import {
  CheckBulkPermissionsRequestSchema,
  CheckBulkPermissionsResponseSchema,
  Decision,
  PermissionService,
} from "../../src/gen/sharegraph/v1/permission_service_pb.js";

/*
 * Issue 7.7, the front door alone (no database, no engine): a service whose
 * calls hang until released, so that shutdown meets calls in flight in
 * every protocol and at every point of a response.
 */

const never = new Promise<never>(() => {});
const log = pino({ level: "silent" });

interface Door {
  readonly frontDoor: FrontDoor;
  readonly baseUrl: string;
  /** Lets the "slow" calls answer. */
  release(): void;
  close(): Promise<void>;
}

/**
 * A front door on its own port, serving a Health whose calls hang ("hang"),
 * wait for release() ("slow") or answer, and what `more` adds.
 */
async function startDoor(more: { routes?: (router: ConnectRouter) => void; keys?: ApiKey[]; registry?: Registry } = {}): Promise<Door> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const metrics = rpcMetrics(more.registry ?? new Registry());
  const frontDoor = new FrontDoor({
    routes: (router) => {
      more.routes?.(router);
      router.service(Health, {
        async check(req) {
          if (req.service === "hang") await never;
          if (req.service === "slow") await released;
          return { status: Status.SERVING };
        },
        async *watch() {
          yield { status: Status.SERVING };
          await never;
        },
      });
    },
    observe: observeInterceptor(log, metrics),
    interceptors: [],
    keys: new ApiKeys(more.keys ?? []),
    limits: { maxRequestBytes: 1024, readTimeoutMs: 5_000, idleTimeoutMs: 5_000 },
    shutdownSignal: new AbortController().signal,
    log,
    metrics,
    fallback: (_req, res) => {
      res.writeHead(404);
      res.end();
    },
  });
  const server = new DualProtocolServer(frontDoor.handler, { readTimeoutMs: 5_000, idleTimeoutMs: 5_000, maxConnections: 100, maxStreamsPerConnection: 100 });
  const { port } = await server.listen("127.0.0.1", 0);
  return {
    frontDoor,
    baseUrl: `http://127.0.0.1:${port}`,
    release,
    close: async () => {
      release();
      await server.close(100);
    },
  };
}

let door: Door;
beforeEach(async () => {
  door = await startDoor();
});
afterEach(async () => {
  await door.close();
});

const transports: Array<[string, (baseUrl: string) => Transport]> = [
  ["gRPC", (baseUrl) => createGrpcTransport({ baseUrl })],
  ["gRPC-Web over HTTP/1.1", (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" })],
  ["Connect over HTTP/1.1", (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1" })],
  ["Connect over HTTP/2", (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "2" })],
];

async function outcome(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
    return { code: "OK", message: "" };
  } catch (err) {
    const e = ConnectError.from(err);
    return { code: Code[e.code], message: e.rawMessage };
  }
}

async function watchOutcome(transport: Transport, seen: () => void): Promise<{ statuses: string[]; end: { code: string; message: string } }> {
  const statuses: string[] = [];
  const end = await outcome(
    (async () => {
      for await (const res of createClient(Health, transport).watch({ service: "" })) {
        statuses.push(Status[res.status]);
        seen();
      }
    })(),
  );
  return { statuses, end };
}

describe("issue 7.7: shutdown meets calls in flight", () => {
  const unavailable = { code: "Unavailable", message: "the server shut down before this call finished; retry" };

  it("calls still in flight after the grace period end with UNAVAILABLE in their own protocol, before or in the middle of their response", async () => {
    const { frontDoor, baseUrl } = door;
    const clients = transports.map(([name, make]) => ({ name, transport: make(baseUrl) }));
    // Each transport: a unary call that never answers, and a stream that has sent one message.
    const unary = clients.map(({ transport }) => outcome(createClient(Health, transport).check({ service: "hang" })));
    const streams = await Promise.all(
      clients.map(async ({ transport }) => {
        let seen!: () => void;
        const first = new Promise<void>((resolve) => (seen = resolve));
        const done = watchOutcome(transport, seen);
        await first;
        return { done }; // (returned bare, the promise would be awaited too)
      }),
    );
    expect(frontDoor.inFlight).toBe(clients.length * 2);

    frontDoor.drain();
    frontDoor.endAll(new ConnectError(unavailable.message, Code.Unavailable));
    const ends = await Promise.all(unary);
    expect(Object.fromEntries(clients.map(({ name }, i) => [name, ends[i]]))).toEqual(Object.fromEntries(clients.map(({ name }) => [name, unavailable])));
    const watched = await Promise.all(streams.map((s) => s.done));
    expect(Object.fromEntries(clients.map(({ name }, i) => [name, watched[i]]))).toEqual(
      Object.fromEntries(clients.map(({ name }) => [name, { statuses: ["SERVING"], end: unavailable }])),
    );
    await frontDoor.whenIdle();
    expect(frontDoor.inFlight).toBe(0);
  });

  it("while draining, new calls are refused with UNAVAILABLE in their protocol, HTTP/1.1 with Connection: close; calls in flight finish", async () => {
    const { frontDoor, baseUrl } = door;
    const inFlight = transports.map(([, make]) => outcome(createClient(Health, make(baseUrl)).check({ service: "slow" })));
    await new Promise<void>((resolve) => {
      const wait = () => (frontDoor.inFlight === transports.length ? resolve() : setTimeout(wait, 10));
      wait();
    });
    frontDoor.drain();
    for (const [name, make] of transports) {
      expect([name, await outcome(createClient(Health, make(baseUrl)).check({ service: "" }))]).toEqual([
        name,
        { code: "Unavailable", message: "the server is shutting down; retry (another instance will answer)" },
      ]);
    }
    const res = await fetch(`${baseUrl}/grpc.health.v1.Health/Check`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect([res.status, res.headers.get("connection"), await res.json()]).toEqual([
      503,
      "close",
      { code: "unavailable", message: "the server is shutting down; retry (another instance will answer)" },
    ]);
    door.release();
    expect(await Promise.all(inFlight)).toEqual(transports.map(() => ({ code: "OK", message: "" })));
    await frontDoor.whenIdle();
  });
});

describe("issue 8: gRPC unary calls are answered past Connect's handler pipeline (src/api/grpc-unary.ts)", () => {
  const KEY = "front-door-check-key-0123";
  let registry: Registry;
  const cancelled: unknown[] = [];
  let started!: () => void;
  let door2: Door;

  /** A PermissionService of its own: answers, refusals, a crash, and a call that waits for its signal. */
  const routes = (router: ConnectRouter) =>
    router.service(PermissionService, {
      async checkPermission(req, ctx) {
        if (req.permission === "fail") throw new ConnectError("no such permission here", Code.FailedPrecondition);
        if (req.permission === "crash") throw new Error("secret internals");
        if (req.permission === "wait") {
          started();
          await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
          cancelled.push(ctx.signal.reason);
        }
        const allowed = req.subject?.id === "carol";
        return { allowed, decision: allowed ? Decision.ALLOWED : Decision.DENIED, consistencyToken: "t1" };
      },
      async checkBulkPermissions(req) {
        // A token long enough that the answer is worth compressing (Connect compresses from 1 KiB).
        return { results: req.items.map((item) => ({ item, allowed: true, decision: Decision.ALLOWED, error: "" })), consistencyToken: "t1".padEnd(2_000, "-") };
      },
    });

  beforeEach(async () => {
    registry = new Registry();
    door2 = await startDoor({ routes, keys: [{ secret: KEY, scope: "check", name: "test", actors: "any" }], registry });
  });
  afterEach(async () => {
    await door2.close();
  });

  const check = (transport: Transport, permission: string, subject = "carol") =>
    createClient(PermissionService, transport).checkPermission({ resource: { type: "report", id: "r1" }, permission, subject: { type: "user", id: subject, relation: "" } });
  it("answers, errors and crashes reach the caller the same in every protocol; only gRPC skips Connect's pipeline, and every call is logged and counted", async () => {
    const seen: Record<string, unknown> = {};
    for (const [name, make] of transportsWithKey(KEY)) {
      const before = door2.frontDoor.grpcUnaryCalls;
      const t = make(door2.baseUrl);
      const yes = await check(t, "view");
      const no = await check(t, "view", "dave");
      seen[name] = {
        answers: [yes.allowed, Decision[yes.decision], yes.consistencyToken, no.allowed, Decision[no.decision]],
        fail: await outcome(check(t, "fail")),
        crash: await outcome(check(t, "crash")),
        pastConnect: door2.frontDoor.grpcUnaryCalls - before,
      };
    }
    const same = {
      answers: [true, "ALLOWED", "t1", false, "DENIED"],
      fail: { code: "FailedPrecondition", message: "no such permission here" },
      crash: { code: "Internal", message: "internal error; it has been logged" },
    };
    expect(seen).toEqual({
      gRPC: { ...same, pastConnect: 4 },
      "gRPC-Web over HTTP/1.1": { ...same, pastConnect: 0 },
      "Connect over HTTP/1.1": { ...same, pastConnect: 0 },
      "Connect over HTTP/2": { ...same, pastConnect: 0 },
    });
    const calls = (await registry.getSingleMetric("sharegraph_rpc_total")!.get()).values.filter((v) => v.labels["method"] === "sharegraph.v1.PermissionService/CheckPermission");
    expect(Object.fromEntries(calls.map((v) => [v.labels["code"], v.value]))).toEqual({ OK: 8, FailedPrecondition: 4, Internal: 4 });
  });

  it("refusals decided before the call (no key, too large) go through Connect and answer as before", async () => {
    const [, grpc] = transportsWithKey(undefined)[0]!;
    expect(await outcome(check(grpc(door2.baseUrl), "view"))).toEqual({ code: "Unauthenticated", message: 'missing API key: send "authorization: Bearer <key>"' });
    const [, grpcWithKey] = transportsWithKey(KEY)[0]!;
    expect((await outcome(check(grpcWithKey(door2.baseUrl), "view", "x".repeat(2_000)))).code).toBe("ResourceExhausted");
    expect(door2.frontDoor.grpcUnaryCalls).toBe(0);
  });

  it("a large answer is gzip-compressed when the caller accepts gzip (grpc-accept-encoding), and a gzip request is read", async () => {
    const items = Array.from({ length: 10 }, (_, i) => ({ resource: { type: "report", id: `r${i}` }, permission: "view", subject: { type: "user", id: "carol", relation: "" } }));
    const request = create(CheckBulkPermissionsRequestSchema, { items });
    for (const requestEncoding of ["identity", "gzip"]) {
      const payload = toBinary(CheckBulkPermissionsRequestSchema, request);
      const body = requestEncoding === "gzip" ? gzipSync(payload) : payload;
      const frame = Buffer.concat([Buffer.from([requestEncoding === "gzip" ? 1 : 0, 0, 0, 0, 0]), body]);
      frame.writeUInt32BE(body.length, 1);
      const { headers, data, trailers } = await rawGrpc(door2.baseUrl, "/sharegraph.v1.PermissionService/CheckBulkPermissions", frame, {
        authorization: `Bearer ${KEY}`,
        "grpc-accept-encoding": "gzip",
        ...(requestEncoding === "gzip" ? { "grpc-encoding": "gzip" } : {}),
      });
      expect([requestEncoding, headers["content-type"], headers["grpc-encoding"], trailers["grpc-status"], trailers["grpc-message"], data[0]]).toEqual([requestEncoding, "application/grpc+proto", "gzip", "0", undefined, 1]);
      const response = fromBinary(CheckBulkPermissionsResponseSchema, gunzipSync(data.subarray(5)));
      expect(response.results.map((r) => r.item?.resource?.id)).toEqual(items.map((i) => i.resource.id));
    }
    expect(door2.frontDoor.grpcUnaryCalls).toBe(2);
  });

  it("a caller that goes away cancels the call: its signal aborts with CANCELED", async () => {
    const [, grpc] = transportsWithKey(KEY)[0]!;
    const inCall = new Promise<void>((resolve) => (started = resolve));
    const controller = new AbortController();
    const call = outcome(
      createClient(PermissionService, grpc(door2.baseUrl)).checkPermission(
        { resource: { type: "report", id: "r1" }, permission: "wait", subject: { type: "user", id: "carol", relation: "" } },
        { signal: controller.signal },
      ),
    );
    await inCall;
    controller.abort();
    expect((await call).code).toBe("Canceled");
    await vi.waitFor(() => expect(cancelled.map((r) => (r instanceof ConnectError ? Code[r.code] : String(r)))).toEqual(["Canceled"]));
  });
});

/** The transports of the shutdown tests, each sending `key` (when given). */
function transportsWithKey(key: string | undefined): Array<[string, (baseUrl: string) => Transport]> {
  const interceptors: Interceptor[] = key ? [(next) => (req) => (req.header.set("authorization", `Bearer ${key}`), next(req))] : [];
  return [
    ["gRPC", (baseUrl) => createGrpcTransport({ baseUrl, interceptors })],
    ["gRPC-Web over HTTP/1.1", (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors })],
    ["Connect over HTTP/1.1", (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors })],
    ["Connect over HTTP/2", (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "2", interceptors })],
  ];
}

/** One gRPC request over a bare HTTP/2 client: the response's headers, body bytes and trailers as they came. */
function rawGrpc(baseUrl: string, path: string, frame: Buffer, headers: Record<string, string>) {
  return new Promise<{ headers: http2.IncomingHttpHeaders; data: Buffer; trailers: http2.IncomingHttpHeaders }>((resolve, reject) => {
    const session = http2.connect(baseUrl);
    session.on("error", reject);
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers });
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on("response", (h) => (responseHeaders = h));
    stream.on("trailers", (t) => (trailers = t));
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      session.close();
      resolve({ headers: responseHeaders, data: Buffer.concat(chunks), trailers });
    });
    stream.on("error", reject);
    stream.end(frame);
  });
}
