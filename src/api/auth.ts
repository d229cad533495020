import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { ApiKey, ApiKeyScope } from "../config.js";

/** Services anyone may call: load balancers and grpcurl need them without a key. */
const OPEN_SERVICES = new Set(["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]);

/** Read RPCs a `check` key may call; everything else needs `admin`. */
const READ_SERVICES = new Set(["sharegraph.v1.PermissionService"]);
const READ_METHOD = /^(Get|List|Check|Lookup|Explain)[A-Z]/;

export function requiredScope(service: string, method: string): ApiKeyScope | "open" {
  if (OPEN_SERVICES.has(service)) return "open";
  if (READ_SERVICES.has(service)) return "check";
  if (service.startsWith("sharegraph.v1.") && service !== "sharegraph.v1.AdminService" && READ_METHOD.test(method)) return "check";
  return "admin";
}

/**
 * Keys are compared as SHA-256 digests with timingSafeEqual: equal lengths,
 * and no early exit that would time-leak how much of a guess was right.
 */
export class ApiKeys {
  readonly #keys: ReadonlyArray<{ digest: Buffer; scope: ApiKeyScope }>;

  constructor(keys: readonly ApiKey[]) {
    this.#keys = keys.map((k) => ({ digest: digest(k.secret), scope: k.scope }));
  }

  /** The scope of the presented secret, or undefined. Compares against every key. */
  scopeOf(secret: string): ApiKeyScope | undefined {
    const presented = digest(secret);
    let found: ApiKeyScope | undefined;
    for (const key of this.#keys) if (timingSafeEqual(key.digest, presented)) found ??= key.scope;
    return found;
  }
}

function digest(secret: string): Buffer {
  return createHash("sha256").update(secret, "utf8").digest();
}

/** R41: no or unknown key → UNAUTHENTICATED; a check key on an admin RPC → PERMISSION_DENIED. */
export function authInterceptor(keys: ApiKeys): Interceptor {
  return (next) => async (req) => {
    const needed = requiredScope(req.service.typeName, req.method.name);
    if (needed === "open") return next(req);
    const header = req.header.get("authorization") ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
    if (!match) {
      throw new ConnectError('missing API key: send "authorization: Bearer <key>"', Code.Unauthenticated);
    }
    const scope = keys.scopeOf(match[1]!);
    if (!scope) throw new ConnectError("unknown API key", Code.Unauthenticated);
    if (needed === "admin" && scope !== "admin") {
      throw new ConnectError(`${req.service.typeName}/${req.method.name} needs an admin API key; this key has scope "check"`, Code.PermissionDenied);
    }
    return next(req);
  };
}

/**
 * The embedded default must never run open: without SHAREGRAPH_API_KEYS it
 * generates an admin and a check key once and keeps them in
 * <dataDir>/api-keys (mode 0600), where the README tells the user to look.
 */
export function localApiKeys(dataDir: string): { keys: ApiKey[]; file: string; created: boolean } {
  const file = join(dataDir, "api-keys");
  if (existsSync(file)) {
    const keys = readFileSync(file, "utf8")
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith("#"))
      .map((line) => {
        const cut = line.lastIndexOf(":");
        const scope = line.slice(cut + 1);
        if (cut <= 0 || (scope !== "admin" && scope !== "check")) throw new Error(`${file}: malformed line (expected secret:admin or secret:check)`);
        return { secret: line.slice(0, cut), scope: scope as ApiKeyScope };
      });
    return { keys, file, created: false };
  }
  mkdirSync(dataDir, { recursive: true });
  const keys: ApiKey[] = [
    { secret: `sg_admin_${randomBytes(24).toString("base64url")}`, scope: "admin" },
    { secret: `sg_check_${randomBytes(24).toString("base64url")}`, scope: "check" },
  ];
  const text = `# sharegraph API keys (secret:scope), generated on first start.\n${keys.map((k) => `${k.secret}:${k.scope}`).join("\n")}\n`;
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { keys, file, created: true };
}
