import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health } from "../gen/health/v1/health_pb.js";
import { AdminService } from "../gen/sharegraph/v1/admin_service_pb.js";
import { ContentService } from "../gen/sharegraph/v1/content_service_pb.js";
import { PartnerService } from "../gen/sharegraph/v1/partner_service_pb.js";
import { PermissionService } from "../gen/sharegraph/v1/permission_service_pb.js";
import { UsageError } from "./args.js";

export const DEFAULT_ADDR = "127.0.0.1:8080";

export interface Target {
  /** http://host:port */
  readonly baseUrl: string;
  /** Where the address came from, for messages. */
  readonly addrSource: string;
  readonly key: string | undefined;
  readonly keySource: string;
}

export interface Clients {
  readonly target: Target;
  readonly permission: Client<typeof PermissionService>;
  readonly content: Client<typeof ContentService>;
  readonly partner: Client<typeof PartnerService>;
  readonly admin: Client<typeof AdminService>;
  readonly health: Client<typeof Health>;
}

export interface TargetOptions {
  readonly addr?: string | undefined;
  readonly key?: string | undefined;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

/**
 * The address: --addr, else SHAREGRAPH_ADDR, else 127.0.0.1:8080. The key:
 * --key, else SHAREGRAPH_API_KEY, else the admin key (or the first key) in
 * the local .sharegraph/api-keys (SHAREGRAPH_DATA_DIR moves it) that a
 * server started in this directory generated.
 */
export function resolveTarget(options: TargetOptions): Target {
  const env = options.env ?? process.env;
  const addr = options.addr ?? env["SHAREGRAPH_ADDR"] ?? DEFAULT_ADDR;
  const addrSource = options.addr !== undefined ? "--addr" : env["SHAREGRAPH_ADDR"] !== undefined ? "SHAREGRAPH_ADDR" : "the default";
  const baseUrl = toBaseUrl(addr);
  if (options.key !== undefined) return { baseUrl, addrSource, key: options.key, keySource: "--key" };
  if (env["SHAREGRAPH_API_KEY"]) return { baseUrl, addrSource, key: env["SHAREGRAPH_API_KEY"], keySource: "SHAREGRAPH_API_KEY" };
  const file = resolve(options.cwd ?? process.cwd(), env["SHAREGRAPH_DATA_DIR"] ?? ".sharegraph", "api-keys");
  const key = existsSync(file) ? keyFromFile(file) : undefined;
  return { baseUrl, addrSource, key, keySource: key ? file : "nowhere (no --key, SHAREGRAPH_API_KEY or .sharegraph/api-keys)" };
}

function toBaseUrl(addr: string): string {
  const text = addr.trim();
  const withScheme = /^https?:\/\//.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UsageError(`address ${JSON.stringify(addr)}: expected host:port, e.g. 127.0.0.1:8080`);
  }
  if (!url.port && !/^https?:\/\/[^/]*:\d+/.test(withScheme)) throw new UsageError(`address ${JSON.stringify(addr)}: give the port, e.g. 127.0.0.1:8080`);
  // A server listening on every interface is reached on this machine's loopback.
  const host = url.hostname === "0.0.0.0" ? "127.0.0.1" : url.hostname === "[::]" ? "[::1]" : url.hostname;
  return `${url.protocol}//${host}:${url.port || (url.protocol === "https:" ? "443" : "80")}`;
}

/** The admin key of a local api-keys file (secret:scope;name=…), else its first key. */
function keyFromFile(file: string): string | undefined {
  const keys = readFileSync(file, "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith("#"))
    .map((line) => {
      const [secret = "", rest = ""] = line.split(/:(.*)/s);
      return { secret, scope: rest.split(";")[0] };
    });
  return (keys.find((k) => k.scope === "admin") ?? keys[0])?.secret;
}

export function connect(target: Target, timeoutMs: number | undefined): Clients {
  const bearer: Interceptor = (next) => (req) => {
    if (target.key) req.header.set("authorization", `Bearer ${target.key}`);
    return next(req);
  };
  const transport = createGrpcTransport({ baseUrl: target.baseUrl, interceptors: [bearer], ...(timeoutMs !== undefined ? { defaultTimeoutMs: timeoutMs } : {}) });
  return {
    target,
    permission: createClient(PermissionService, transport),
    content: createClient(ContentService, transport),
    partner: createClient(PartnerService, transport),
    admin: createClient(AdminService, transport),
    health: createClient(Health, transport),
  };
}

/** One line for a failed call: the server's message and code, or why the server could not be reached. */
export function describeFailure(err: unknown, target: Target): string {
  const e = ConnectError.from(err);
  const cause = causeCode(err);
  if (cause && ["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "ECONNRESET", "EAI_AGAIN", "ETIMEDOUT"].includes(cause)) {
    const why = { ECONNREFUSED: "connection refused", ENOTFOUND: "unknown host", EAI_AGAIN: "host name lookup failed" }[cause] ?? cause;
    return `cannot reach sharegraph at ${target.baseUrl} (${why}); is the server running? (address from ${target.addrSource}; set it with --addr or SHAREGRAPH_ADDR)`;
  }
  if (e.code === Code.DeadlineExceeded) return `no answer from sharegraph at ${target.baseUrl} in time (deadline_exceeded); raise --timeout or check the server`;
  if (e.code === Code.Unauthenticated) {
    const hint = target.key ? `the key from ${target.keySource} was refused` : "no API key was found: pass --key or set SHAREGRAPH_API_KEY";
    return `${e.rawMessage} (unauthenticated): ${hint}`;
  }
  return `${e.rawMessage} (${codeName(e.code)})`;
}

export function codeName(code: Code): string {
  return Code[code].replace(/[A-Z]/g, (c, i: number) => (i === 0 ? c.toLowerCase() : `_${c.toLowerCase()}`));
}

function causeCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 6; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
