import { createHash } from "node:crypto";
import { resolve } from "node:path";
import { z } from "zod";
import { DEFAULT_SPICEDB_BINARY, databaseNameOf, defaultDatastoreUri, isExecutableFile } from "./engine/spicedb-config.js";

/**
 * Configuration, read once from the environment at start-up. Every problem
 * is reported at once; the result is frozen. The README's configuration
 * table lists these variables.
 */

export type ApiKeyScope = "admin" | "check";

/**
 * An API key: its secret, its scope, the name it is known by (logs and
 * refusals name it, never the secret) and the actors it may assert in the
 * `actor` field of a call: any, only those listed, or none.
 */
export interface ApiKey {
  readonly secret: string;
  readonly scope: ApiKeyScope;
  readonly name: string;
  readonly actors: "any" | readonly string[];
}

export interface Config {
  /** host:port the server listens on. */
  readonly addr: { readonly host: string; readonly port: number };
  /** Where the embedded default keeps PGlite data and generated API keys. */
  readonly dataDir: string;
  readonly database:
    | { readonly kind: "pglite" }
    | {
        readonly kind: "postgres";
        readonly url: string;
        readonly poolSize: number;
        /** Connecting, or waiting for a pooled connection. */
        readonly connectTimeoutMs: number;
        /** Each statement (client read timeout and statement_timeout). */
        readonly queryTimeoutMs: number;
        /** How often reachability is probed (health goes NOT_SERVING while unreachable). */
        readonly probeIntervalMs: number;
      };
  readonly spicedb:
    | {
        readonly kind: "embedded";
        /** Past this many relationships the embedded engine is advised against (a warning at start-up). */
        readonly advisedMaxRelationships: number;
        /** Run the embedded SpiceDB in a worker thread (its calls then never block the event loop). */
        readonly thread: boolean;
      }
    | {
        readonly kind: "remote";
        readonly endpoint: string;
        readonly token: string;
        readonly tls: "plaintext" | "tls" | { readonly caFile: string };
        readonly timeoutMs: number;
        readonly maxUpdatesPerWrite: number;
      }
    /** A `spicedb serve` that sharegraph starts and supervises (SHAREGRAPH_ENGINE=spicedb). */
    | {
        readonly kind: "spicedb";
        readonly binary: string;
        readonly datastoreUri: string;
        readonly poolSize: number;
        readonly timeoutMs: number;
        readonly maxUpdatesPerWrite: number;
      };
  /** undefined: generate keys on first start and keep them in dataDir (embedded default only). */
  readonly apiKeys: readonly ApiKey[] | undefined;
  readonly platformAdmins: readonly string[];
  readonly logLevel: string;
  /** undefined: pretty on a terminal, JSON lines otherwise. */
  readonly logFormat: "json" | "pretty" | undefined;
  readonly outbox: {
    readonly applyTimeoutMs: number;
    readonly pollMs: number;
    readonly maxBackoffMs: number;
    readonly retentionHours: number;
  };
  /** Limits and timeouts of the server itself (what a caller can make it hold). */
  readonly transport: {
    /** Largest request message, after decompression. */
    readonly maxRequestBytes: number;
    /** A new connection's first bytes, and each request (headers and body), must arrive within this. */
    readonly readTimeoutMs: number;
    /** A connection with no call in flight is closed after this. */
    readonly idleTimeoutMs: number;
    readonly maxConnections: number;
    readonly maxStreamsPerConnection: number;
    /** On SIGTERM: how long calls in flight may take to finish. */
    readonly shutdownGraceMs: number;
    /** On SIGTERM: the process exits after this even if something hangs. */
    readonly shutdownTimeoutMs: number;
  };
  readonly reads: {
    /** How stale a minimize_latency read may be (the snapshot it is pinned to). */
    readonly maxStalenessMs: number;
    /** Decisions remembered per snapshot; 0 turns the decision cache off. */
    readonly decisionCacheSize: number;
    /** Who answers `view` on content for a user: SpiceDB, or Postgres from the same rows (src/store/content-view.ts). */
    readonly viewChecksFrom: "spicedb" | "postgres";
    /** Who answers a Share's own questions (the actor's rights, R6 eligibility, R2 inheritance): SpiceDB, or Postgres (src/store/sharing-questions.ts). */
    readonly writeChecksFrom: "spicedb" | "postgres";
  };
  readonly limits: {
    readonly maxBulkItems: number;
    readonly maxLookupPageSize: number;
    readonly maxListPageSize: number;
    /** The longest a call may run, whatever deadline its caller sent (or none). */
    readonly callTimeoutMs: number;
  };
  readonly partners: {
    readonly invitationTtlDays: number;
    /** "{token}" is replaced by the invitation token; undefined: mails carry the token alone. */
    readonly acceptUrl: string | undefined;
    /** More domains treated as public (free mail), beyond the built-in list. */
    readonly extraPublicDomains: readonly string[];
  };
  readonly notifications: {
    /** undefined: notifications are recorded and listable but not sent. */
    readonly smtpUrl: string | undefined;
    readonly from: string;
    readonly pollMs: number;
    readonly maxAttempts: number;
    readonly maxBackoffMs: number;
  };
  readonly demo: boolean;
}

const boolean = z
  .enum(["true", "false", "1", "0", "yes", "no", ""])
  .transform((v) => v === "true" || v === "1" || v === "yes");

/**
 * Where the embedded engine stops being fit (docs/PERFORMANCE.md): it rebuilds
 * its whole index in memory at every start and answers on the calling thread
 * without SpiceDB's caches, so start-up time, memory and check latency grow
 * with the data.
 */
export const EMBEDDED_ADVISED_MAX_RELATIONSHIPS = 100_000;

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const envSchema = z.object({
  SHAREGRAPH_ADDR: z
    .string()
    .default("127.0.0.1:8080")
    .refine((v) => /^[^\s:]+:\d{1,5}$/.test(v) || /^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(v), "expected host:port, e.g. 127.0.0.1:8080"),
  SHAREGRAPH_DATA_DIR: z.string().min(1).default("./.sharegraph"),
  DATABASE_URL: z
    .string()
    .optional()
    .refine((v) => !v || /^postgres(ql)?:\/\//.test(v), "expected a postgres:// URL"),
  DATABASE_POOL_SIZE: positiveInt(10),
  DATABASE_CONNECT_TIMEOUT_MS: positiveInt(5_000),
  DATABASE_QUERY_TIMEOUT_MS: positiveInt(30_000),
  DATABASE_PROBE_INTERVAL_MS: positiveInt(2_000),
  CALL_TIMEOUT_MS: positiveInt(60_000),
  SHAREGRAPH_ENGINE: z.enum(["embedded", "spicedb", "remote"]).optional(),
  SPICEDB_ENDPOINT: z.string().optional(),
  SPICEDB_TOKEN: z.string().optional(),
  SPICEDB_INSECURE: boolean.default(false),
  SPICEDB_CA_FILE: z.string().optional(),
  SPICEDB_TIMEOUT_MS: positiveInt(10_000),
  SPICEDB_MAX_UPDATES_PER_WRITE: positiveInt(1000),
  SPICEDB_BINARY: z.string().min(1).optional(),
  SPICEDB_DATASTORE_URI: z
    .string()
    .optional()
    .refine((v) => !v || /^postgres(ql)?:\/\//.test(v), "expected a postgres:// URL"),
  SPICEDB_DATASTORE_POOL_SIZE: positiveInt(10),
  SPICEDB_EMBEDDED_THREAD: boolean.optional(),
  SHAREGRAPH_API_KEYS: z.string().optional(),
  SHAREGRAPH_PLATFORM_ADMINS: z.string().optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  LOG_FORMAT: z.enum(["json", "pretty", ""]).optional(),
  OUTBOX_APPLY_TIMEOUT_MS: positiveInt(5_000),
  OUTBOX_POLL_MS: positiveInt(1_000),
  OUTBOX_MAX_BACKOFF_MS: positiveInt(30_000),
  OUTBOX_RETENTION_HOURS: positiveInt(168),
  MAX_BULK_CHECK_ITEMS: positiveInt(1_000),
  MAX_LOOKUP_PAGE_SIZE: positiveInt(10_000),
  MAX_LIST_PAGE_SIZE: positiveInt(1_000),
  MAX_REQUEST_BYTES: positiveInt(4 * 1024 * 1024).refine((v) => v <= 0xffffffff, "at most 4294967295"),
  REQUEST_READ_TIMEOUT_MS: positiveInt(10_000),
  IDLE_TIMEOUT_MS: positiveInt(60_000),
  MAX_CONNECTIONS: positiveInt(1_000),
  MAX_STREAMS_PER_CONNECTION: positiveInt(256),
  SHUTDOWN_GRACE_MS: positiveInt(10_000),
  SHUTDOWN_TIMEOUT_MS: positiveInt(20_000),
  READ_MAX_STALENESS_MS: z.coerce.number().int().min(0).max(60_000).default(1_000),
  DECISION_CACHE_SIZE: z.coerce.number().int().min(0).max(10_000_000).default(200_000),
  VIEW_CHECKS_FROM: z.enum(["spicedb", "postgres"]).default("spicedb"),
  WRITE_CHECKS_FROM: z.enum(["spicedb", "postgres"]).default("spicedb"),
  EMBEDDED_ADVISED_MAX_RELATIONSHIPS: positiveInt(EMBEDDED_ADVISED_MAX_RELATIONSHIPS),
  SHAREGRAPH_DEMO: boolean.default(false),
  INVITATION_TTL_DAYS: positiveInt(14),
  INVITATION_ACCEPT_URL: z
    .string()
    .optional()
    .refine((v) => !v || (/^https?:\/\//.test(v) && v.includes("{token}")), "expected an http(s) URL containing {token}"),
  FREE_EMAIL_DOMAINS: z.string().default(""),
  SMTP_URL: z
    .string()
    .optional()
    .refine((v) => !v || /^smtps?:\/\//.test(v), "expected smtp://[user:pass@]host:port or smtps://…"),
  SMTP_FROM: z.string().min(3).default("sharegraph <no-reply@sharegraph.invalid>"),
  NOTIFY_POLL_MS: positiveInt(1_000),
  NOTIFY_MAX_ATTEMPTS: positiveInt(10),
  NOTIFY_MAX_BACKOFF_MS: positiveInt(300_000),
});

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

const ID = /^[A-Za-z0-9_-]{1,128}$/;

/** Reads and validates the environment (and the --demo flag); throws ConfigError listing every problem. */
export function loadConfig(env: Record<string, string | undefined> = process.env, argv: readonly string[] = []): Config {
  const raw: Record<string, string> = Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
  const problems: string[] = [];
  let parsed = envSchema.safeParse(raw);
  if (!parsed.success) {
    // Report these, then check the rest with defaults in their place, so that every problem is listed at once.
    for (const issue of parsed.error.issues) {
      problems.push(`${issue.path.join(".") || "environment"}: ${issue.message}`);
      delete raw[String(issue.path[0])];
    }
    parsed = envSchema.safeParse(raw);
    if (!parsed.success) throw new ConfigError(problems);
  }
  const e = parsed.data;

  const [host, portText] = splitHostPort(e.SHAREGRAPH_ADDR);
  const port = Number(portText);
  if (port > 65535) problems.push(`SHAREGRAPH_ADDR: port ${port} is out of range`);

  let apiKeys: ApiKey[] | undefined;
  if (e.SHAREGRAPH_API_KEYS !== undefined) {
    apiKeys = [];
    for (const [index, entry] of e.SHAREGRAPH_API_KEYS.split(",").map((s) => s.trim()).filter(Boolean).entries()) {
      const key = parseApiKey(entry);
      if (typeof key === "string") problems.push(`SHAREGRAPH_API_KEYS: entry ${index + 1}${key}`);
      else apiKeys.push(key);
    }
    const names = apiKeys.map((k) => k.name);
    for (const name of new Set(names.filter((n, i) => names.indexOf(n) !== i))) problems.push(`SHAREGRAPH_API_KEYS: two keys are named ${JSON.stringify(name)}`);
    if (apiKeys.length === 0 && problems.length === 0) problems.push("SHAREGRAPH_API_KEYS: no keys given");
  }

  const production = Boolean(e.DATABASE_URL) || Boolean(e.SPICEDB_ENDPOINT);
  if (production && apiKeys === undefined) {
    problems.push("SHAREGRAPH_API_KEYS is required with DATABASE_URL or SPICEDB_ENDPOINT (keys are generated only in the embedded default)");
  }

  const engine = e.SHAREGRAPH_ENGINE ?? (e.SPICEDB_ENDPOINT ? "remote" : "embedded");
  let spicedb: Config["spicedb"] = {
    kind: "embedded",
    thread: e.SPICEDB_EMBEDDED_THREAD ?? true,
    advisedMaxRelationships: e.EMBEDDED_ADVISED_MAX_RELATIONSHIPS,
  };
  if (engine !== "embedded" && e.SPICEDB_EMBEDDED_THREAD !== undefined) problems.push(`SPICEDB_EMBEDDED_THREAD is for SHAREGRAPH_ENGINE=embedded, not ${engine}`);
  if (engine === "remote") {
    if (!e.SPICEDB_ENDPOINT) problems.push("SPICEDB_ENDPOINT is required with SHAREGRAPH_ENGINE=remote");
    else if (!/^[^\s/]+:\d{1,5}$/.test(e.SPICEDB_ENDPOINT)) problems.push("SPICEDB_ENDPOINT: expected host:port, e.g. spicedb:50051");
    if (!e.SPICEDB_TOKEN) problems.push("SPICEDB_TOKEN is required with SPICEDB_ENDPOINT");
    if (e.SPICEDB_INSECURE && e.SPICEDB_CA_FILE) problems.push("SPICEDB_INSECURE and SPICEDB_CA_FILE exclude each other");
    spicedb = {
      kind: "remote",
      endpoint: e.SPICEDB_ENDPOINT ?? "",
      token: e.SPICEDB_TOKEN ?? "",
      tls: e.SPICEDB_INSECURE ? "plaintext" : e.SPICEDB_CA_FILE ? { caFile: e.SPICEDB_CA_FILE } : "tls",
      timeoutMs: e.SPICEDB_TIMEOUT_MS,
      maxUpdatesPerWrite: e.SPICEDB_MAX_UPDATES_PER_WRITE,
    };
  } else {
    if (e.SPICEDB_ENDPOINT) problems.push(`SPICEDB_ENDPOINT is for SHAREGRAPH_ENGINE=remote, not ${engine}`);
    else if (e.SPICEDB_TOKEN) problems.push("SPICEDB_TOKEN is set but SPICEDB_ENDPOINT is not");
  }
  if (engine === "spicedb") {
    const binary = resolve(e.SPICEDB_BINARY ?? DEFAULT_SPICEDB_BINARY);
    if (!isExecutableFile(binary)) {
      problems.push(`SPICEDB_BINARY: no executable SpiceDB at ${binary}; build it with npm run spicedb:build (needs Go), or set SPICEDB_BINARY`);
    }
    let datastoreUri = e.SPICEDB_DATASTORE_URI;
    try {
      datastoreUri ??= e.DATABASE_URL ? defaultDatastoreUri(e.DATABASE_URL) : undefined;
      if (datastoreUri) databaseNameOf(datastoreUri);
    } catch (err) {
      problems.push(`SPICEDB_DATASTORE_URI: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!datastoreUri) {
      problems.push("SHAREGRAPH_ENGINE=spicedb needs a Postgres for SpiceDB's datastore: set DATABASE_URL (SpiceDB then uses the database <name>_spicedb on that server) or SPICEDB_DATASTORE_URI");
    }
    if (e.SPICEDB_MAX_UPDATES_PER_WRITE > 65_535) problems.push("SPICEDB_MAX_UPDATES_PER_WRITE: SpiceDB accepts at most 65535");
    spicedb = {
      kind: "spicedb",
      binary,
      datastoreUri: datastoreUri ?? "",
      poolSize: e.SPICEDB_DATASTORE_POOL_SIZE,
      timeoutMs: e.SPICEDB_TIMEOUT_MS,
      maxUpdatesPerWrite: e.SPICEDB_MAX_UPDATES_PER_WRITE,
    };
  } else {
    if (e.SPICEDB_BINARY) problems.push(`SPICEDB_BINARY is for SHAREGRAPH_ENGINE=spicedb, not ${engine}`);
    if (e.SPICEDB_DATASTORE_URI) problems.push(`SPICEDB_DATASTORE_URI is for SHAREGRAPH_ENGINE=spicedb, not ${engine}`);
  }

  // The embedded default has a platform admin called "admin" (the demo and the README use it); a
  // deployment names its own, so that no one can guess which actor creates users and organizations.
  if (production && e.SHAREGRAPH_PLATFORM_ADMINS === undefined) {
    problems.push("SHAREGRAPH_PLATFORM_ADMINS is required with DATABASE_URL or SPICEDB_ENDPOINT (the default platform admin \"admin\" is for the embedded default only)");
  }
  const platformAdmins = (e.SHAREGRAPH_PLATFORM_ADMINS ?? "admin").split(",").map((s) => s.trim()).filter(Boolean);
  if (platformAdmins.length === 0) problems.push("SHAREGRAPH_PLATFORM_ADMINS: at least one user id is required");
  for (const id of platformAdmins) if (!ID.test(id)) problems.push(`SHAREGRAPH_PLATFORM_ADMINS: ${JSON.stringify(id)} is not a valid user id`);

  if (e.SHUTDOWN_TIMEOUT_MS <= e.SHUTDOWN_GRACE_MS) problems.push("SHUTDOWN_TIMEOUT_MS must be greater than SHUTDOWN_GRACE_MS");

  if (problems.length > 0) throw new ConfigError(problems);

  return deepFreeze({
    addr: { host: host.replace(/^\[|\]$/g, ""), port },
    dataDir: e.SHAREGRAPH_DATA_DIR,
    database: e.DATABASE_URL
      ? {
          kind: "postgres",
          url: e.DATABASE_URL,
          poolSize: e.DATABASE_POOL_SIZE,
          connectTimeoutMs: e.DATABASE_CONNECT_TIMEOUT_MS,
          queryTimeoutMs: e.DATABASE_QUERY_TIMEOUT_MS,
          probeIntervalMs: e.DATABASE_PROBE_INTERVAL_MS,
        }
      : { kind: "pglite" },
    spicedb,
    apiKeys,
    platformAdmins,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT || undefined,
    outbox: {
      applyTimeoutMs: e.OUTBOX_APPLY_TIMEOUT_MS,
      pollMs: e.OUTBOX_POLL_MS,
      maxBackoffMs: e.OUTBOX_MAX_BACKOFF_MS,
      retentionHours: e.OUTBOX_RETENTION_HOURS,
    },
    transport: {
      maxRequestBytes: e.MAX_REQUEST_BYTES,
      readTimeoutMs: e.REQUEST_READ_TIMEOUT_MS,
      idleTimeoutMs: e.IDLE_TIMEOUT_MS,
      maxConnections: e.MAX_CONNECTIONS,
      maxStreamsPerConnection: e.MAX_STREAMS_PER_CONNECTION,
      shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
      shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    },
    reads: {
      maxStalenessMs: e.READ_MAX_STALENESS_MS,
      decisionCacheSize: e.DECISION_CACHE_SIZE,
      viewChecksFrom: e.VIEW_CHECKS_FROM,
      writeChecksFrom: e.WRITE_CHECKS_FROM,
    },
    limits: {
      maxBulkItems: e.MAX_BULK_CHECK_ITEMS,
      maxLookupPageSize: e.MAX_LOOKUP_PAGE_SIZE,
      maxListPageSize: e.MAX_LIST_PAGE_SIZE,
      callTimeoutMs: e.CALL_TIMEOUT_MS,
    },
    partners: {
      invitationTtlDays: e.INVITATION_TTL_DAYS,
      acceptUrl: e.INVITATION_ACCEPT_URL || undefined,
      extraPublicDomains: e.FREE_EMAIL_DOMAINS.split(",").map((d) => d.trim().toLowerCase()).filter(Boolean),
    },
    notifications: {
      smtpUrl: e.SMTP_URL || undefined,
      from: e.SMTP_FROM,
      pollMs: e.NOTIFY_POLL_MS,
      maxAttempts: e.NOTIFY_MAX_ATTEMPTS,
      maxBackoffMs: e.NOTIFY_MAX_BACKOFF_MS,
    },
    // `npm start --demo` (without `--`) does not reach argv: npm takes it as its own setting and passes it as npm_config_demo.
    demo: e.SHAREGRAPH_DEMO || argv.includes("--demo") || raw["npm_config_demo"] === "true",
  } satisfies Config);
}

const KEY_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * One API key entry: `secret:scope`, optionally followed by `;name=<name>`
 * and `;actors=<ids>` where ids is `*` (any actor, the default), `-` (none)
 * or user ids separated by `|`. The secret may contain colons (the scope is
 * after the last one before the options). Without a name, a key is called
 * `key-` and 8 hex digits of its secret's SHA-256. Returns the key, or the
 * problem (to follow "entry N").
 */
export function parseApiKey(entry: string): ApiKey | string {
  // Greedy: the secret may contain ":" and ";"; the scope is the last ":admin" or ":check" that only options follow.
  const match = /^(.+):(admin|check)((?:;[^;]*)*)$/.exec(entry);
  if (!match) return " must be secret:admin or secret:check";
  const [, secret = "", scope = "admin", rest = ""] = match;
  if (secret.length < 16) return ": secrets must have at least 16 characters";
  const options = rest.split(";").slice(1);
  let name = `key-${createHash("sha256").update(secret, "utf8").digest("hex").slice(0, 8)}`;
  let actors: ApiKey["actors"] = "any";
  for (const option of options.map((o) => o.trim()).filter(Boolean)) {
    const eq = option.indexOf("=");
    const [key, value] = eq > 0 ? [option.slice(0, eq).trim(), option.slice(eq + 1).trim()] : [option, ""];
    if (key === "name") {
      if (!KEY_NAME.test(value)) return `: name must be 1-64 letters, digits, ".", "_" or "-", got ${JSON.stringify(value)}`;
      name = value;
    } else if (key === "actors") {
      if (value === "*") actors = "any";
      else if (value === "-") actors = [];
      else {
        const ids = value.split("|").map((id) => id.trim());
        const bad = ids.find((id) => !ID.test(id));
        if (bad !== undefined) return `: actors must be *, - or user ids separated by |; ${JSON.stringify(bad)} is not a user id`;
        actors = ids;
      }
    } else {
      return `: unknown option ${JSON.stringify(key)} (expected name= or actors=)`;
    }
  }
  return { secret, scope: scope as ApiKeyScope, name, actors };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

function splitHostPort(addr: string): [string, string] {
  const cut = addr.lastIndexOf(":");
  return [addr.slice(0, cut), addr.slice(cut + 1)];
}
