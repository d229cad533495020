import http from "node:http";
import http2 from "node:http2";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { safeRelative } from "../../src/api/console-assets.js";
import { CHECK_KEY, startTestServer, type TestServer } from "../support/server.js";

/*
 * Issue 11: the console's files on the API's port, without a key, and
 * nothing else: a built console in a temporary directory (with a secret
 * next to it and in its parent), requests sent with raw paths (fetch and
 * URL would normalize "..").
 */

interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

function raw(server: TestServer, path: string, method = "GET", headers: Record<string, string> = {}): Promise<Answer> {
  const { port } = server.app.address;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("error", reject);
    req.end(method === "POST" ? "{}" : undefined);
  });
}

let root: string;
let built: TestServer;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "sg-console-"));
  const dir = join(root, "console");
  mkdirSync(join(dir, "assets"), { recursive: true });
  writeFileSync(join(dir, "index.html"), "<!doctype html><title>console</title>");
  writeFileSync(join(dir, "assets", "index-AbC123.js"), "console.log('app')");
  writeFileSync(join(dir, "assets", "index-AbC123.css"), "body{}");
  writeFileSync(join(dir, ".build-stamp"), "stamp");
  writeFileSync(join(root, "secret.txt"), "TOP SECRET");
  mkdirSync(join(root, "console-other"));
  writeFileSync(join(root, "console-other", "secret.txt"), "TOP SECRET");
  built = await startTestServer({ overrides: { consoleDir: dir } });
});

afterAll(async () => {
  await built?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe("console assets (issue 11)", () => {
  it("serves index.html at /console/ without an API key, with the security headers and no-cache", async () => {
    const r = await raw(built, "/console/");
    expect(r.status).toBe(200);
    expect(r.body).toContain("<title>console</title>");
    expect(r.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(r.headers["cache-control"]).toBe("no-cache");
    expect(r.headers["x-content-type-options"]).toBe("nosniff");
    expect(r.headers["referrer-policy"]).toBe("no-referrer");
    expect(r.headers["x-frame-options"]).toBe("DENY");
    const csp = r.headers["content-security-policy"] ?? "";
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self';");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("unsafe");
  });

  it("serves hashed assets with their content type, cacheable for a year", async () => {
    const js = await raw(built, "/console/assets/index-AbC123.js");
    expect([js.status, js.headers["content-type"], js.headers["cache-control"], js.body]).toEqual([
      200,
      "text/javascript; charset=utf-8",
      "public, max-age=31536000, immutable",
      "console.log('app')",
    ]);
    const css = await raw(built, "/console/assets/index-AbC123.css");
    expect([css.status, css.headers["content-type"]]).toEqual([200, "text/css; charset=utf-8"]);
  });

  it("answers client routes with the app (SPA fallback), but a missing file with an extension is 404", async () => {
    for (const path of ["/console/access", "/console/access/", "/console/partners/northwind?tab=1"]) {
      const r = await raw(built, path);
      expect([path, r.status, r.body]).toEqual([path, 200, "<!doctype html><title>console</title>"]);
    }
    const missing = await raw(built, "/console/assets/nope-123.js");
    expect(missing.status).toBe(404);
    expect(missing.headers["x-content-type-options"]).toBe("nosniff");
  });

  it("redirects / and /console to /console/", async () => {
    for (const path of ["/", "/console"]) {
      const r = await raw(built, path);
      expect([path, r.status, r.headers.location]).toEqual([path, 308, "/console/"]);
    }
  });

  it("refuses path traversal: .., encoded .., backslashes, NUL, dotfiles, a sibling directory", async () => {
    const attempts = [
      "/console/../secret.txt",
      "/console/assets/../../secret.txt",
      "/console/%2e%2e/secret.txt",
      "/console/%2E%2E/secret.txt",
      "/console/%2e%2e%2fsecret.txt",
      "/console/assets/%2e%2e%2f%2e%2e%2fsecret.txt",
      "/console/..%5csecret.txt",
      "/console/%5c..%5csecret.txt",
      "/console/..\\secret.txt",
      "/console/index.html%00.js",
      "/console/%00",
      "/console/.build-stamp",
      "/console/%2ebuild-stamp",
      "/console//etc/passwd",
      "/console/%2fetc%2fpasswd",
      "/console/../console-other/secret.txt",
      "/console/%252e%252e/secret.txt",
      "/console/%e0%a4%a",
      "/console/C:%5cWindows",
    ];
    for (const path of attempts) {
      const r = await raw(built, path);
      // Never the secret; a refusal (404) or, for names that are not files, the app itself.
      expect(r.body, path).not.toContain("TOP SECRET");
      expect(r.body, path).not.toContain("stamp");
      expect(r.body, path).not.toContain("root:");
      expect([200, 404], path).toContain(r.status);
    }
    expect((await raw(built, "/console/%2e%2e/secret.txt")).status).toBe(404);
    expect((await raw(built, "/console/index.html%00.js")).status).toBe(404);
    expect((await raw(built, "/console/..%5csecret.txt")).status).toBe(404);
  });

  it("safeRelative: decodes once and refuses anything that could leave the directory", () => {
    expect(safeRelative("")).toBe("");
    expect(safeRelative("assets/a.js")).toBe("assets/a.js");
    expect(safeRelative("access/")).toBe("access");
    for (const bad of ["..", "../x", "a/../../x", "%2e%2e/x", "a%2f..%2f..%2fx", "a\\b", "%5c", "a%00b", "/etc/passwd", "a//b", ".env", "%", "c:x", "a%0ab"]) {
      expect(safeRelative(bad), bad).toBeUndefined();
    }
  });

  it("answers only GET and HEAD (405 with Allow), HEAD without a body", async () => {
    for (const method of ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"]) {
      const r = await raw(built, "/console/", method, method === "POST" ? { "content-type": "application/json" } : {});
      expect([method, r.status, r.headers.allow]).toEqual([method, 405, "GET, HEAD"]);
    }
    const head = await raw(built, "/console/assets/index-AbC123.js", "HEAD");
    expect([head.status, head.body, head.headers["content-length"]]).toEqual([200, "", String("console.log('app')".length)]);
  });

  it("is served over HTTP/2 too (the same port), and the API still needs its key", async () => {
    const session = http2.connect(built.baseUrl);
    try {
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({ ":path": "/console/", ":method": "GET" });
        let status = 0;
        let body = "";
        stream.on("response", (h) => (status = Number(h[":status"])));
        stream.setEncoding("utf8");
        stream.on("data", (c: string) => (body += c));
        stream.on("end", () => resolve({ status, body }));
        stream.on("error", reject);
        stream.end();
      });
      expect(answer.status).toBe(200);
      expect(answer.body).toContain("<title>console</title>");
    } finally {
      session.close();
    }
    const unauthenticated = await raw(built, "/sharegraph.v1.PermissionService/CheckPermission", "POST", { "content-type": "application/json" });
    expect(unauthenticated.status).toBe(401);
    expect((await raw(built, "/healthz")).status).toBe(200);
    expect((await raw(built, "/nothing-here")).status).toBe(404);
  });

  it("AdminService/GetCaller tells any key its name, scope and actors (never its secret)", async () => {
    const admin = await built.clients().admin.getCaller({});
    expect([admin.scope, admin.anyActor]).toEqual(["admin", true]);
    const check = await built.clients("connect", CHECK_KEY).admin.getCaller({});
    expect([check.scope, check.anyActor, check.actors]).toEqual(["check", true, []]);
    expect(JSON.stringify(check)).not.toContain(CHECK_KEY);
    // Still admin-only: the rest of AdminService.
    const refused = await built
      .clients("connect", CHECK_KEY)
      .admin.getOutboxStatus({})
      .catch((e: unknown) => ConnectError.from(e));
    expect(refused).toBeInstanceOf(ConnectError);
    expect((refused as ConnectError).code).toBe(Code.PermissionDenied);
    const none = await built
      .clients("connect", null)
      .admin.getCaller({})
      .catch((e: unknown) => ConnectError.from(e));
    expect((none as ConnectError).code).toBe(Code.Unauthenticated);
  });
});

describe("console assets when the console is not built", () => {
  let unbuilt: TestServer;
  beforeAll(async () => {
    unbuilt = await startTestServer({ overrides: { consoleDir: join(root, "not-built") } });
  });
  afterAll(async () => {
    await unbuilt?.stop();
  });

  it("answers 503 at /console/ saying to run npm run build", async () => {
    const r = await raw(unbuilt, "/console/");
    expect(r.status).toBe(503);
    expect(r.body).toContain("npm run build");
    expect(r.headers["x-content-type-options"]).toBe("nosniff");
    expect((await raw(unbuilt, "/")).status).toBe(308);
  });
});

describe("GetCaller with a key bound to actors", () => {
  let bound: TestServer;
  beforeAll(async () => {
    bound = await startTestServer({ env: { SHAREGRAPH_API_KEYS: "bound-key-0123456789abc:check;name=portal;actors=alice|bob" } });
  });
  afterAll(async () => {
    await bound?.stop();
  });

  it("names the actors the key may assert", async () => {
    const r = await bound.clients("connect", "bound-key-0123456789abc").admin.getCaller({});
    expect([r.keyName, r.scope, r.anyActor, r.actors]).toEqual(["portal", "check", false, ["alice", "bob"]]);
  });
});
