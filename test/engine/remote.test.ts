/**
 * The engine suite against the remote engine: @authzed/authzed-node over real
 * gRPC (loopback) to the SpiceDB test fixture, which serves SpiceDB's API from
 * an embedded SpiceDB and demands the preshared key. Plus what only a remote
 * engine can get wrong: the token, and a SpiceDB that is not there.
 */
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EngineError, type Engine, type EngineErrorKind } from "../../src/engine/engine.js";
import { createRemoteEngine, type RemoteEngineOptions } from "../../src/engine/remote.js";
import { loadSchemaText, transitionalSchema } from "../../src/engine/schema.js";
import { startSpiceDbFixture, type SpiceDbFixture } from "../support/spicedb-grpc-fixture.js";
import { realSpiceDb, realSpiceDbTitle, sharedSpiceDbServer } from "../support/spicedb-server.js";
import { engineSuite } from "./engine-suite.js";

const TOKEN = "sharegraph-engine-suite-key";
const TIMEOUT_MS = 5000;

function options(endpoint: string, overrides: Partial<RemoteEngineOptions> = {}): RemoteEngineOptions {
  return { endpoint, token: TOKEN, tls: "plaintext", timeoutMs: TIMEOUT_MS, maxUpdatesPerWrite: 1000, ...overrides };
}

engineSuite("remote engine", async () => {
  const fixture = await startSpiceDbFixture({ token: TOKEN });
  const engine = await createRemoteEngine(options(fixture.endpoint));
  return {
    engine,
    close: async () => {
      await engine.close();
      await fixture.close();
    },
  };
});

/** One real SpiceDB server (spicedb serve on a fresh Postgres datastore) for this file, when it can run here. */
const realServer = sharedSpiceDbServer();

describe.skipIf(!realSpiceDb.available)(realSpiceDbTitle("remote engine on a real SpiceDB server (Postgres datastore)"), () => {
  engineSuite("engine suite", async () => {
    const server = await realServer();
    const engine = await createRemoteEngine({ ...options(server.endpoint), token: server.token });
    return { engine, close: () => engine.close() };
  });
});

const check = { resource: { type: "dashboard", id: "q3_revenue" }, permission: "view", subject: { type: "user", id: "carol" } };
const FULLY = { kind: "fully_consistent" } as const;

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of iterable) out.push(x);
  return out;
}

/** The EngineError a call fails with. */
async function failure(run: () => Promise<unknown>): Promise<{ error: EngineError }> {
  try {
    await run();
  } catch (err) {
    expect(err).toBeInstanceOf(EngineError);
    return { error: err as EngineError };
  }
  throw new Error("expected the call to fail");
}

function expectKind(error: EngineError, kind: EngineErrorKind): void {
  expect(error.kind, error.message).toBe(kind);
}

/** A port nothing listens on: bind, note it, close. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  return port;
}

describe("remote engine specifics", () => {
  let fixture: SpiceDbFixture;
  let engine: Engine;

  beforeAll(async () => {
    fixture = await startSpiceDbFixture({ token: TOKEN });
    engine = await createRemoteEngine(options(fixture.endpoint, { maxUpdatesPerWrite: 3 }));
    await engine.writeSchema(loadSchemaText());
  });

  afterAll(async () => {
    await engine?.close();
    await fixture?.close();
  });

  it("is kind 'remote' and takes its write limit from the options", () => {
    expect(engine.kind).toBe("remote");
    expect(engine.maxUpdatesPerWrite).toBe(3);
  });

  it("sends the preshared key on every call, unary and streaming", async () => {
    const before = fixture.calls.length;
    const token = await engine.write([
      { op: "touch", relationship: { resource: { type: "dashboard", id: "q3_revenue" }, relation: "viewer", subject: { type: "user", id: "carol" } } },
    ]);
    await engine.check(check, { kind: "at_least_as_fresh", token });
    await engine.checkBulk([check, check], FULLY);
    await engine.checkWithTrace(check, FULLY);
    await collect(engine.lookupResources({ resourceType: "dashboard", permission: "direct_view", subject: check.subject }, FULLY));
    await collect(engine.lookupSubjects({ resource: check.resource, permission: "direct_view", subjectType: "user" }, FULLY));
    await collect(engine.readRelationships({ resourceType: "dashboard", resourceId: "q3_revenue" }, FULLY));
    await engine.deleteMatching({ resourceType: "dashboard", resourceId: "q3_revenue" });
    await engine.readSchema();
    const calls = fixture.calls.slice(before);
    expect(calls.map((c) => c.path.replace(/^\/authzed\.api\.v1\./, ""))).toEqual([
      "PermissionsService/WriteRelationships",
      "PermissionsService/CheckPermission",
      "PermissionsService/CheckBulkPermissions",
      "PermissionsService/CheckPermission",
      "PermissionsService/LookupResources",
      "PermissionsService/LookupSubjects",
      "PermissionsService/ReadRelationships",
      "PermissionsService/DeleteRelationships",
      "SchemaService/ReadSchema",
    ]);
    expect(calls.every((c) => c.authorized)).toBe(true);
    // Everything before (the schema write in beforeAll) too.
    expect(fixture.calls.every((c) => c.authorized)).toBe(true);
  });

  it("refuses a write over maxUpdatesPerWrite before sending anything", async () => {
    const before = fixture.calls.length;
    const updates = Array.from({ length: 4 }, (_, i) => ({
      op: "touch" as const,
      relationship: { resource: { type: "dashboard", id: `over-${i}` }, relation: "viewer", subject: { type: "user", id: "carol" } },
    }));
    const { error } = await failure(() => engine.write(updates));
    expectKind(error, "invalid_argument");
    expect(fixture.calls.length).toBe(before);
  });

  it("a wrong key (the fixture answers UNAUTHENTICATED) fails every call with EngineError 'unavailable' and reaches nothing", async () => {
    // kindOfGrpcCode in src/engine/spicedb-engine.ts maps UNAUTHENTICATED to "unavailable".
    const wrong = await createRemoteEngine(options(fixture.endpoint, { token: "not-the-key" }));
    try {
      const before = fixture.calls.length;
      const unary = await failure(() => wrong.check(check, FULLY));
      expectKind(unary.error, "unavailable");
      expect(unary.error.message).toMatch(/preshared key/);
      const streaming = await failure(() => collect(wrong.readRelationships({ resourceType: "dashboard" }, FULLY)));
      expectKind(streaming.error, "unavailable");
      const schema = await failure(() => wrong.writeSchema("definition user {}"));
      expectKind(schema.error, "unavailable");
      expect(fixture.calls.slice(before).map((c) => c.authorized)).toEqual([false, false, false]);
      expect(await engine.readSchema()).toContain("definition dashboard");
    } finally {
      await wrong.close();
    }
  });

  it("a wrong key as real SpiceDB answers it (PERMISSION_DENIED) is 'unavailable' too", async () => {
    const strict = await startSpiceDbFixture({ token: TOKEN, wrongTokenStatus: "PERMISSION_DENIED" });
    const wrong = await createRemoteEngine(options(strict.endpoint, { token: "not-the-key" }));
    try {
      const { error } = await failure(() => wrong.readSchema());
      expectKind(error, "unavailable");
      expect(strict.calls.map((c) => c.authorized)).toEqual([false]);
    } finally {
      await wrong.close();
      await strict.close();
    }
  });

  it("an unreachable endpoint (closed port) fails with 'unavailable', unary and streaming", async () => {
    const port = await closedPort();
    const down = await createRemoteEngine(options(`127.0.0.1:${port}`));
    try {
      const unary = await failure(() => down.check(check, FULLY));
      expectKind(unary.error, "unavailable");
      const streaming = await failure(() =>
        collect(down.lookupResources({ resourceType: "dashboard", permission: "view", subject: check.subject }, FULLY)),
      );
      expectKind(streaming.error, "unavailable");
      const write = await failure(() => down.write([]));
      expectKind(write.error, "unavailable");
    } finally {
      await down.close();
    }
  });

  describe("an endpoint that accepts connections but never answers", () => {
    let blackhole: Server;
    const sockets = new Set<Socket>();

    beforeAll(async () => {
      blackhole = createServer((socket) => {
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
      });
      await new Promise<void>((resolve) => blackhole.listen(0, "127.0.0.1", resolve));
    });

    afterAll(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => blackhole.close(() => resolve()));
    });

    it("fails with 'unavailable' at the timeout rather than hanging, unary and streaming", async () => {
      const timeoutMs = 500;
      const { port } = blackhole.address() as AddressInfo;
      const silent = await createRemoteEngine(options(`127.0.0.1:${port}`, { timeoutMs, streamTimeoutMs: timeoutMs }));
      try {
        const unary = await failure(() => silent.readSchema());
        expectKind(unary.error, "unavailable");
        expect(unary.error.message).toMatch(/deadline/i);
        const streaming = await failure(() =>
          collect(silent.lookupSubjects({ resource: check.resource, permission: "view", subjectType: "user" }, FULLY)),
        );
        expectKind(streaming.error, "unavailable");
      } finally {
        await silent.close();
      }
    });
  });
});

describe.skipIf(!realSpiceDb.available)(realSpiceDbTitle("remote engine specifics on a real SpiceDB server"), () => {
  // The server is shared with the engine suite, whose nested groups need the transitional schema (engine-suite.ts).
  const schemaText = transitionalSchema(loadSchemaText());
  it("with the preshared key every call works, unary and streaming; with a wrong key every call is 'unavailable'", async () => {
    const server = await realServer();
    const engine = await createRemoteEngine({ ...options(server.endpoint), token: server.token });
    const wrong = await createRemoteEngine({ ...options(server.endpoint), token: "not-the-key" });
    try {
      await engine.writeSchema(schemaText);
      const token = await engine.write([
        // view_role: the cumulative relation direct_view reads (graph.ts writes it beside every grant).
        { op: "touch", relationship: { resource: { type: "dashboard", id: "keyed" }, relation: "view_role", subject: { type: "user", id: "carol" } } },
      ]);
      const keyed = { ...check, resource: { type: "dashboard", id: "keyed" }, permission: "direct_view" };
      expect((await engine.check(keyed, { kind: "at_least_as_fresh", token })).allowed).toBe(true);
      expect((await engine.checkBulk([keyed, { ...keyed, subject: { type: "user", id: "dave" } }], FULLY)).results.map((r) => r.allowed)).toEqual([true, false]);
      expect((await engine.checkWithTrace(keyed, FULLY)).allowed).toBe(true);
      expect(await collect(engine.lookupResources({ resourceType: "dashboard", permission: "direct_view", subject: check.subject }, FULLY))).toContainEqual(
        expect.objectContaining({ resourceId: "keyed" }),
      );
      expect((await collect(engine.lookupSubjects({ resource: keyed.resource, permission: "direct_view", subjectType: "user" }, FULLY))).map((s) => s.subjectId)).toEqual(["carol"]);
      expect(await collect(engine.readRelationships({ resourceType: "dashboard", resourceId: "keyed" }, FULLY))).toHaveLength(1);
      expect(await engine.deleteMatching({ resourceType: "dashboard", resourceId: "keyed" })).not.toBe("");

      // Real SpiceDB answers PERMISSION_DENIED ("invalid preshared key"); the engine calls that unavailable.
      const unary = await failure(() => wrong.check(keyed, FULLY));
      expectKind(unary.error, "unavailable");
      expect(unary.error.message).toMatch(/preshared key/);
      expectKind((await failure(() => collect(wrong.readRelationships({ resourceType: "dashboard" }, FULLY)))).error, "unavailable");
      expectKind((await failure(() => collect(wrong.lookupResources({ resourceType: "dashboard", permission: "view", subject: check.subject }, FULLY)))).error, "unavailable");
      expectKind((await failure(() => wrong.writeSchema("definition user {}"))).error, "unavailable");
      expect(await engine.readSchema()).toContain("definition dashboard");
    } finally {
      await wrong.close();
      await engine.close();
    }
  });

  it("SpiceDB itself refuses a write over its --write-relationships-max-updates-per-call with invalid_argument", async () => {
    const server = await realServer();
    // An engine that believes it may send more than the server accepts: the server's refusal is what it gets.
    const engine = await createRemoteEngine({ ...options(server.endpoint), token: server.token, maxUpdatesPerWrite: server.maxUpdatesPerWrite + 1 });
    try {
      await engine.writeSchema(schemaText);
      const updates = Array.from({ length: server.maxUpdatesPerWrite + 1 }, (_, i) => ({
        op: "touch" as const,
        relationship: { resource: { type: "dashboard", id: `server-over-${i}` }, relation: "viewer", subject: { type: "user", id: "carol" } },
      }));
      const { error } = await failure(() => engine.write(updates));
      expectKind(error, "invalid_argument");
      expect(error.message).toContain(String(server.maxUpdatesPerWrite));
      expect(await collect(engine.readRelationships({ resourceType: "dashboard", resourceId: "server-over-0" }, FULLY))).toEqual([]);
    } finally {
      await engine.close();
    }
  });
});
