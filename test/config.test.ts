import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, type Config } from "../src/config.js";

/** The problems loadConfig reports for `env`, or a failure if it accepts it. */
function problemsOf(env: Record<string, string | undefined>, argv: readonly string[] = []): readonly string[] {
  try {
    loadConfig(env, argv);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    // The message lists every problem, one a line, for the operator reading the log.
    for (const problem of e.problems) expect(e.message).toContain(`  - ${problem}`);
    return e.problems;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be refused`);
}

const KEYS = "admin-secret-0123456789:admin,check-secret-0123456789:check";

describe("loadConfig", () => {
  it("an empty environment is the embedded default", () => {
    const config = loadConfig({});
    expect(config).toEqual({
      addr: { host: "127.0.0.1", port: 8080 },
      dataDir: "./.sharegraph",
      database: { kind: "pglite" },
      spicedb: { kind: "embedded" },
      apiKeys: undefined,
      platformAdmins: ["admin"],
      logLevel: "info",
      outbox: { applyTimeoutMs: 5_000, pollMs: 1_000, maxBackoffMs: 30_000, retentionHours: 168 },
      reads: { maxStalenessMs: 1_000, decisionCacheSize: 200_000 },
      limits: { maxBulkItems: 1_000, maxLookupPageSize: 10_000, maxListPageSize: 1_000, callTimeoutMs: 60_000 },
      partners: { invitationTtlDays: 14, acceptUrl: undefined, extraPublicDomains: [] },
      notifications: { smtpUrl: undefined, from: "sharegraph <no-reply@sharegraph.invalid>", pollMs: 1_000, maxAttempts: 10, maxBackoffMs: 300_000 },
      demo: false,
    } satisfies Config);
  });

  it("reads partner and notification settings, refusing a malformed SMTP URL or accept URL", () => {
    const config = loadConfig({
      SMTP_URL: "smtp://user:pass@mail.example:2525",
      SMTP_FROM: "BI <bi@example.com>",
      INVITATION_TTL_DAYS: "3",
      INVITATION_ACCEPT_URL: "https://bi.example.com/accept?token={token}",
      FREE_EMAIL_DOMAINS: " Example.org , mail.test ",
    });
    expect(config.notifications.smtpUrl).toBe("smtp://user:pass@mail.example:2525");
    expect(config.partners).toEqual({ invitationTtlDays: 3, acceptUrl: "https://bi.example.com/accept?token={token}", extraPublicDomains: ["example.org", "mail.test"] });
    const refused = () => loadConfig({ SMTP_URL: "mail.example:25", INVITATION_ACCEPT_URL: "https://bi.example.com/accept" });
    expect(refused).toThrow(/SMTP_URL: expected smtp:\/\//);
    expect(refused).toThrow(/INVITATION_ACCEPT_URL: expected an http\(s\) URL containing \{token\}/);
  });

  it("reads the staleness bound of minimize_latency reads and the decision cache size (0 turns it off)", () => {
    expect(loadConfig({ READ_MAX_STALENESS_MS: "0", DECISION_CACHE_SIZE: "0" }).reads).toEqual({ maxStalenessMs: 0, decisionCacheSize: 0 });
    expect(() => loadConfig({ READ_MAX_STALENESS_MS: "-1", DECISION_CACHE_SIZE: "lots" })).toThrow(/READ_MAX_STALENESS_MS[\s\S]*DECISION_CACHE_SIZE/);
  });

  it("ignores unset (undefined) variables and variables it does not know", () => {
    const config = loadConfig({ SHAREGRAPH_ADDR: undefined, PATH: "/usr/bin", HOME: "/root" });
    expect(config.addr).toEqual({ host: "127.0.0.1", port: 8080 });
  });

  it("reads the production shape: Postgres, a remote SpiceDB and API keys", () => {
    const config = loadConfig({
      SHAREGRAPH_ADDR: "0.0.0.0:9090",
      DATABASE_URL: "postgres://sharegraph@db:5432/sharegraph",
      DATABASE_POOL_SIZE: "25",
      SPICEDB_ENDPOINT: "spicedb:50051",
      SPICEDB_TOKEN: "preshared",
      SPICEDB_TIMEOUT_MS: "2500",
      SHAREGRAPH_API_KEYS: ` ${KEYS} ,`,
      SHAREGRAPH_PLATFORM_ADMINS: "root, ops-1",
      LOG_LEVEL: "warn",
      MAX_LIST_PAGE_SIZE: "50",
    });
    expect(config.addr).toEqual({ host: "0.0.0.0", port: 9090 });
    expect(config.database).toEqual({
      kind: "postgres",
      url: "postgres://sharegraph@db:5432/sharegraph",
      poolSize: 25,
      connectTimeoutMs: 5_000,
      queryTimeoutMs: 30_000,
      probeIntervalMs: 2_000,
    });
    expect(config.spicedb).toEqual({ kind: "remote", endpoint: "spicedb:50051", token: "preshared", tls: "tls", timeoutMs: 2500, maxUpdatesPerWrite: 1000 });
    expect(config.apiKeys).toEqual([
      { secret: "admin-secret-0123456789", scope: "admin" },
      { secret: "check-secret-0123456789", scope: "check" },
    ]);
    expect(config.platformAdmins).toEqual(["root", "ops-1"]);
    expect(config.logLevel).toBe("warn");
    expect(config.limits.maxListPageSize).toBe(50);
  });

  it("SpiceDB TLS: plaintext with SPICEDB_INSECURE, a private CA with SPICEDB_CA_FILE, never both", () => {
    const remote = { SPICEDB_ENDPOINT: "spicedb:50051", SPICEDB_TOKEN: "t", SHAREGRAPH_API_KEYS: KEYS };
    const tls = (env: Record<string, string>) => {
      const spicedb = loadConfig({ ...remote, ...env }).spicedb;
      return spicedb.kind === "remote" ? spicedb.tls : undefined;
    };
    expect(tls({ SPICEDB_INSECURE: "true" })).toBe("plaintext");
    expect(tls({ SPICEDB_INSECURE: "0" })).toBe("tls");
    expect(tls({ SPICEDB_CA_FILE: "/etc/ca.pem" })).toEqual({ caFile: "/etc/ca.pem" });
    expect(problemsOf({ ...remote, SPICEDB_INSECURE: "yes", SPICEDB_CA_FILE: "/etc/ca.pem" })).toEqual(["SPICEDB_INSECURE and SPICEDB_CA_FILE exclude each other"]);
    expect(problemsOf({ ...remote, SPICEDB_INSECURE: "maybe" })).toEqual([expect.stringMatching(/^SPICEDB_INSECURE: /)]);
  });

  it("reads IPv6 listen addresses", () => {
    expect(loadConfig({ SHAREGRAPH_ADDR: "[::1]:8443" }).addr).toEqual({ host: "::1", port: 8443 });
    expect(loadConfig({ SHAREGRAPH_ADDR: "127.0.0.1:0" }).addr.port).toBe(0);
  });

  it("lists every problem at once in one ConfigError", () => {
    const problems = problemsOf({
      SHAREGRAPH_ADDR: "127.0.0.1:70000",
      SHAREGRAPH_API_KEYS: "admin-secret-0123456789:admin,check-secret-0123456789:root",
      SPICEDB_TOKEN: "orphan",
      SHAREGRAPH_PLATFORM_ADMINS: "admin,not ok",
    });
    expect(problems).toEqual([
      "SHAREGRAPH_ADDR: port 70000 is out of range",
      "SHAREGRAPH_API_KEYS: entry 2 must be secret:admin or secret:check",
      "SPICEDB_TOKEN is set but SPICEDB_ENDPOINT is not",
      'SHAREGRAPH_PLATFORM_ADMINS: "not ok" is not a valid user id',
    ]);
  });

  it("lists every malformed variable at once", () => {
    const problems = problemsOf({ SHAREGRAPH_ADDR: "localhost", DATABASE_URL: "mysql://db/x", LOG_LEVEL: "loud", OUTBOX_POLL_MS: "-5", DATABASE_POOL_SIZE: "many" });
    expect(problems).toEqual(
      expect.arrayContaining([
        "SHAREGRAPH_ADDR: expected host:port, e.g. 127.0.0.1:8080",
        "DATABASE_URL: expected a postgres:// URL",
        expect.stringMatching(/^LOG_LEVEL: /),
        expect.stringMatching(/^OUTBOX_POLL_MS: /),
        expect.stringMatching(/^DATABASE_POOL_SIZE: /),
      ]),
    );
    expect(problems).toHaveLength(5);
  });

  // BUG (src/config.ts): a variable that fails the schema (here SHAREGRAPH_ADDR
  // without a port) makes loadConfig throw before the cross-variable checks
  // run, so the API-key and SpiceDB problems are reported only on the next
  // start. Remove `.fails` once loadConfig collects both kinds together.
  it("lists schema problems and cross-variable problems together", () => {
    const problems = problemsOf({ SHAREGRAPH_ADDR: "localhost", SHAREGRAPH_API_KEYS: "short:admin", SPICEDB_TOKEN: "orphan" });
    expect(problems).toEqual([
      "SHAREGRAPH_ADDR: expected host:port, e.g. 127.0.0.1:8080",
      "SHAREGRAPH_API_KEYS: entry 1: secrets must have at least 16 characters",
      "SPICEDB_TOKEN is set but SPICEDB_ENDPOINT is not",
    ]);
  });

  it("R41: API key secrets need at least 16 characters and a scope of admin or check", () => {
    expect(problemsOf({ SHAREGRAPH_API_KEYS: "fifteen-chars-x:admin" })).toEqual(["SHAREGRAPH_API_KEYS: entry 1: secrets must have at least 16 characters"]);
    expect(loadConfig({ SHAREGRAPH_API_KEYS: "sixteen-chars-xx:admin" }).apiKeys).toEqual([{ secret: "sixteen-chars-xx", scope: "admin" }]);
    expect(problemsOf({ SHAREGRAPH_API_KEYS: "no-scope-at-all-here" })).toEqual(["SHAREGRAPH_API_KEYS: entry 1 must be secret:admin or secret:check"]);
    expect(problemsOf({ SHAREGRAPH_API_KEYS: ":admin" })).toEqual(["SHAREGRAPH_API_KEYS: entry 1 must be secret:admin or secret:check"]);
    expect(problemsOf({ SHAREGRAPH_API_KEYS: " , " })).toEqual(["SHAREGRAPH_API_KEYS: no keys given"]);
    // The scope is after the last colon; the secret may contain colons.
    expect(loadConfig({ SHAREGRAPH_API_KEYS: "with:colons:inside-it:check" }).apiKeys).toEqual([{ secret: "with:colons:inside-it", scope: "check" }]);
  });

  it("R41: keys are generated only in the embedded default: DATABASE_URL or SPICEDB_ENDPOINT need SHAREGRAPH_API_KEYS", () => {
    const required = "SHAREGRAPH_API_KEYS is required with DATABASE_URL or SPICEDB_ENDPOINT (keys are generated only in the embedded default)";
    expect(problemsOf({ DATABASE_URL: "postgres://db/sharegraph" })).toEqual([required]);
    expect(problemsOf({ SPICEDB_ENDPOINT: "spicedb:50051", SPICEDB_TOKEN: "t" })).toEqual([required]);
    expect(loadConfig({ DATABASE_URL: "postgresql://db/sharegraph", SHAREGRAPH_API_KEYS: KEYS }).database.kind).toBe("postgres");
  });

  it("SPICEDB_ENDPOINT requires SPICEDB_TOKEN and a host:port", () => {
    expect(problemsOf({ SPICEDB_ENDPOINT: "spicedb:50051", SHAREGRAPH_API_KEYS: KEYS })).toEqual(["SPICEDB_TOKEN is required with SPICEDB_ENDPOINT"]);
    expect(problemsOf({ SPICEDB_ENDPOINT: "grpc://spicedb", SPICEDB_TOKEN: "t", SHAREGRAPH_API_KEYS: KEYS })).toEqual([
      "SPICEDB_ENDPOINT: expected host:port, e.g. spicedb:50051",
    ]);
    expect(problemsOf({ SPICEDB_TOKEN: "t" })).toEqual(["SPICEDB_TOKEN is set but SPICEDB_ENDPOINT is not"]);
  });

  it("platform admins are valid user ids, at least one", () => {
    expect(problemsOf({ SHAREGRAPH_PLATFORM_ADMINS: " , " })).toEqual(["SHAREGRAPH_PLATFORM_ADMINS: at least one user id is required"]);
    expect(problemsOf({ SHAREGRAPH_PLATFORM_ADMINS: "ok,bad/id" })).toEqual(['SHAREGRAPH_PLATFORM_ADMINS: "bad/id" is not a valid user id']);
  });

  it("demo mode: the --demo flag or SHAREGRAPH_DEMO", () => {
    expect(loadConfig({}, ["--demo"]).demo).toBe(true);
    expect(loadConfig({}, ["--verbose"]).demo).toBe(false);
    expect(loadConfig({ SHAREGRAPH_DEMO: "true" }).demo).toBe(true);
    expect(loadConfig({ SHAREGRAPH_DEMO: "1" }).demo).toBe(true);
    expect(loadConfig({ SHAREGRAPH_DEMO: "false" }, []).demo).toBe(false);
    expect(problemsOf({ SHAREGRAPH_DEMO: "sure" })).toEqual([expect.stringMatching(/^SHAREGRAPH_DEMO: /)]);
  });

  it("the config is deeply frozen", () => {
    const config = loadConfig({ SHAREGRAPH_API_KEYS: KEYS, SPICEDB_ENDPOINT: "spicedb:50051", SPICEDB_TOKEN: "t", SPICEDB_CA_FILE: "/ca.pem" });
    const frozen = (value: unknown, path: string): string[] => {
      if (value === null || typeof value !== "object") return [];
      const inner = Object.entries(value).flatMap(([k, v]) => frozen(v, `${path}.${k}`));
      return Object.isFrozen(value) ? inner : [path, ...inner];
    };
    expect(frozen(config, "config")).toEqual([]);
    expect(config.apiKeys).toHaveLength(2);
    expect(() => {
      (config.addr as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.apiKeys as unknown as unknown[]).push({ secret: "x", scope: "admin" });
    }).toThrow(TypeError);
    expect(() => {
      (config.platformAdmins as string[])[0] = "mallory";
    }).toThrow(TypeError);
    expect(config.addr.port).toBe(8080);
    expect(config.platformAdmins).toEqual(["admin"]);
  });
});
