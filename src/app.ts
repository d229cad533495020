import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import { join, resolve } from "node:path";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { Registry, collectDefaultMetrics } from "prom-client";
import { adminService } from "./api/admin-service.js";
import { contentService } from "./api/content-service.js";
import { ApiKeys, authInterceptor, localApiKeys } from "./api/auth.js";
import { deadlineInterceptor } from "./api/deadline.js";
import { consoleAssets, type ConsoleAssets } from "./api/console-assets.js";
import { FrontDoor, type NodeRequest, type NodeResponse } from "./api/front-door.js";
import { directoryService } from "./api/directory-service.js";
import { partnerService } from "./api/partner-service.js";
import { serviceRelationshipService } from "./api/service-relationship-service.js";
import { HealthStatus, healthService } from "./api/health.js";
import { observeInterceptor, rpcMetrics } from "./api/observe.js";
import { permissionService } from "./api/permission-service.js";
import { SERVED, routes } from "./api/routes.js";
import { DualProtocolServer } from "./api/server.js";
import { validationInterceptor } from "./api/validate.js";
import type { ApiKey, Config } from "./config.js";
import { Authorizer } from "./domain/authorizer.js";
import { ContentCatalog } from "./domain/content.js";
import { Directory } from "./domain/directory.js";
import { EmailDomains } from "./domain/email-domains.js";
import { Explainer } from "./domain/explain.js";
import { IndexMaintenance } from "./domain/index-maintenance.js";
import { NotificationLog } from "./domain/notification-log.js";
import { ChannelPartners, MAX_CHANNEL_PARTNER_USERS_PER_CALL } from "./domain/channel-partners.js";
import { Partners } from "./domain/partners.js";
import { SERVICE_LIMITS, ServiceRelationships } from "./domain/service-relationships.js";
import { CURSOR_MAC_PURPOSE, LookupCursors } from "./domain/lookup-pages.js";
import { Permissions } from "./domain/permissions.js";
import { ViewDecisionCache } from "./domain/view-decisions.js";
import { Sharing } from "./domain/sharing.js";
import { CoalescingEngine } from "./engine/coalescing.js";
import { GroupSubjectsEngine } from "./engine/group-subjects.js";
import { DecisionCachingEngine, decisionCacheMetrics, viewDecisionMetrics } from "./engine/decision-cache.js";
import { createThreadedEngine, type EngineThread } from "./engine/threaded.js";
import type { Engine } from "./engine/engine.js";
import { createRemoteEngine } from "./engine/remote.js";
import type { DatastoreIndexRecord } from "./engine/spicedb-datastore.js";
import { createSupervisedEngine } from "./engine/supervised.js";
import type { SpiceDbProcess } from "./engine/spicedb-process.js";
import { describeSchema, loadSchemaText, RETIRED_SUBJECT_TYPES, transitionalSchema } from "./engine/schema.js";
import type { Health } from "./gen/health/v1/health_pb.js";
import { lockDataDir } from "./data-dir-lock.js";
import { createLogger, defaultLogFormat, type Logger } from "./logger.js";
import { NotificationDispatcher, smtpSender } from "./notify/dispatcher.js";
import { INVITATION_TOKEN_PURPOSE } from "./domain/mail.js";
import { newServerKeyText, ServerKey, type Sealer } from "./secrets.js";
import type { DatabaseTarget } from "./store/connect.js";
import { Store } from "./store/store.js";
import { OutboxApplier } from "./sync/applier.js";
import { ConsistencyTokens } from "./sync/consistency.js";
import { TOKEN_MAC_PURPOSE, TokenCodec } from "./sync/tokens.js";
import { ChangeWriter } from "./sync/writer.js";
import { IndexGate } from "./engine/index-gate.js";
import { PLATFORM_ID } from "./domain/graph.js";

/** Names the system of record a supervised SpiceDB's index was built from (no credentials). */
function systemOfRecord(target: DatabaseTarget): string {
  if (target.kind === "postgres") {
    const url = new URL(target.url);
    return `postgres://${url.host}${url.pathname}${target.schema ? `?schema=${target.schema}` : ""}`;
  }
  // An in-memory PGlite is new at every start: its index is never the one in a datastore.
  return target.dataDir ? `pglite:${resolve(target.dataDir)}` : `pglite:memory:${randomUUID()}`;
}

/** A fully consistent read that returns SpiceDB's head revision (its ZedToken). */
function headProbe(engine: Engine, someone: string): () => Promise<string> {
  return async () =>
    (await engine.check({ resource: { type: "platform", id: PLATFORM_ID }, permission: "manage", subject: { type: "user", id: someone } }, { kind: "fully_consistent" })).token;
}

/** Why the port could not be had, naming the setting that chose it. */
function listenError(err: unknown, addr: { host: string; port: number }): Error {
  const code = (err as NodeJS.ErrnoException).code;
  const where = `${addr.host.includes(":") ? `[${addr.host}]` : addr.host}:${addr.port}`;
  if (code === "EADDRINUSE") {
    return new Error(`SHAREGRAPH_ADDR: ${where} is already in use (another sharegraph?): stop what listens there, or set SHAREGRAPH_ADDR to another host:port`, { cause: err });
  }
  if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND") {
    return new Error(`SHAREGRAPH_ADDR: ${where} is not an address of this machine: set SHAREGRAPH_ADDR to one (e.g. 127.0.0.1:8080, or 0.0.0.0:8080 in a container)`, { cause: err });
  }
  if (code === "EACCES") return new Error(`SHAREGRAPH_ADDR: not allowed to listen on ${where} (ports below 1024 need privileges): set SHAREGRAPH_ADDR`, { cause: err });
  return err instanceof Error ? err : new Error(String(err));
}

/** Every call in flight listens on the shutdown signal: that is many listeners by design, not a leak. */
function abortController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

/** Whether `promise` settled within ms. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Health Watch streams never end by themselves: end them (after their NOT_SERVING) when shutdown begins. */
function endWatchOnDrain(health: ServiceImpl<typeof Health>, draining: AbortSignal): ServiceImpl<typeof Health> {
  return {
    ...health,
    watch: (req, ctx) => health.watch(req, { ...ctx, signal: AbortSignal.any([ctx.signal, draining]) }),
  };
}

interface PlainResponse {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(body: string): unknown;
}

export interface AppOverrides {
  readonly logger?: Logger;
  /** Tests: a database other than the configured one. */
  readonly database?: DatabaseTarget;
  /** Tests: an engine made elsewhere (e.g. remote against a fixture). */
  readonly engine?: () => Promise<Engine>;
  /** Runs once the index is ready, before the server says it serves (the demo loader). */
  readonly afterIndexReady?: (domain: Domain, log: Logger) => Promise<void>;
  /** Tests: where the console's built files are (default: dist/console). */
  readonly consoleDir?: string;
}


/** record: a supervised SpiceDB's persistent datastore, and whether it holds a complete index; process: that SpiceDB. */
interface MadeEngine {
  readonly engine: Engine;
  readonly record?: DatastoreIndexRecord;
  readonly process?: SpiceDbProcess;
}

/** The health dependency that is down while the permission index is rebuilt at start-up. */
const INDEX = "index";

function describeDown(dependency: string): string {
  if (dependency === INDEX) return "permission index being rebuilt";
  if (dependency === "spicedb") return "spicedb down";
  return `${dependency} unreachable`;
}

/** The domain objects, for the demo loader and tests that drive the domain directly. */
export interface Domain {
  readonly store: Store;
  readonly engine: Engine;
  readonly directory: Directory;
  readonly permissions: Permissions;
  readonly explainer: Explainer;
  readonly catalog: ContentCatalog;
  readonly sharing: Sharing;
  readonly partners: Partners;
  readonly channelPartners: ChannelPartners;
  readonly serviceRelationships: ServiceRelationships;
  readonly notifications: NotificationLog;
  readonly dispatcher: NotificationDispatcher | undefined;
  readonly index: IndexMaintenance;
  readonly applier: OutboxApplier;
  readonly tokens: ConsistencyTokens;
}

/**
 * sharegraph wired together: create() opens storage and the engine and
 * begins bringing the permission index up to date (ready settles when it
 * is); start() listens; stop() closes everything in the reverse order of
 * creation.
 */
export class App {
  readonly #closers: Array<{ name: string; close: () => Promise<void> }> = [];
  #server: DualProtocolServer | undefined;
  #frontDoor: FrontDoor | undefined;
  /** Aborted when shutdown begins: streams that never end by themselves (health Watch) end then. */
  readonly #draining = abortController();
  #address: { host: string; port: number } | undefined;
  readonly #shutdown = abortController();
  #stopping: Promise<void> | undefined;
  #ready: Promise<void> = Promise.resolve();
  #indexReady = false;
  /** The decision cache, when configured: its hit rates are exported as metrics. */
  #decisionCache: DecisionCachingEngine | undefined;

  get decisionCache(): DecisionCachingEngine | undefined {
    return this.#decisionCache;
  }

  /** Remembered view answers from Postgres, when VIEW_CHECKS_FROM=postgres and the decision cache is on. */
  #viewDecisions: ViewDecisionCache | undefined;

  get viewDecisions(): ViewDecisionCache | undefined {
    return this.#viewDecisions;
  }

  private constructor(
    readonly config: Config,
    readonly log: Logger,
    readonly health: HealthStatus,
    readonly metrics: Registry,
  ) {}

  // Assigned in create(); App is never handed out before.
  domain!: Domain;
  /** The embedded engine's worker thread, when it runs in one (diagnostics and tests). */
  embeddedThread: EngineThread | undefined;
  apiKeys!: { keys: readonly ApiKey[]; file?: string | undefined; created: boolean };
  /** The console's static files at /console/ (and / → /console/), served without a key. */
  #console: ConsoleAssets = consoleAssets();

  static async create(config: Config, overrides: AppOverrides = {}): Promise<App> {
    const log = overrides.logger ?? createLogger(config.logLevel, config.logFormat ?? defaultLogFormat());
    const health = new HealthStatus(SERVED.map((s) => s.typeName));
    const app = new App(config, log, health, new Registry());
    app.#console = consoleAssets(overrides.consoleDir);
    try {
      await app.#init(overrides);
    } catch (err) {
      await app.#closeAll();
      throw err;
    }
    return app;
  }

  async #init(overrides: AppOverrides): Promise<void> {
    const { config, log } = this;
    const target: DatabaseTarget =
      overrides.database ??
      (config.database.kind === "postgres"
        ? {
            kind: "postgres",
            url: config.database.url,
            poolSize: config.database.poolSize,
            connectTimeoutMs: config.database.connectTimeoutMs,
            queryTimeoutMs: config.database.queryTimeoutMs,
            probeIntervalMs: config.database.probeIntervalMs,
          }
        : { kind: "pglite", dataDir: join(config.dataDir, "pglite") });

    if (!overrides.database && config.database.kind === "pglite") {
      // Before PGlite opens its files: a second server on them is refused by name.
      const release = lockDataDir(config.dataDir);
      this.#onClose("data directory lock", async () => release());
    }

    // The embedded default (PGlite, embedded SpiceDB: nothing outside this process) starts the engine
    // — SpiceDB loaded in its thread — while PGlite opens and migrates. Anything that reaches out
    // (a Postgres, a SpiceDB server to start or to call) waits for the database first: a database
    // that does not answer never starts or calls an engine.
    const inProcess = target.kind === "pglite" && !overrides.engine && config.spicedb.kind === "embedded";
    const makeEngine = (): Promise<MadeEngine> => (overrides.engine ? overrides.engine().then((engine) => ({ engine })) : this.#createEngine());
    let making: Promise<MadeEngine> | undefined = inProcess ? makeEngine() : undefined;
    making?.catch(() => {});
    let store: Store;
    let serverKey: ServerKey;
    try {
      const opened = Date.now();
      store = await Store.open(target);
      this.#onClose("store", () => store.close());
      const migrated = await store.migrate();
      log.info({ database: store.kind, applied: migrated.applied, ms: Date.now() - opened }, "database ready");
      this.#watchDatabase(store);
      serverKey = new ServerKey(await store.read.serverKeys.master(newServerKeyText));
    } catch (err) {
      await making?.then((m) => m.engine.close()).catch(() => {});
      throw err;
    }

    making ??= makeEngine();
    const made = await making;
    if (made.process) this.#watchSpiceDb(made.process);
    const gate = new IndexGate(made.engine);
    const coalescing = new CoalescingEngine(gate);
    if (config.reads.decisionCacheSize > 0) this.#decisionCache = new DecisionCachingEngine(coalescing, { maxEntries: config.reads.decisionCacheSize });
    const engine = new GroupSubjectsEngine(this.#decisionCache ?? coalescing);
    this.#onClose("engine", () => engine.close());
    const schemaText = loadSchemaText();
    // A datastore kept across starts may still hold relationships of a subject type this schema
    // retired: it gets the transitional schema until the outbox has drained their deletion.
    const kept = engine.kind !== "embedded";
    try {
      await engine.writeSchema(kept ? transitionalSchema(schemaText) : schemaText);
    } catch (err) {
      throw this.#engineStartError(err);
    }
    const schema = describeSchema(schemaText);

    const applier = new OutboxApplier(store, engine, log.child({ component: "outbox" }), {
      applyTimeoutMs: config.outbox.applyTimeoutMs,
      pollMs: config.outbox.pollMs,
      maxBackoffMs: config.outbox.maxBackoffMs,
      retentionMs: config.outbox.retentionHours * 3_600_000,
    });
    this.#onClose("outbox applier", () => applier.stop());
    // ZedTokens of an embedded SpiceDB die with the process; a remote one's outlive us.
    const epoch = engine.kind === "embedded" ? randomUUID().slice(0, 8) : "remote";
    const tokens = new ConsistencyTokens(epoch, applier, new TokenCodec(serverKey.mac(TOKEN_MAC_PURPOSE)), {
      maxStalenessMs: config.reads.maxStalenessMs,
      sharedEngine: engine.kind !== "embedded",
    });
    const invitationTokens = serverKey.sealer(INVITATION_TOKEN_PURPOSE);
    const writer = new ChangeWriter(store, applier, tokens, log.child({ component: "writer" }));
    const writeChecksFromPostgres = config.reads.writeChecksFrom === "postgres";
    const authz = new Authorizer(engine, tokens, writeChecksFromPostgres ? store.read.directoryRights : undefined);
    const directory = new Directory({ store, writer, authz });
    const viewIndex = config.reads.viewChecksFrom === "postgres" ? store.read.contentView : undefined;
    if (viewIndex && config.reads.decisionCacheSize > 0) {
      this.#viewDecisions = new ViewDecisionCache({ maxEntries: config.reads.decisionCacheSize, maxAgeMs: config.reads.maxStalenessMs });
    }
    const permissions = new Permissions(engine, tokens, schema, config.limits, new LookupCursors(serverKey.mac(CURSOR_MAC_PURPOSE)), viewIndex, this.#viewDecisions);
    const explainer = new Explainer({ store, engine, tokens });
    const catalog = new ContentCatalog({ store, engine, writer, authz, tokens });
    const sharing = new Sharing({ store, engine, writer, tokens, catalog, index: writeChecksFromPostgres ? store.read.sharingQuestions : undefined });
    const partners = new Partners({
      store,
      writer,
      authz,
      emailDomains: new EmailDomains(config.partners.extraPublicDomains),
      invitationTtlMs: config.partners.invitationTtlDays * 86_400_000,
      acceptUrl: config.partners.acceptUrl,
      invitationTokens,
    });
    const channelPartners = new ChannelPartners({ store, writer, authz, permissions, maxUsersPerCall: MAX_CHANNEL_PARTNER_USERS_PER_CALL });
    const serviceRelationships = new ServiceRelationships({ store, writer, authz, limits: SERVICE_LIMITS });
    const notifications = new NotificationLog(store, Boolean(config.notifications.smtpUrl));
    const dispatcher = this.#createDispatcher(store, invitationTokens);
    const refreshStatistics = async () => {
      if (!made.record) return;
      const started = Date.now();
      await made.record.analyze();
      log.info({ ms: Date.now() - started }, "SpiceDB datastore: planner statistics refreshed after the rebuild (ANALYZE)");
    };
    const index = new IndexMaintenance(store, engine, applier, tokens, schema, refreshStatistics);
    this.domain = { store, engine, directory, permissions, explainer, catalog, sharing, partners, channelPartners, serviceRelationships, notifications, dispatcher, index, applier, tokens };

    // The index is prepared after create() returns: start() can listen meanwhile,
    // health NOT_SERVING and reads refused by the gate, so a long rebuild is visible.
    const startupIndex = new IndexMaintenance(store, made.engine, applier, tokens, schema, refreshStatistics);
    this.health.setDependency(INDEX, false);
    this.#ready = this.#prepareIndex(async () => {
      const onProgress = (written: number) => gate.progress(written);
      if (engine.kind === "embedded") {
        const written = await startupIndex.rebuildEmpty(onProgress);
        log.info({ relationships: written }, "embedded SpiceDB rebuilt from Postgres");
        const advised = config.spicedb.kind === "embedded" ? config.spicedb.advisedMaxRelationships : Infinity;
        if (written > advised) {
          log.warn(
            { relationships: written, advisedMax: advised },
            "this data has outgrown the embedded engine (rebuilt in memory at every start, no SpiceDB caches): run a SpiceDB server on Postgres instead (SHAREGRAPH_ENGINE=spicedb, see the README's run modes)",
          );
        }
      } else if (made.record && (await made.record.builtFor()) !== systemOfRecord(target)) {
        // A supervised SpiceDB whose datastore was never completely built from this
        // system of record (just created, an interrupted rebuild, another database).
        const source = systemOfRecord(target);
        log.info("SpiceDB datastore is not built from this system of record: rebuilding it from Postgres");
        const { written } = await startupIndex.rebuild(onProgress);
        await made.record.markBuilt(source);
        log.info({ relationships: written }, "SpiceDB datastore rebuilt from Postgres");
      } else {
        await applier.drain();
      }
      if (kept) await this.#narrowSchema(made.engine, schemaText);
      gate.open();
      await directory.syncPlatformAdmins(config.platformAdmins);
      applier.startBackground();
      const probe = headProbe(made.engine, config.platformAdmins[0]!);
      await this.#keepSnapshotFresh(tokens, probe);
      dispatcher?.start();
      await overrides.afterIndexReady?.(this.domain, log);
      await tokens.settle(probe);
    });

    this.apiKeys = config.apiKeys ? { keys: config.apiKeys, created: false } : localApiKeys(config.dataDir);
    if (this.apiKeys.created) log.warn({ file: this.apiKeys.file && resolve(this.apiKeys.file) }, "generated API keys (admin and check); read them from this file");
  }

  /**
   * From the transitional schema to the schema itself, once the outbox has
   * drained. Relationships of a retired subject type are never derived from
   * Postgres any more, so any still there (written outside sharegraph, or
   * by a gateway of an earlier version since) are deleted first.
   */
  async #narrowSchema(engine: Engine, schemaText: string): Promise<void> {
    for (const retired of RETIRED_SUBJECT_TYPES) {
      const [type, relation] = retired.subjectType.split("#");
      await engine.deleteMatching({ resourceType: retired.definition, relation: retired.relation, subject: { type: type!, relation } });
    }
    try {
      await engine.writeSchema(schemaText);
    } catch (err) {
      throw this.#engineStartError(err);
    }
    this.log.debug({ retired: RETIRED_SUBJECT_TYPES.map((r) => `${r.definition}#${r.relation}: ${r.subjectType}`) }, "SpiceDB schema narrowed after the outbox drained");
  }

  /** The first call into SpiceDB failed: name SpiceDB and where it was looked for. */
  #engineStartError(err: unknown): Error {
    const spicedb = this.config.spicedb;
    const reason = err instanceof Error ? err.message : String(err);
    if (spicedb.kind === "remote") {
      return new Error(
        `SpiceDB at ${spicedb.endpoint} (SPICEDB_ENDPOINT) did not answer: ${reason}. Check that it runs and listens there, SPICEDB_TOKEN, and SPICEDB_INSECURE (plaintext) or SPICEDB_CA_FILE (TLS)`,
        { cause: err },
      );
    }
    return new Error(`SpiceDB (${spicedb.kind}) refused the schema: ${reason}`, { cause: err });
  }

  /** Notifications are always recorded; they are sent only with SMTP_URL. */
  #createDispatcher(store: Store, invitationTokens: Sealer): NotificationDispatcher | undefined {
    const settings = this.config.notifications;
    if (!settings.smtpUrl) return undefined;
    const smtp = smtpSender(settings.smtpUrl);
    const dispatcher = new NotificationDispatcher(store, smtp.send, this.log.child({ component: "notify" }), {
      invitationTokens,
      from: settings.from,
      pollMs: settings.pollMs,
      maxAttempts: settings.maxAttempts,
      maxBackoffMs: settings.maxBackoffMs,
    });
    this.#onClose("notification dispatcher", async () => {
      await dispatcher.stop();
      smtp.close();
    });
    return dispatcher;
  }

  /** Real Postgres: health is NOT_SERVING while the database is unreachable (a probe on a connection of its own). */
  #watchDatabase(store: Store): void {
    const log = this.log.child({ component: "database" });
    const stop = store.watchReachability((reachable) => {
      this.health.setDependency("database", reachable);
      if (reachable) log.info("database reachable again");
      else log.error("database unreachable: health is NOT_SERVING and calls that need it answer UNAVAILABLE");
    });
    this.#onClose("database probe", async () => stop());
  }

  /**
   * Reads are pinned to the newest snapshot a write produced; with no write
   * since start (or for SNAPSHOT_REFRESH_MS) one is taken from SpiceDB's head,
   * so quiet deployments keep exact reads and their caches.
   */
  async #keepSnapshotFresh(tokens: ConsistencyTokens, probe: () => Promise<string>): Promise<void> {
    const refresh = () =>
      tokens.refreshSnapshot(probe).catch((err: unknown) => this.log.warn({ err }, "could not take a read snapshot from SpiceDB; reads use the newest write's"));
    const timer = setInterval(() => void refresh(), 60_000).unref();
    this.#onClose("read snapshot refresh", async () => clearInterval(timer));
    await refresh();
  }

  /** Supervised SpiceDB: health is NOT_SERVING from its crash until the supervisor has it serving again. */
  #watchSpiceDb(spicedb: SpiceDbProcess): void {
    const log = this.log.child({ component: "spicedb" });
    const stop = spicedb.onReadinessChange((ready) => {
      this.health.setDependency("spicedb", ready);
      if (ready) log.info("SpiceDB serving again: health is SERVING");
      else log.error("SpiceDB down: health is NOT_SERVING until it is restarted; calls that need it answer UNAVAILABLE");
    });
    this.#onClose("SpiceDB readiness watch", async () => stop());
  }

  /** record: a supervised SpiceDB's persistent datastore, and whether it holds a complete index; process: that SpiceDB. */
  async #createEngine(): Promise<MadeEngine> {
    const spicedb = this.config.spicedb;
    if (spicedb.kind === "embedded") {
      // Loaded only here: in its thread (the default) the library and its native code stay off the main thread.
      if (!spicedb.thread) return { engine: await (await import("./engine/embedded.js")).createEmbeddedEngine() };
      const log = this.log.child({ component: "spicedb" });
      const engine = await createThreadedEngine({
        // The memory datastore died with the thread: nothing answers until a restart rebuilds it.
        onCrash: (err) => {
          this.health.setDependency("spicedb", false);
          log.error({ err }, "the embedded SpiceDB's thread stopped: health is NOT_SERVING and permission calls answer UNAVAILABLE until sharegraph restarts");
        },
      });
      this.embeddedThread = engine.thread;
      log.info({ threadId: engine.thread.threadId }, "embedded SpiceDB runs in a worker thread");
      return { engine };
    }
    if (spicedb.kind === "spicedb") return createSupervisedEngine(spicedb, this.log.child({ component: "spicedb" }));
    return { engine: await createRemoteEngine(spicedb) };
  }

  /**
   * Settles when the permission index is ready (rebuilt or caught up) and
   * the server answers: health SERVING once started. Rejects if preparing
   * it failed; the App should then be stopped.
   */
  get ready(): Promise<void> {
    return this.#ready;
  }

  #prepareIndex(prepare: () => Promise<void>): Promise<void> {
    const started = Date.now();
    const ready = prepare().then(
      () => {
        this.#indexReady = true;
        this.health.setDependency(INDEX, true);
        this.log.info({ ms: Date.now() - started }, "permission index ready");
        this.#announce();
      },
      (err: unknown) => {
        if (!this.#stopping) this.log.error({ err }, "preparing the permission index failed; sharegraph cannot answer");
        throw err;
      },
    );
    // Awaited by main and tests; a failure is also logged here, so it is never unhandled.
    ready.catch(() => {});
    return ready;
  }

  /** "serving" is said once: when the server listens and the index is ready. */
  #announce(): void {
    if (!this.#address || !this.#indexReady || this.#stopping) return;
    const address = `${this.#address.host}:${this.#address.port}`;
    const file = this.apiKeys.file ? resolve(this.apiKeys.file) : undefined;
    this.log.info(
      {
        address,
        engine: this.domain.engine.kind,
        database: this.domain.store.kind,
        apiKeys: new ApiKeys(this.apiKeys.keys).describe(),
        // Since this process started (module loading included): what a start costs.
        sinceProcessStartMs: Math.round(performance.now()),
        // Generated keys: where they are (every start), and one command to paste.
        ...(file ? { apiKeysFile: file, try: this.#tryCommand(file) } : {}),
      },
      "serving",
    );
  }

  /** A first call to paste into a shell: reads the admin key from its file and asks something the data can answer. */
  #tryCommand(file: string): string {
    const { host, port } = this.#address!;
    const reachable = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
    const [method, body] = this.config.demo
      ? ["PermissionService/CheckPermission", `{"resource":{"type":"dashboard","id":"q3-revenue"},"permission":"edit","subject":{"type":"user","id":"dave"}}`]
      : ["DirectoryService/ListUsers", "{}"];
    return (
      `KEY=$(grep -o '^sg_admin_[A-Za-z0-9_-]*' '${file}') && ` +
      `npx buf curl --http2-prior-knowledge -H "authorization: Bearer $KEY" -d '${body}' http://${reachable}:${port}/sharegraph.v1.${method}`
    );
  }

  /** Listens on the configured address (port 0 picks a free one); returns where. */
  async start(): Promise<{ host: string; port: number }> {
    const metrics = rpcMetrics(this.metrics);
    collectDefaultMetrics({ register: this.metrics });
    if (this.#decisionCache) decisionCacheMetrics(this.metrics, this.#decisionCache.stats);
    if (this.#viewDecisions) viewDecisionMetrics(this.metrics, this.#viewDecisions.stats);
    const { directory, permissions, explainer, catalog, sharing, partners, channelPartners, serviceRelationships, notifications, index } = this.domain;
    const keys = new ApiKeys(this.apiKeys.keys);
    const apiLog = this.log.child({ component: "api" });
    const frontDoor = new FrontDoor({
      routes: routes({
        permission: permissionService(permissions, explainer),
        directory: directoryService(directory, this.config.limits.maxListPageSize),
        content: contentService(catalog, sharing),
        partner: partnerService(partners, channelPartners, this.config.limits),
        serviceRelationship: serviceRelationshipService(serviceRelationships, this.config.limits.maxListPageSize),
        admin: adminService(index, notifications, this.config.limits.maxListPageSize),
        health: endWatchOnDrain(healthService(this.health), this.#draining.signal),
      }),
      observe: observeInterceptor(apiLog, metrics),
      interceptors: [authInterceptor(keys), deadlineInterceptor({ maxCallMs: this.config.limits.callTimeoutMs }), validationInterceptor()],
      keys,
      limits: this.config.transport,
      shutdownSignal: this.#shutdown.signal,
      log: apiLog,
      metrics,
      fallback: (req, res) => void this.#nonRpc(req, res),
    });
    const server = new DualProtocolServer(frontDoor.handler, this.config.transport);
    this.#frontDoor = frontDoor;
    try {
      this.#address = await server.listen(this.config.addr.host, this.config.addr.port);
    } catch (err) {
      throw listenError(err, this.config.addr);
    }
    this.#server = server;
    this.health.setAll(true);
    if (this.#indexReady) this.#announce();
    else this.log.info({ address: `${this.#address.host}:${this.#address.port}` }, "listening; NOT_SERVING until the permission index is ready (reads answer UNAVAILABLE)");
    return this.#address;
  }

  get address(): { host: string; port: number } {
    if (!this.#address) throw new Error("not started");
    return this.#address;
  }

  /**
   * Idempotent. Health goes NOT_SERVING; new calls are refused (UNAVAILABLE;
   * GOAWAY on HTTP/2, `Connection: close` on HTTP/1.1); calls in flight get
   * graceMs to finish; then their handlers are cancelled and whatever is left
   * is ended with UNAVAILABLE and cut; then everything closes. main.ts bounds
   * the whole of it (SHUTDOWN_TIMEOUT_MS) in case something here hangs.
   */
  stop(graceMs = this.config.transport.shutdownGraceMs): Promise<void> {
    this.#stopping ??= (async () => {
      this.health.setAll(false);
      const server = this.#server;
      const frontDoor = this.#frontDoor;
      if (server && frontDoor) {
        // Let Watch streams send NOT_SERVING before they end.
        await new Promise((resolve) => setImmediate(resolve));
        frontDoor.drain();
        server.drain();
        this.#draining.abort();
        if (!(await within(frontDoor.whenIdle(), graceMs))) {
          this.log.warn({ calls: frontDoor.inFlight, graceMs }, "calls still in flight after the grace period; cancelling them");
          const shuttingDown = new ConnectError("the server shut down before this call finished; retry", Code.Unavailable);
          this.#shutdown.abort(shuttingDown);
          if (!(await within(frontDoor.whenIdle(), Math.min(1_000, graceMs)))) frontDoor.endAll(shuttingDown);
        }
        if (!(await within(server.closed(), Math.min(1_000, graceMs)))) server.destroyAll();
        await server.closed();
      }
      this.#shutdown.abort();
      await this.#closeAll();
      this.log.info("stopped");
    })();
    return this.#stopping;
  }

  #onClose(name: string, close: () => Promise<void>): void {
    this.#closers.push({ name, close });
  }

  async #closeAll(): Promise<void> {
    while (this.#closers.length > 0) {
      const { name, close } = this.#closers.pop()!;
      try {
        await close();
      } catch (err) {
        this.log.error({ err, resource: name }, "close failed");
      }
    }
  }

  /** Non-RPC paths on the same port: Prometheus metrics and a plain health probe. */
  /** Requests that are not RPCs: the console's files, then /metrics, /healthz and 404. */
  async #nonRpc(req: NodeRequest, res: NodeResponse): Promise<void> {
    try {
      if (await this.#console(req, res)) return;
      await this.#plainHttp(req.url ?? "", res);
    } catch (err) {
      this.log.error({ err, url: req.url }, "answering a non-RPC request failed");
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      res.end("internal error\n");
    }
  }

  async #plainHttp(url: string, res: PlainResponse): Promise<void> {
    if (url === "/metrics") {
      res.writeHead(200, { "content-type": this.metrics.contentType });
      res.end(await this.metrics.metrics());
      return;
    }
    if (url === "/healthz") {
      const serving = this.health.get("") === 1;
      res.writeHead(serving ? 200 : 503, { "content-type": "text/plain" });
      res.end(serving ? "SERVING\n" : `NOT_SERVING${this.health.down.length > 0 ? `: ${this.health.down.map(describeDown).join(", ")}` : ""}\n`);
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found: sharegraph serves gRPC, Connect and gRPC-Web on this port; see /metrics and /healthz\n");
  }
}
