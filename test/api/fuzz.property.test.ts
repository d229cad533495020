import type http2 from "node:http2";
import { Writable } from "node:stream";
import { gzipSync } from "node:zlib";
import { create, toBinary, ScalarType, type DescField, type DescMessage, type DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import fc from "fast-check";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SERVED } from "../../src/api/routes.js";
import { loadDemo } from "../../src/demo.js";
import { Health } from "../../src/gen/health/v1/health_pb.js";
import { ServerReflection } from "../../src/gen/grpc/reflection/v1/reflection_pb.js";
import { codeFromString } from "@connectrpc/connect/protocol-connect";
import { AdminService } from "../../src/gen/sharegraph/v1/admin_service_pb.js";
import { PermissionService } from "../../src/gen/sharegraph/v1/permission_service_pb.js";
import { ADMIN_KEY, CHECK_KEY, bearer, startTestServer, type TestServer } from "../support/server.js";
import { envelope, h1Request, h2Connect, h2Request, settleWithin } from "../support/wire.js";

/*
 * Issue 7 ("done when"): a property test over every RPC. Whatever a caller
 * sends — generated messages with odd and huge strings and out-of-range
 * numbers, valid messages mutated byte by byte, raw bytes, wrong content
 * types and encodings, arbitrary JSON — the answer is never INTERNAL or
 * UNKNOWN (nor HTTP 5xx other than 503/504), every call ends (no hang), no
 * "unexpected failure" is logged, and the server is healthy afterwards.
 *
 * The server holds the demo tenant, and strings are drawn mostly from its
 * ids, so generated calls reach the domain and the database, not only
 * validation.
 */

const NUM = { generated: 500, mutated: 250, raw: 250, json: 150 };
/** A liveness bound per call (not a speed assertion): a call that has not ended by then hangs. */
const HANG_MS = 10_000;

const VOCAB = [
  ...["admin", "alice", "bob", "carol", "dave", "erin", "nobody"],
  ...["acme", "northwind", "analysts", "emea-analysts", "emea", "emea-sales", "sales", "finance", "q3-revenue", "pipeline", "budget", "carol-draft", "acme-finance"],
  ...["user", "group", "organization", "workspace", "folder", "dashboard", "report", "board", "workbook", "entity", "service", "account", "member"],
  ...["view", "interact", "share", "explore", "edit", "delete", "manage", "see_name", "analyze", "eligible"],
  ...["alice@acme.example", "x@gmail.com", "jordan@client.example", "not-an-email", "a@b", "Acme Corp"],
];
const ODD = [
  "",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "\udfff\ud800",
  "💥",
  "e\u0301",
  "\u202eevil",
  "' OR 1=1 --",
  "%s%n%x",
  "../../etc/passwd",
  "a".repeat(129),
  " alice ",
  "ALICE",
  "user:alice#member",
  "null",
  "-1",
  "{}",
];

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const stringArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 30, arbitrary: fc.constantFrom(...VOCAB) },
  { weight: 2, arbitrary: fc.constantFrom(...ODD) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...VOCAB), fc.constantFrom("\u0000", "\ud800", "\u0000\u0000x")).map(([v, odd]) => v + odd) },
  { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.oneof(loneSurrogate, fc.constantFrom("a", "\u0000", "%")), maxLength: 8 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 300_000 }).map((n) => "x".repeat(n)) },
);

function scalarArb(scalar: ScalarType): fc.Arbitrary<unknown> {
  switch (scalar) {
    case ScalarType.STRING:
      return stringArb;
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.BYTES:
      return fc.uint8Array({ maxLength: 64 });
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return fc.double();
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return fc.oneof(fc.integer({ min: -3, max: 2_000 }), fc.constantFrom(-2147483648, 2147483647));
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return fc.oneof(fc.integer({ min: 0, max: 2_000 }), fc.constant(4294967295));
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
    default:
      return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
  }
}

function valueArb(field: DescField, depth: number): fc.Arbitrary<unknown> {
  switch (field.fieldKind) {
    case "scalar":
      return scalarArb(field.scalar);
    case "enum":
      return fc.oneof(fc.constantFrom(...field.enum.values.map((v) => v.number)), fc.integer({ min: -2, max: 40 }));
    case "message":
      return messageArb(field.message, depth + 1);
    case "list": {
      const item =
        field.listKind === "scalar"
          ? scalarArb(field.scalar)
          : field.listKind === "enum"
            ? fc.integer({ min: -2, max: 10 })
            : messageArb(field.message, depth + 1);
      return fc.array(item, { maxLength: depth > 1 ? 1 : 4 });
    }
    case "map": {
      const value = field.mapKind === "scalar" ? scalarArb(field.scalar) : field.mapKind === "enum" ? fc.integer({ min: 0, max: 5 }) : messageArb(field.message, depth + 1);
      return fc.dictionary(stringArb.filter((k) => k.length < 100), value, { maxKeys: 3 });
    }
  }
}

/** Any message of `desc`, built from its descriptor (every field, oneof and nesting). */
function messageArb(desc: DescMessage, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  if (depth > 3) return fc.constant({});
  const members: Record<string, fc.Arbitrary<unknown>> = {};
  for (const member of desc.members) {
    if (member.kind === "oneof") {
      members[member.localName] = fc.oneof(...member.fields.map((f) => valueArb(f, depth).map((value) => ({ case: f.localName, value }))));
    } else {
      members[member.localName] = valueArb(member, depth);
    }
  }
  return fc.record(members, { requiredKeys: [] });
}

/** Every RPC served (reflection, a bidi stream, gets raw bytes only). */
const METHODS: DescMethod[] = [...SERVED, Health].flatMap((s) => s.methods).filter((m) => m.methodKind === "unary" || m.methodKind === "server_streaming");
/** Health Watch never ends by design: generated calls read its first answer; raw requests leave it out. */
const ENDLESS = new Set<DescMethod>([Health.method.watch]);
const ALL_PATHS = [...SERVED, Health, ServerReflection]
  .flatMap((s) => s.methods.map((m) => ({ method: m, path: `/${s.typeName}/${m.name}` })))
  .filter(({ method }) => !ENDLESS.has(method));

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

let server: TestServer;
let session: http2.ClientHttp2Session;
const codes = new Map<string, number>();
const count = (code: string) => codes.set(code, (codes.get(code) ?? 0) + 1);
let cases = 0;

beforeAll(async () => {
  server = await startTestServer({ env: { SHAREGRAPH_API_KEYS: `${ADMIN_KEY}:admin,${CHECK_KEY}:check,bound-key-0123456789:admin;name=bound;actors=alice` }, overrides: { logger } });
  await loadDemo(server.app.domain, server.app.log);
  session = await h2Connect(server.baseUrl);
});

afterAll(async () => {
  session?.destroy();
  await server?.stop();
});

async function h2(): Promise<http2.ClientHttp2Session> {
  if (session.closed || session.destroyed) session = await h2Connect(server.baseUrl);
  return session;
}

/** The outcome of a client call: a Code name, "OK", or "HANG". */
async function outcome(call: () => Promise<unknown>): Promise<string> {
  const settled = await settleWithin(
    call().then(
      () => "OK",
      (err: unknown) => Code[ConnectError.from(err).code] ?? "UNKNOWN-CODE",
    ),
    HANG_MS,
  );
  return settled === "pending" ? "HANG" : settled;
}

const BAD = new Set(["Internal", "Unknown", "HANG", "UNKNOWN-CODE", "trailer without grpc-status", "stream without an end"]);
const isBad = (code: string) => BAD.has(code) || code.startsWith("unknown code");

const keyArb = fc.constantFrom<string | undefined>(ADMIN_KEY, ADMIN_KEY, ADMIN_KEY, CHECK_KEY, "bound-key-0123456789", undefined, "not-a-key-at-all-0000");

describe("issue 7: no caller input yields INTERNAL/UNKNOWN, a hang or a broken server (property)", () => {
  it(`generated messages for every RPC (${NUM.generated} cases), over gRPC and Connect`, async () => {
    const transports = new Map<string, Transport>();
    const transport = (kind: "grpc" | "connect", key: string | undefined) => {
      const id = `${kind}:${key}`;
      if (!transports.has(id)) {
        const interceptors = key ? [bearer(key)] : [];
        transports.set(id, kind === "grpc" ? createGrpcTransport({ baseUrl: server.baseUrl, interceptors }) : createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1", interceptors }));
      }
      return transports.get(id)!;
    };
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...METHODS).chain((method) => fc.record({ method: fc.constant(method), init: messageArb(method.input) })),
        keyArb,
        fc.constantFrom<"grpc" | "connect">("grpc", "connect"),
        async ({ method, init }, key, kind) => {
          cases++;
          const client = createClient(method.parent, transport(kind, key)) as unknown as Record<string, (req: unknown) => unknown>;
          const message = create(method.input, init as never);
          const code = await outcome(async () => {
            const res = client[method.localName]!(message);
            if (method.methodKind === "server_streaming") {
              for await (const _ of res as AsyncIterable<unknown>) if (ENDLESS.has(method)) break;
            }
            else await res;
          });
          count(code);
          if (isBad(code)) console.log("BAD generated", code, method.name, key, kind, JSON.stringify(init, (_, v: unknown) => (typeof v === "bigint" ? String(v) : typeof v === "string" && v.length > 80 ? `<${v.length} chars>` : v)));
          expect({ rpc: `${method.parent.typeName}/${method.name}`, code }).not.toSatisfy(() => isBad(code));
        },
      ),
      { numRuns: NUM.generated },
    );
  });

  it(`valid messages mutated byte by byte, over raw gRPC (${NUM.mutated} cases)`, async () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bits: fc.integer({ min: 1, max: 255 }) }),
      fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
      fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
      fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), n: fc.integer({ min: 1, max: 4 }) }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...METHODS.filter((m) => !ENDLESS.has(m))).chain((method) => fc.record({ method: fc.constant(method), init: messageArb(method.input) })),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        keyArb,
        fc.boolean(),
        async ({ method, init }, mutations, key, compress) => {
          cases++;
          let bytes: Uint8Array = toBinary(method.input, create(method.input, init as never));
          for (const m of mutations) {
            const at = bytes.length === 0 ? 0 : m.at % (bytes.length + 1);
            if (m.kind === "flip" && bytes.length > 0) bytes[at % bytes.length] = (bytes[at % bytes.length] ?? 0) ^ m.bits;
            else if (m.kind === "cut") bytes = bytes.subarray(0, at);
            else if (m.kind === "insert") bytes = Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
            else if (m.kind === "delete") bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.n)]);
          }
          const body = compress ? envelope(gzipSync(bytes), 1) : envelope(bytes);
          const headers = {
            ":path": `/${method.parent.typeName}/${method.name}`,
            "content-type": "application/grpc",
            ...(compress ? { "grpc-encoding": "gzip" } : {}),
            ...(key ? { authorization: `Bearer ${key}` } : {}),
          };
          const answer = await settleWithin(h2Request(await h2(), headers, body), HANG_MS);
          const code = answer === "pending" ? "HANG" : (answer.grpcCode ?? `HTTP ${answer.status} without grpc-status`);
          count(code);
          expect({ rpc: headers[":path"], code }).not.toSatisfy(() => isBad(code) || code.startsWith("HTTP"));
        },
      ),
      { numRuns: NUM.mutated },
    );
  });

  it(`raw bytes with any content type, encoding and protocol, to any path (${NUM.raw} cases)`, async () => {
    const contentType = fc.oneof(
      fc.constantFrom(
        "application/grpc",
        "application/grpc+proto",
        "application/grpc+json",
        "application/grpc-web",
        "application/grpc-web+json",
        "application/grpc-web-text",
        "application/proto",
        "application/json",
        "application/connect+proto",
        "application/connect+json",
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
        "",
      ),
      fc.string({ maxLength: 40 }),
    );
    const encoding = fc.constantFrom(undefined, "gzip", "br", "identity", "deflate", "snappy", "");
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ALL_PATHS),
        fc.uint8Array({ maxLength: 2_048 }),
        fc.boolean(),
        contentType,
        encoding,
        keyArb,
        fc.constantFrom<"h1" | "h2">("h1", "h2"),
        async ({ path }, payload, enveloped, type, enc, key, version) => {
          cases++;
          const body = enveloped ? envelope(payload, (payload[0] ?? 0) & 0x01) : Buffer.from(payload);
          const headers: Record<string, string> = { "content-type": type };
          if (enc !== undefined) {
            headers["grpc-encoding"] = enc;
            headers["content-encoding"] = enc;
            headers["connect-content-encoding"] = enc;
          }
          if (key) headers["authorization"] = `Bearer ${key}`;
          let code: string;
          if (version === "h2") {
            const answer = await settleWithin(h2Request(await h2(), { ":path": path, ...headers }, body), HANG_MS);
            code = answer === "pending" ? "HANG" : answer.grpcCode ?? classify(answer.status, undefined, answer.body, String(answer.headers["content-type"] ?? ""));
          } else {
            const answer = await settleWithin(h1Request(`${server.baseUrl}${path}`, headers, body).catch(() => "reset" as const), HANG_MS);
            code = answer === "pending" ? "HANG" : answer === "reset" ? "connection reset" : classify(answer.status, answer.headers["grpc-status"] as string | undefined, answer.body, answer.headers["content-type"] ?? "");
          }
          count(code);
          // 505: a bidi stream (reflection) asked over HTTP/1.1, which cannot carry it.
          expect({ path, type, enc, code }).not.toSatisfy(() => isBad(code) || (/^HTTP 5/.test(code) && code !== "HTTP 505"));
        },
      ),
      { numRuns: NUM.raw },
    );
  });

  it(`arbitrary JSON as Connect requests (${NUM.json} cases)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...METHODS.filter((m) => m.methodKind === "unary")),
        fc.oneof(fc.json(), messageArb(PermissionService.methods[0]!.input).map((o) => JSON.stringify(o, (_, v: unknown) => (typeof v === "bigint" ? String(v) : v)))),
        keyArb,
        async (method, json, key) => {
          cases++;
          const answer = await settleWithin(
            h1Request(`${server.baseUrl}/${method.parent.typeName}/${method.name}`, { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) }, Buffer.from(json)),
            HANG_MS,
          );
          const code = answer === "pending" ? "HANG" : classify(answer.status, undefined, answer.body, answer.headers["content-type"] ?? "");
          count(code);
          expect({ rpc: method.name, json: json.slice(0, 200), code }).not.toSatisfy(() => isBad(code) || /^HTTP 5/.test(code));
        },
      ),
      { numRuns: NUM.json },
    );
  });

  it("afterwards: the server answers, its outbox is empty, and it never logged an unexpected failure", async () => {
    const permission: Client<typeof PermissionService> = createClient(PermissionService, createGrpcTransport({ baseUrl: server.baseUrl, interceptors: [bearer(ADMIN_KEY)] }));
    const r = await permission.checkPermission({
      resource: { type: "workspace", id: "emea" },
      permission: "view",
      subject: { type: "user", id: "alice" },
      consistency: { requirement: { case: "fullyConsistent", value: true } },
    });
    expect(r.consistencyToken).not.toBe("");
    expect((await fetch(`${server.baseUrl}/healthz`)).status).toBe(200);
    const admin = createClient(AdminService, createGrpcTransport({ baseUrl: server.baseUrl, interceptors: [bearer(ADMIN_KEY)] }));
    expect((await admin.getOutboxStatus({})).pendingBatches).toBe(0);
    expect(lines.filter((l) => Number(l["level"]) >= 50).map((l) => `${String(l["method"])}: ${String(l["msg"])} ${JSON.stringify(l["err"] ?? l["error"] ?? "")}`)).toEqual([]);
    console.log(`fuzz: ${cases} cases; outcomes ${JSON.stringify(Object.fromEntries([...codes].sort((a, b) => b[1] - a[1])))}`);
    expect(cases).toBe(NUM.generated + NUM.mutated + NUM.raw + NUM.json);
  });
});

/**
 * A response as a code: the gRPC status (headers, or the trailer frame of
 * gRPC-Web), the error of a Connect end-stream frame or unary JSON body,
 * else the HTTP status for answers that are not RPC responses (404, 415 …).
 */
function classify(status: number | undefined, grpcStatus: string | undefined, body: Buffer, contentType: string): string {
  const name = (n: number) => (n === 0 ? "OK" : (Code[n] ?? "UNKNOWN-CODE"));
  if (grpcStatus !== undefined) return name(Number(grpcStatus));
  if (/^application\/(grpc-web|connect\+)/.test(contentType)) {
    for (let at = 0; at + 5 <= body.length; ) {
      const flags = body[at]!;
      const length = body.readUInt32BE(at + 1);
      const data = body.subarray(at + 5, at + 5 + length);
      if (flags & 0x80) {
        const match = /grpc-status:\s*(\d+)/i.exec(data.toString("utf8"));
        return match ? name(Number(match[1])) : "trailer without grpc-status";
      }
      if (flags & 0x02) {
        const end = JSON.parse(data.toString("utf8")) as { error?: { code?: string } };
        return end.error?.code === undefined ? "OK" : connectCode(end.error.code);
      }
      at += 5 + length;
    }
    return status === 200 ? "stream without an end" : `HTTP ${status}`;
  }
  if (status === 200) return "OK";
  try {
    const json = JSON.parse(body.toString("utf8")) as { code?: string };
    if (typeof json.code === "string") return connectCode(json.code);
  } catch {
    // not JSON: an HTTP-level answer (404, 405, 415 …)
  }
  return `HTTP ${status}`;
}

function connectCode(code: string): string {
  const known = codeFromString(code);
  return known === undefined ? `unknown code ${JSON.stringify(code)}` : Code[known];
}
