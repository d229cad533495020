import { z } from "zod";

/**
 * Configuration, read once from the environment at start-up. Every problem
 * is reported at once; the result is frozen. The README's configuration
 * table lists these variables.
 */

export type ApiKeyScope = "admin" | "check";

export interface ApiKey {
  readonly secret: string;
  readonly scope: ApiKeyScope;
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
    | { readonly kind: "embedded" }
    | {
        readonly kind: "remote";
        readonly endpoint: string;
        readonly token: string;
        readonly tls: "plaintext" | "tls" | { readonly caFile: string };
        readonly timeoutMs: number;
        readonly maxUpdatesPerWrite: number;
      };
  /** undefined: generate keys on first start and keep them in dataDir (embedded default only). */
  readonly apiKeys: readonly ApiKey[] | undefined;
  readonly platformAdmins: readonly string[];
  readonly logLevel: string;
  readonly outbox: {
    readonly applyTimeoutMs: number;
    readonly pollMs: number;
    readonly maxBackoffMs: number;
    readonly retentionHours: number;
  };
  readonly reads: {
    /** How stale a minimize_latency read may be (the snapshot it is pinned to). */
    readonly maxStalenessMs: number;
    /** Decisions remembered per snapshot; 0 turns the decision cache off. */
    readonly decisionCacheSize: number;
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
  SPICEDB_ENDPOINT: z.string().optional(),
  SPICEDB_TOKEN: z.string().optional(),
  SPICEDB_INSECURE: boolean.default(false),
  SPICEDB_CA_FILE: z.string().optional(),
  SPICEDB_TIMEOUT_MS: positiveInt(10_000),
  SPICEDB_MAX_UPDATES_PER_WRITE: positiveInt(1000),
  SHAREGRAPH_API_KEYS: z.string().optional(),
  SHAREGRAPH_PLATFORM_ADMINS: z.string().default("admin"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  OUTBOX_APPLY_TIMEOUT_MS: positiveInt(5_000),
  OUTBOX_POLL_MS: positiveInt(1_000),
  OUTBOX_MAX_BACKOFF_MS: positiveInt(30_000),
  OUTBOX_RETENTION_HOURS: positiveInt(168),
  MAX_BULK_CHECK_ITEMS: positiveInt(1_000),
  MAX_LOOKUP_PAGE_SIZE: positiveInt(10_000),
  MAX_LIST_PAGE_SIZE: positiveInt(1_000),
  READ_MAX_STALENESS_MS: z.coerce.number().int().min(0).max(60_000).default(1_000),
  DECISION_CACHE_SIZE: z.coerce.number().int().min(0).max(10_000_000).default(200_000),
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
      const cut = entry.lastIndexOf(":");
      const secret = cut > 0 ? entry.slice(0, cut) : "";
      const scope = cut > 0 ? entry.slice(cut + 1) : "";
      if (scope !== "admin" && scope !== "check") {
        problems.push(`SHAREGRAPH_API_KEYS: entry ${index + 1} must be secret:admin or secret:check`);
      } else if (secret.length < 16) {
        problems.push(`SHAREGRAPH_API_KEYS: entry ${index + 1}: secrets must have at least 16 characters`);
      } else {
        apiKeys.push({ secret, scope });
      }
    }
    if (apiKeys.length === 0 && problems.length === 0) problems.push("SHAREGRAPH_API_KEYS: no keys given");
  }

  const production = Boolean(e.DATABASE_URL) || Boolean(e.SPICEDB_ENDPOINT);
  if (production && apiKeys === undefined) {
    problems.push("SHAREGRAPH_API_KEYS is required with DATABASE_URL or SPICEDB_ENDPOINT (keys are generated only in the embedded default)");
  }

  let spicedb: Config["spicedb"] = { kind: "embedded" };
  if (e.SPICEDB_ENDPOINT) {
    if (!/^[^\s/]+:\d{1,5}$/.test(e.SPICEDB_ENDPOINT)) problems.push("SPICEDB_ENDPOINT: expected host:port, e.g. spicedb:50051");
    if (!e.SPICEDB_TOKEN) problems.push("SPICEDB_TOKEN is required with SPICEDB_ENDPOINT");
    if (e.SPICEDB_INSECURE && e.SPICEDB_CA_FILE) problems.push("SPICEDB_INSECURE and SPICEDB_CA_FILE exclude each other");
    spicedb = {
      kind: "remote",
      endpoint: e.SPICEDB_ENDPOINT,
      token: e.SPICEDB_TOKEN ?? "",
      tls: e.SPICEDB_INSECURE ? "plaintext" : e.SPICEDB_CA_FILE ? { caFile: e.SPICEDB_CA_FILE } : "tls",
      timeoutMs: e.SPICEDB_TIMEOUT_MS,
      maxUpdatesPerWrite: e.SPICEDB_MAX_UPDATES_PER_WRITE,
    };
  } else if (e.SPICEDB_TOKEN) {
    problems.push("SPICEDB_TOKEN is set but SPICEDB_ENDPOINT is not");
  }

  const platformAdmins = e.SHAREGRAPH_PLATFORM_ADMINS.split(",").map((s) => s.trim()).filter(Boolean);
  if (platformAdmins.length === 0) problems.push("SHAREGRAPH_PLATFORM_ADMINS: at least one user id is required");
  for (const id of platformAdmins) if (!ID.test(id)) problems.push(`SHAREGRAPH_PLATFORM_ADMINS: ${JSON.stringify(id)} is not a valid user id`);

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
    outbox: {
      applyTimeoutMs: e.OUTBOX_APPLY_TIMEOUT_MS,
      pollMs: e.OUTBOX_POLL_MS,
      maxBackoffMs: e.OUTBOX_MAX_BACKOFF_MS,
      retentionHours: e.OUTBOX_RETENTION_HOURS,
    },
    reads: {
      maxStalenessMs: e.READ_MAX_STALENESS_MS,
      decisionCacheSize: e.DECISION_CACHE_SIZE,
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
    demo: e.SHAREGRAPH_DEMO || argv.includes("--demo"),
  } satisfies Config);
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
