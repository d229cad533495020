import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig, type Config } from "../src/config.js";
import { DEFAULT_SPICEDB_BINARY } from "../src/engine/spicedb-config.js";

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
/** What a deployment (DATABASE_URL or SPICEDB_ENDPOINT) must name itself. */
const PRODUCTION = { SHAREGRAPH_API_KEYS: KEYS, SHAREGRAPH_PLATFORM_ADMINS: "admin" };

describe("loadConfig", () => {
  it("an empty environment is the embedded default", () => {
    const config = loadConfig({});
    expect(config).toEqual({
      addr: { host: "127.0.0.1", port: 8080 },
      dataDir: "./.sharegraph",
      database: { kind: "pglite" },
      spicedb: { kind: "embedded", thread: true, advisedMaxRelationships: 100_000 },
      apiKeys: undefined,
      platformAdmins: ["admin"],
      logLevel: "info",
      logFormat: undefined,
      outbox: { applyTimeoutMs: 5_000, pollMs: 1_000, maxBackoffMs: 30_000, retentionHours: 168 },
      transport: {
        maxRequestBytes: 4 * 1024 * 1024,
        readTimeoutMs: 10_000,
        idleTimeoutMs: 60_000,
        maxConnections: 1_000,
        maxStreamsPerConnection: 256,
        shutdownGraceMs: 10_000,
        shutdownTimeoutMs: 20_000,
      },
      reads: { maxStalenessMs: 1_000, decisionCacheSize: 200_000, viewChecksFrom: "spicedb", writeChecksFrom: "spicedb" },
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
    expect(loadConfig({ READ_MAX_STALENESS_MS: "0", DECISION_CACHE_SIZE: "0" }).reads).toEqual({ maxStalenessMs: 0, decisionCacheSize: 0, viewChecksFrom: "spicedb", writeChecksFrom: "spicedb" });
    expect(() => loadConfig({ READ_MAX_STALENESS_MS: "-1", DECISION_CACHE_SIZE: "lots" })).toThrow(/READ_MAX_STALENESS_MS[\s\S]*DECISION_CACHE_SIZE/);
  });

  it("reads who answers view on content (SpiceDB unless VIEW_CHECKS_FROM=postgres), refusing anything else", () => {
    expect(loadConfig({ VIEW_CHECKS_FROM: "postgres" }).reads.viewChecksFrom).toBe("postgres");
    expect(() => loadConfig({ VIEW_CHECKS_FROM: "cte" })).toThrow(/VIEW_CHECKS_FROM/);
  });

  it("reads who answers a Share's own questions (SpiceDB unless WRITE_CHECKS_FROM=postgres), refusing anything else", () => {
    expect(loadConfig({ WRITE_CHECKS_FROM: "postgres" }).reads.writeChecksFrom).toBe("postgres");
    expect(() => loadConfig({ WRITE_CHECKS_FROM: "yes" })).toThrow(/WRITE_CHECKS_FROM/);
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
      { secret: "admin-secret-0123456789", scope: "admin", name: expect.stringMatching(/^key-[0-9a-f]{8}$/), actors: "any" },
      { secret: "check-secret-0123456789", scope: "check", name: expect.stringMatching(/^key-[0-9a-f]{8}$/), actors: "any" },
    ]);
    expect(config.platformAdmins).toEqual(["root", "ops-1"]);
    expect(config.logLevel).toBe("warn");
    expect(config.limits.maxListPageSize).toBe(50);
  });

  it("SpiceDB TLS: plaintext with SPICEDB_INSECURE, a private CA with SPICEDB_CA_FILE, never both", () => {
    const remote = { SPICEDB_ENDPOINT: "spicedb:50051", SPICEDB_TOKEN: "t", ...PRODUCTION };
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
    expect(loadConfig({ SHAREGRAPH_API_KEYS: "sixteen-chars-xx:admin" }).apiKeys).toEqual([{ secret: "sixteen-chars-xx", scope: "admin", name: "key-7b3195f4", actors: "any" }]);
    expect(problemsOf({ SHAREGRAPH_API_KEYS: "no-scope-at-all-here" })).toEqual(["SHAREGRAPH_API_KEYS: entry 1 must be secret:admin or secret:check"]);
    expect(problemsOf({ SHAREGRAPH_API_KEYS: ":admin" })).toEqual(["SHAREGRAPH_API_KEYS: entry 1 must be secret:admin or secret:check"]);
    expect(problemsOf({ SHAREGRAPH_API_KEYS: " , " })).toEqual(["SHAREGRAPH_API_KEYS: no keys given"]);
    // The scope is after the last colon; the secret may contain colons.
    expect(loadConfig({ SHAREGRAPH_API_KEYS: "with:colons:inside-it:check" }).apiKeys).toMatchObject([{ secret: "with:colons:inside-it", scope: "check" }]);
  });

  it("R41: keys are generated only in the embedded default: DATABASE_URL or SPICEDB_ENDPOINT need SHAREGRAPH_API_KEYS", () => {
    const required = "SHAREGRAPH_API_KEYS is required with DATABASE_URL or SPICEDB_ENDPOINT (keys are generated only in the embedded default)";
    expect(problemsOf({ DATABASE_URL: "postgres://db/sharegraph", SHAREGRAPH_PLATFORM_ADMINS: "root" })).toEqual([required]);
    expect(problemsOf({ SPICEDB_ENDPOINT: "spicedb:50051", SPICEDB_TOKEN: "t", SHAREGRAPH_PLATFORM_ADMINS: "root" })).toEqual([required]);
    expect(loadConfig({ DATABASE_URL: "postgresql://db/sharegraph", ...PRODUCTION }).database.kind).toBe("postgres");
  });

  it("issue 7.10: a key may carry a name and the actors it may assert; the old secret:scope form still works", () => {
    const keys = loadConfig({
      SHAREGRAPH_API_KEYS: [
        "dashboard-secret-0123456789:admin;name=dashboard;actors=alice|bob",
        "reporting-secret-0123456789:admin; name=reporting ; actors=-",
        "ops-secret-0123456789:admin;name=ops;actors=*",
        "semi;colon:secret-0123456789:check",
      ].join(","),
    }).apiKeys;
    expect(keys).toEqual([
      { secret: "dashboard-secret-0123456789", scope: "admin", name: "dashboard", actors: ["alice", "bob"] },
      { secret: "reporting-secret-0123456789", scope: "admin", name: "reporting", actors: [] },
      { secret: "ops-secret-0123456789", scope: "admin", name: "ops", actors: "any" },
      { secret: "semi;colon:secret-0123456789", scope: "check", name: expect.stringMatching(/^key-[0-9a-f]{8}$/), actors: "any" },
    ]);
    expect(problemsOf({ SHAREGRAPH_API_KEYS: "dashboard-secret-0123456789:admin;actors=alice|not ok" })).toEqual([
      'SHAREGRAPH_API_KEYS: entry 1: actors must be *, - or user ids separated by |; "not ok" is not a user id',
    ]);
    expect(problemsOf({ SHAREGRAPH_API_KEYS: "dashboard-secret-0123456789:admin;name=a b" })).toEqual([
      'SHAREGRAPH_API_KEYS: entry 1: name must be 1-64 letters, digits, ".", "_" or "-", got "a b"',
    ]);
    expect(problemsOf({ SHAREGRAPH_API_KEYS: "dashboard-secret-0123456789:admin;role=x" })).toEqual([
      'SHAREGRAPH_API_KEYS: entry 1: unknown option "role" (expected name= or actors=)',
    ]);
    expect(problemsOf({ SHAREGRAPH_API_KEYS: "one-secret-0123456789:admin;name=svc,two-secret-0123456789:check;name=svc" })).toEqual([
      'SHAREGRAPH_API_KEYS: two keys are named "svc"',
    ]);
  });

  it("issue 7.10: a deployment must name its platform admins; the predictable default \"admin\" is for the embedded default only", () => {
    const required = 'SHAREGRAPH_PLATFORM_ADMINS is required with DATABASE_URL or SPICEDB_ENDPOINT (the default platform admin "admin" is for the embedded default only)';
    expect(problemsOf({ DATABASE_URL: "postgres://db/sharegraph", SHAREGRAPH_API_KEYS: KEYS })).toEqual([required]);
    expect(problemsOf({ SPICEDB_ENDPOINT: "spicedb:50051", SPICEDB_TOKEN: "t", SHAREGRAPH_API_KEYS: KEYS })).toEqual([required]);
    expect(loadConfig({ DATABASE_URL: "postgres://db/sharegraph", SHAREGRAPH_API_KEYS: KEYS, SHAREGRAPH_PLATFORM_ADMINS: "ops-7f3a" }).platformAdmins).toEqual(["ops-7f3a"]);
    expect(loadConfig({}).platformAdmins).toEqual(["admin"]);
  });

  it("issue 7.3/7.4/7.7: request size, timeouts, connection caps and the shutdown bound are read and checked", () => {
    const config = loadConfig({
      MAX_REQUEST_BYTES: "65536",
      REQUEST_READ_TIMEOUT_MS: "2000",
      IDLE_TIMEOUT_MS: "30000",
      MAX_CONNECTIONS: "50",
      MAX_STREAMS_PER_CONNECTION: "8",
      SHUTDOWN_GRACE_MS: "3000",
      SHUTDOWN_TIMEOUT_MS: "5000",
    });
    expect(config.transport).toEqual({
      maxRequestBytes: 65536,
      readTimeoutMs: 2000,
      idleTimeoutMs: 30000,
      maxConnections: 50,
      maxStreamsPerConnection: 8,
      shutdownGraceMs: 3000,
      shutdownTimeoutMs: 5000,
    });
    expect(problemsOf({ SHUTDOWN_GRACE_MS: "5000", SHUTDOWN_TIMEOUT_MS: "5000" })).toEqual(["SHUTDOWN_TIMEOUT_MS must be greater than SHUTDOWN_GRACE_MS"]);
    expect(problemsOf({ MAX_REQUEST_BYTES: "0" })).toEqual([expect.stringMatching(/^MAX_REQUEST_BYTES: /)]);
    expect(problemsOf({ MAX_REQUEST_BYTES: "5000000000" })).toEqual(["MAX_REQUEST_BYTES: at most 4294967295"]);
  });

  it("SPICEDB_ENDPOINT requires SPICEDB_TOKEN and a host:port", () => {
    expect(problemsOf({ SPICEDB_ENDPOINT: "spicedb:50051", ...PRODUCTION })).toEqual(["SPICEDB_TOKEN is required with SPICEDB_ENDPOINT"]);
    expect(problemsOf({ SPICEDB_ENDPOINT: "grpc://spicedb", SPICEDB_TOKEN: "t", ...PRODUCTION })).toEqual([
      "SPICEDB_ENDPOINT: expected host:port, e.g. spicedb:50051",
    ]);
    expect(problemsOf({ SPICEDB_TOKEN: "t" })).toEqual(["SPICEDB_TOKEN is set but SPICEDB_ENDPOINT is not"]);
  });

  describe("issue 8: SHAREGRAPH_ENGINE=spicedb, a SpiceDB server that sharegraph supervises", () => {
    let dir: string;
    let binary: string;

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), "sharegraph-config-"));
      binary = join(dir, "spicedb");
      writeFileSync(binary, "#!/bin/sh\n", { mode: 0o755 });
    });

    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it("reads the binary, and puts SpiceDB's datastore beside DATABASE_URL as <database>_spicedb by default", () => {
      const config = loadConfig({
        SHAREGRAPH_ENGINE: "spicedb",
        SPICEDB_BINARY: binary,
        DATABASE_URL: "postgres://sharegraph:pw@db:5432/sharegraph?sslmode=disable",
        ...PRODUCTION,
        SPICEDB_MAX_UPDATES_PER_WRITE: "500",
      });
      expect(config.spicedb).toEqual({
        kind: "spicedb",
        binary,
        datastoreUri: "postgres://sharegraph:pw@db:5432/sharegraph_spicedb?sslmode=disable",
        poolSize: 10,
        timeoutMs: 10_000,
        maxUpdatesPerWrite: 500,
      });
    });

    it("SPICEDB_DATASTORE_URI and SPICEDB_DATASTORE_POOL_SIZE override; a relative SPICEDB_BINARY is made absolute", () => {
      const spicedb = loadConfig({
        SHAREGRAPH_ENGINE: "spicedb",
        SPICEDB_BINARY: relative(process.cwd(), binary),
        SPICEDB_DATASTORE_URI: "postgresql://spicedb@other:5432/authz",
        SPICEDB_DATASTORE_POOL_SIZE: "4",
      }).spicedb;
      expect(spicedb).toMatchObject({ kind: "spicedb", binary, datastoreUri: "postgresql://spicedb@other:5432/authz", poolSize: 4 });
    });

    it("defaults to .spicedb/bin/spicedb at the project root, where npm run spicedb:build puts it", () => {
      expect(DEFAULT_SPICEDB_BINARY).toBe(fileURLToPath(new URL("../.spicedb/bin/spicedb", import.meta.url)));
    });

    it("refuses a missing binary, a missing Postgres, a bad datastore name and a write limit SpiceDB cannot take, all at once", () => {
      expect(problemsOf({ SHAREGRAPH_ENGINE: "spicedb", SPICEDB_BINARY: join(dir, "missing"), SPICEDB_MAX_UPDATES_PER_WRITE: "70000" })).toEqual([
        `SPICEDB_BINARY: no executable SpiceDB at ${join(dir, "missing")}; build it with npm run spicedb:build (needs Go), or set SPICEDB_BINARY`,
        "SHAREGRAPH_ENGINE=spicedb needs a Postgres for SpiceDB's datastore: set DATABASE_URL (SpiceDB then uses the database <name>_spicedb on that server) or SPICEDB_DATASTORE_URI",
        "SPICEDB_MAX_UPDATES_PER_WRITE: SpiceDB accepts at most 65535",
      ]);
      expect(problemsOf({ SHAREGRAPH_ENGINE: "spicedb", SPICEDB_BINARY: dir, SPICEDB_DATASTORE_URI: "postgres://db/bad;name" })).toEqual([
        `SPICEDB_BINARY: no executable SpiceDB at ${dir}; build it with npm run spicedb:build (needs Go), or set SPICEDB_BINARY`,
        'SPICEDB_DATASTORE_URI: the database name "bad;name" must be 1-63 letters, digits, _ or -',
      ]);
    });

    it("keeps each engine's variables to its engine", () => {
      expect(problemsOf({ SPICEDB_BINARY: binary, SPICEDB_DATASTORE_URI: "postgres://db/x" })).toEqual([
        "SPICEDB_BINARY is for SHAREGRAPH_ENGINE=spicedb, not embedded",
        "SPICEDB_DATASTORE_URI is for SHAREGRAPH_ENGINE=spicedb, not embedded",
      ]);
      expect(problemsOf({ SHAREGRAPH_ENGINE: "spicedb", SPICEDB_BINARY: binary, SPICEDB_DATASTORE_URI: "postgres://db/x", SPICEDB_ENDPOINT: "spicedb:50051", SPICEDB_TOKEN: "t", ...PRODUCTION })).toEqual([
        "SPICEDB_ENDPOINT is for SHAREGRAPH_ENGINE=remote, not spicedb",
      ]);
      expect(problemsOf({ SHAREGRAPH_ENGINE: "remote", SPICEDB_TOKEN: "t" })).toEqual(["SPICEDB_ENDPOINT is required with SHAREGRAPH_ENGINE=remote"]);
      expect(problemsOf({ SHAREGRAPH_ENGINE: "tikv" })).toEqual([expect.stringMatching(/^SHAREGRAPH_ENGINE: /)]);
    });

    it("issue 8: the embedded engine runs in a worker thread unless SPICEDB_EMBEDDED_THREAD is false; the switch is for the embedded engine only", () => {
      expect(loadConfig({ SPICEDB_EMBEDDED_THREAD: "true" }).spicedb).toMatchObject({ kind: "embedded", thread: true });
      expect(loadConfig({ SPICEDB_EMBEDDED_THREAD: "false" }).spicedb).toMatchObject({ kind: "embedded", thread: false });
      expect(loadConfig({ SPICEDB_EMBEDDED_THREAD: "0" }).spicedb).toMatchObject({ kind: "embedded", thread: false });
      expect(problemsOf({ SPICEDB_EMBEDDED_THREAD: "maybe" })).toEqual([expect.stringMatching(/^SPICEDB_EMBEDDED_THREAD: /)]);
      expect(problemsOf({ SPICEDB_ENDPOINT: "spicedb:50051", SPICEDB_TOKEN: "t", SPICEDB_EMBEDDED_THREAD: "true", ...PRODUCTION })).toEqual([
        "SPICEDB_EMBEDDED_THREAD is for SHAREGRAPH_ENGINE=embedded, not remote",
      ]);
    });

    it("is chosen only by SHAREGRAPH_ENGINE: without it DATABASE_URL stays on the embedded engine (a built binary changes nothing), SPICEDB_ENDPOINT means remote", () => {
      expect(loadConfig({ DATABASE_URL: "postgres://db/sharegraph", ...PRODUCTION }).spicedb).toEqual({ kind: "embedded", thread: true, advisedMaxRelationships: 100_000 });
      expect(loadConfig({ SHAREGRAPH_ENGINE: "embedded", DATABASE_URL: "postgres://db/sharegraph", ...PRODUCTION }).spicedb).toEqual({ kind: "embedded", thread: true, advisedMaxRelationships: 100_000 });
      expect(loadConfig({ SPICEDB_ENDPOINT: "spicedb:50051", SPICEDB_TOKEN: "t", ...PRODUCTION }).spicedb.kind).toBe("remote");
    });
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
    // `npm start --demo` without `--`: npm keeps the flag and passes it as its own setting.
    expect(loadConfig({ npm_config_demo: "true" }, []).demo).toBe(true);
    expect(problemsOf({ SHAREGRAPH_DEMO: "sure" })).toEqual([expect.stringMatching(/^SHAREGRAPH_DEMO: /)]);
  });

  it("the config is deeply frozen", () => {
    const config = loadConfig({ ...PRODUCTION, SPICEDB_ENDPOINT: "spicedb:50051", SPICEDB_TOKEN: "t", SPICEDB_CA_FILE: "/ca.pem" });
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
