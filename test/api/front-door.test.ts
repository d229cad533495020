import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ApiKeys } from "../../src/api/auth.js";
import { FrontDoor } from "../../src/api/front-door.js";
import { observeInterceptor, rpcMetrics } from "../../src/api/observe.js";
import { DualProtocolServer } from "../../src/api/server.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../src/gen/health/v1/health_pb.js";

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

/** A front door on its own port, serving a Health whose calls hang ("hang"), wait for release() ("slow") or answer. */
async function startDoor(): Promise<Door> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const metrics = rpcMetrics(new Registry());
  const frontDoor = new FrontDoor({
    routes: (router) =>
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
      }),
    observe: observeInterceptor(log, metrics),
    interceptors: [],
    keys: new ApiKeys([]),
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
