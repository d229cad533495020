import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import { parseApiKey, type ApiKey, type ApiKeyScope } from "../config.js";

/** Services anyone may call: load balancers and grpcurl need them without a key. */
const OPEN_SERVICES = new Set(["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]);

/** Read RPCs a `check` key may call; everything else needs `admin`. */
const READ_SERVICES = new Set(["sharegraph.v1.PermissionService"]);
const READ_METHOD = /^(Get|List|Check|Lookup|Explain)[A-Z]/;
/** Admin-service RPCs any key may call: GetCaller tells a key's holder what it may do. */
const CHECK_METHODS = new Set(["sharegraph.v1.AdminService/GetCaller"]);

export function requiredScope(service: string, method: string): ApiKeyScope | "open" {
  if (OPEN_SERVICES.has(service)) return "open";
  if (CHECK_METHODS.has(`${service}/${method}`)) return "check";
  if (READ_SERVICES.has(service)) return "check";
  if (service.startsWith("sharegraph.v1.") && service !== "sharegraph.v1.AdminService" && READ_METHOD.test(method)) return "check";
  return "admin";
}

/**
 * Keys are compared as SHA-256 digests with timingSafeEqual: equal lengths,
 * and no early exit that would time-leak how much of a guess was right.
 */
export class ApiKeys {
  readonly #keys: ReadonlyArray<{ digest: Buffer; key: ApiKey }>;

  constructor(keys: readonly ApiKey[]) {
    this.#keys = keys.map((key) => ({ digest: digest(key.secret), key }));
  }

  /** The key with the presented secret, or undefined. Compares against every key. */
  find(secret: string): ApiKey | undefined {
    const presented = digest(secret);
    let found: ApiKey | undefined;
    for (const { digest, key } of this.#keys) if (timingSafeEqual(digest, presented)) found ??= key;
    return found;
  }

  /** The scope of the presented secret, or undefined. */
  scopeOf(secret: string): ApiKeyScope | undefined {
    return this.find(secret)?.scope;
  }

  /**
   * R41, for a call to service/method with this authorization header: the
   * caller's key, undefined for open services, or a ConnectError (no or
   * unknown key: UNAUTHENTICATED; a check key on an admin RPC:
   * PERMISSION_DENIED). The one check, made before a request body is read
   * (front door), or by the interceptor for calls that did not pass there.
   */
  authorize(service: string, method: string, authorization: string | null | undefined): ApiKey | undefined {
    const needed = requiredScope(service, method);
    if (needed === "open") return undefined;
    const match = /^Bearer\s+(\S+)$/i.exec((authorization ?? "").trim());
    if (!match) throw new ConnectError('missing API key: send "authorization: Bearer <key>"', Code.Unauthenticated);
    const key = this.find(match[1]!);
    if (!key) throw new ConnectError("unknown API key", Code.Unauthenticated);
    if (needed === "admin" && key.scope !== "admin") {
      throw new ConnectError(`${service}/${method} needs an admin API key; this key has scope "check"`, Code.PermissionDenied);
    }
    return key;
  }

  /** Names, scopes and actors (never secrets), for the start-up log. */
  describe(): Array<{ name: string; scope: ApiKeyScope; actors: string }> {
    return this.#keys.map(({ key }) => ({ name: key.name, scope: key.scope, actors: key.actors === "any" ? "*" : key.actors.join("|") || "-" }));
  }
}

function digest(secret: string): Buffer {
  return createHash("sha256").update(secret, "utf8").digest();
}

/** The key a call was made with (undefined for open services); the log line names it. */
export const callerKey = createContextKey<ApiKey | undefined>(undefined, { description: "API key of this call" });

/**
 * R41 and the actor binding of keys: no or unknown key → UNAUTHENTICATED; a
 * check key on an admin RPC → PERMISSION_DENIED; a request whose `actor` the
 * key may not assert → PERMISSION_DENIED naming the key (never its secret).
 * Generic over request messages: any top-level string field named `actor`.
 */
export function authInterceptor(keys: ApiKeys): Interceptor {
  return (next) => async (req) => {
    // The front door has already checked the key before reading the body (and refused the call if it failed);
    // calls that did not come through it (the router alone, in tests) are checked here.
    const key = req.contextValues.get(callerKey) ?? keys.authorize(req.service.typeName, req.method.name, req.header.get("authorization"));
    if (!key) return next(req);
    req.contextValues.set(callerKey, key);
    const field = actorField(req.method.input);
    if (!field || key.actors === "any") return next(req);
    if (!req.stream) {
      assertMayAct(key, (req.message as Record<string, unknown>)[field.localName]);
      return next(req);
    }
    const messages = req.message;
    return next({
      ...req,
      message: (async function* () {
        for await (const message of messages) {
          assertMayAct(key, (message as Record<string, unknown>)[field.localName]);
          yield message;
        }
      })(),
    });
  };
}

function actorField(input: DescMessage): DescField | undefined {
  return input.fields.find((f) => f.name === "actor" && f.fieldKind === "scalar" && f.scalar === ScalarType.STRING);
}

function assertMayAct(key: ApiKey, actor: unknown): void {
  // An empty actor is the handler's INVALID_ARGUMENT ("actor: is required").
  if (key.actors === "any" || typeof actor !== "string" || actor === "") return;
  if (key.actors.includes(actor)) return;
  const allowed = key.actors.length === 0 ? "it is bound to no actor" : "it is bound to other actors";
  throw new ConnectError(`API key "${key.name}" may not act as ${JSON.stringify(actor)}: ${allowed} (SHAREGRAPH_API_KEYS ;actors=)`, Code.PermissionDenied);
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
      .map((line, index) => {
        const key = parseApiKey(line);
        if (typeof key === "string") throw new Error(`${file}: key ${index + 1}${key} (secret:scope[;name=…][;actors=…])`);
        return key;
      });
    return { keys, file, created: false };
  }
  mkdirSync(dataDir, { recursive: true });
  const lines = [`sg_admin_${randomBytes(24).toString("base64url")}:admin;name=local-admin`, `sg_check_${randomBytes(24).toString("base64url")}:check;name=local-check`];
  const keys = lines.map((line) => parseApiKey(line) as ApiKey);
  const text = `# sharegraph API keys (secret:scope;name=…), generated on first start.\n${lines.join("\n")}\n`;
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { keys, file, created: true };
}
