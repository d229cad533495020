import { createHash } from "node:crypto";
import { Counter, type Registry } from "prom-client";
import type { BulkCheckResult, CheckItem, CheckResult, Consistency, Engine } from "./engine.js";

export interface DecisionCacheOptions {
  /** Decisions kept per snapshot; past it, the snapshot's cache starts over. */
  readonly maxEntries: number;
}

export interface DecisionCacheStats {
  hits: number;
  misses: number;
  /** Checks that joined an identical check already on its way to the engine. */
  joined: number;
}

/**
 * Remembers the decisions of checks asked at an exact snapshot
 * (at_exact_snapshot): at one snapshot a check has one answer, forever, so
 * a remembered decision is exactly what the engine would say again. Only the
 * newest snapshots are kept; a check at another consistency goes through.
 * Identical checks in flight at the same snapshot share one engine call.
 *
 * Zanzibar and SpiceDB cache the same way (by revision); this one sits in
 * front of the network hop and the engine's own per-call cost.
 */
export class DecisionCachingEngine implements Engine {
  readonly kind: string;
  readonly maxUpdatesPerWrite: number;
  readonly stats: DecisionCacheStats = { hits: 0, misses: 0, joined: 0 };
  /** Snapshot token → (check → decision); insertion order = age. */
  readonly #snapshots = new Map<string, Map<string, boolean>>();
  readonly #inFlight = new Map<string, Promise<CheckResult>>();

  constructor(
    private readonly inner: Engine,
    private readonly options: DecisionCacheOptions = { maxEntries: 200_000 },
    /** How many snapshots are kept at once (readers of the previous one may still be asking). */
    private readonly keep = 2,
  ) {
    this.kind = inner.kind;
    this.maxUpdatesPerWrite = inner.maxUpdatesPerWrite;
  }

  async check(item: CheckItem, consistency: Consistency): Promise<CheckResult> {
    if (consistency.kind !== "at_exact_snapshot") return this.inner.check(item, consistency);
    const snapshot = consistency.token;
    const key = checkKey(item);
    const known = this.#snapshots.get(snapshot)?.get(key);
    if (known !== undefined) {
      this.stats.hits++;
      return { allowed: known, token: snapshot };
    }
    const flightKey = `${snapshot}\n${key}`;
    const flying = this.#inFlight.get(flightKey);
    if (flying) {
      this.stats.joined++;
      return flying;
    }
    this.stats.misses++;
    const asked = this.inner.check(item, consistency).then((result) => {
      this.#remember(snapshot, key, result.allowed);
      return result;
    });
    this.#inFlight.set(flightKey, asked);
    try {
      return await asked;
    } finally {
      this.#inFlight.delete(flightKey);
    }
  }

  async checkBulk(items: readonly CheckItem[], consistency: Consistency, signal?: AbortSignal): Promise<BulkCheckResult> {
    if (consistency.kind !== "at_exact_snapshot") return this.inner.checkBulk(items, consistency, signal);
    const snapshot = consistency.token;
    const decisions = this.#snapshots.get(snapshot);
    const keys = items.map(checkKey);
    const results: Array<{ allowed: boolean; error?: string } | undefined> = keys.map((k) => {
      const known = decisions?.get(k);
      return known === undefined ? undefined : { allowed: known };
    });
    const missing = items.flatMap((item, i) => (results[i] === undefined ? [i] : []));
    this.stats.hits += items.length - missing.length;
    this.stats.misses += missing.length;
    if (missing.length > 0) {
      const answered = await this.inner.checkBulk(
        missing.map((i) => items[i]!),
        consistency,
        signal,
      );
      missing.forEach((itemIndex, j) => {
        const result = answered.results[j]!;
        results[itemIndex] = result;
        if (result.error === undefined) this.#remember(snapshot, keys[itemIndex]!, result.allowed);
      });
    }
    return { results: results as BulkCheckResult["results"], token: snapshot };
  }

  #remember(snapshot: string, key: string, allowed: boolean): void {
    let decisions = this.#snapshots.get(snapshot);
    if (!decisions) {
      decisions = new Map();
      this.#snapshots.set(snapshot, decisions);
      for (const old of this.#snapshots.keys()) {
        if (this.#snapshots.size <= this.keep) break;
        this.#snapshots.delete(old);
      }
    }
    if (decisions.size >= this.options.maxEntries) decisions.clear();
    decisions.set(key, allowed);
  }

  // Everything else goes straight through.
  writeSchema: Engine["writeSchema"] = (schema) => this.inner.writeSchema(schema);
  readSchema: Engine["readSchema"] = () => this.inner.readSchema();
  checkWithTrace: Engine["checkWithTrace"] = (item, consistency) => this.inner.checkWithTrace(item, consistency);
  lookupResources: Engine["lookupResources"] = (query, consistency, signal) => this.inner.lookupResources(query, consistency, signal);
  lookupSubjects: Engine["lookupSubjects"] = (query, consistency, signal) => this.inner.lookupSubjects(query, consistency, signal);
  readRelationships: Engine["readRelationships"] = (filter, consistency) => this.inner.readRelationships(filter, consistency);
  write: Engine["write"] = (updates) => this.inner.write(updates);
  deleteMatching: Engine["deleteMatching"] = (filter) => this.inner.deleteMatching(filter);
  close: Engine["close"] = () => this.inner.close();
}

function checkKey(item: CheckItem): string {
  const s = item.subject;
  return compactKey(`${item.resource.type}:${item.resource.id}#${item.permission}@${s.type}:${s.id}${s.relation ? `#${s.relation}` : ""}`);
}

/** Keys longer than this are kept as their SHA-256 digest. */
const LONG_KEY = 160;

/**
 * A cache key of bounded size: ids may be up to 1,024 characters, and a
 * caller must not make a cache of DECISION_CACHE_SIZE entries hold
 * gigabytes. A digest (base64: no ':', '@', '#' or newline) never equals a
 * short key, which always holds one of those.
 */
export function compactKey(key: string): string {
  return key.length <= LONG_KEY ? key : createHash("sha256").update(key).digest("base64");
}

/** A counter whose value is read from `read` when scraped. */
function statCounter(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** The cache's counters as Prometheus metrics (read when scraped). */
export function decisionCacheMetrics(registry: Registry, stats: DecisionCacheStats): void {
  statCounter(registry, "sharegraph_decision_cache_hits_total", "checks answered from the decision cache", () => stats.hits);
  statCounter(registry, "sharegraph_decision_cache_misses_total", "checks at a pinned snapshot sent to SpiceDB", () => stats.misses);
  statCounter(registry, "sharegraph_decision_cache_joined_total", "checks that joined an identical check already on its way to SpiceDB", () => stats.joined);
}

/** The counters of the view answers remembered from Postgres (src/domain/view-decisions.ts). */
export function viewDecisionMetrics(registry: Registry, stats: { readonly hits: number; readonly misses: number }): void {
  statCounter(registry, "sharegraph_view_decision_cache_hits_total", "view questions answered from remembered Postgres answers (VIEW_CHECKS_FROM=postgres)", () => stats.hits);
  statCounter(registry, "sharegraph_view_decision_cache_misses_total", "view questions sent to Postgres that could have been remembered", () => stats.misses);
}
