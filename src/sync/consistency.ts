import type { Consistency as EngineConsistency } from "../engine/engine.js";
import type { OutboxApplier, Snapshot } from "./applier.js";
import type { TokenCodec } from "./tokens.js";

/** What a caller asks for; at_least_as_fresh carries a sharegraph token. */
export type Freshness =
  | { readonly kind: "minimize_latency" }
  | { readonly kind: "fully_consistent" }
  | { readonly kind: "at_least_as_fresh"; readonly token: string };

export interface ReadSnapshotOptions {
  /**
   * How stale a minimize_latency read may be: it keeps reading the snapshot
   * it pinned for up to this long after a newer one is known.
   */
  readonly maxStalenessMs: number;
  /** True when every gateway shares the engine's ZedTokens (a SpiceDB server, not the embedded one). */
  readonly sharedEngine: boolean;
}

/**
 * Past this age a pinned snapshot is read as "at least as fresh as" rather
 * than "exactly": SpiceDB refuses exact reads of revisions older than its
 * garbage-collection window (24 h by default), and a quiet deployment keeps
 * its newest snapshot for as long as nothing changes.
 */
const EXACT_MAX_AGE_MS = 10 * 60_000;

/**
 * A deployment with no write for this long (or none since start) takes a new
 * snapshot from SpiceDB's head to pin: reads stay exact, so they keep sharing
 * SpiceDB's caches and the decision cache.
 */
export const SNAPSHOT_REFRESH_MS = EXACT_MAX_AGE_MS / 2;

/**
 * Turns sharegraph tokens into SpiceDB consistency and back. A token's batch
 * must have reached SpiceDB before a read may claim to be as fresh as it:
 * that is what makes a revoke followed by a check with the revoke's token
 * never see the old access.
 *
 * Reads are pinned: a minimize_latency read, or one at least as fresh as a
 * token, is asked at one snapshot (at_exact_snapshot) — for minimize_latency
 * at most maxStalenessMs older than the newest this gateway knows, for a
 * token the pinned one if it holds the token's batch, else the newest.
 * fully_consistent reads SpiceDB's head. Reads at one snapshot
 * share SpiceDB's caches and sharegraph's decision cache, and each answer's
 * token names exactly the batches it reflects.
 */
/** A snapshot in use for reads, and since when. */
interface Pin extends Snapshot {
  readonly pinnedAt: number;
}

export class ConsistencyTokens {
  #pin: Pin | undefined;
  /** Batch of recent pins by their ZedToken, for the tokens of reads made at them. */
  readonly #pinnedBatch = new Map<string, number>();

  constructor(
    /** Identifies the SpiceDB instance whose ZedTokens we issue. */
    readonly epoch: string,
    private readonly applier: OutboxApplier,
    /** Signs and verifies tokens with the deployment's server key. */
    private readonly codec: TokenCodec,
    private readonly options: ReadSnapshotOptions = { maxStalenessMs: 1_000, sharedEngine: false },
  ) {}

  /**
   * Unless a snapshot younger than SNAPSHOT_REFRESH_MS is known, asks the
   * engine for its head (probe: a fully consistent read returning its
   * ZedToken) and makes it the newest snapshot. The outbox position is read
   * before the probe, so the snapshot holds at least those batches.
   */
  async refreshSnapshot(probe: () => Promise<string>, now = Date.now()): Promise<boolean> {
    const latest = this.applier.latestSnapshot();
    if (latest && now - latest.at < SNAPSHOT_REFRESH_MS) return false;
    const batch = this.applier.appliedThrough;
    const zed = await probe();
    return this.applier.noteHeadSnapshot(batch, zed);
  }

  /**
   * End of start-up (after the demo load, if any): every change committed so
   * far is applied, the newest snapshot holds it, and no pin taken meanwhile
   * (a read during the load) is kept — so a minimize_latency read right
   * after start-up sees the data that was there at start-up.
   */
  async settle(probe: () => Promise<string>): Promise<void> {
    await this.applier.waitForLatest();
    if (!this.applier.latestSnapshot()) {
      const batch = this.applier.appliedThrough;
      this.applier.noteHeadSnapshot(batch, await probe());
    }
    this.#pin = undefined;
  }

  /**
   * Throws InvalidTokenError (not signed by this deployment),
   * UnissuedTokenError (signed, but beyond the newest outbox batch) or
   * OutboxPendingError. fully_consistent waits
   * for the outbox to be applied first: SpiceDB's newest data is not the
   * newest committed change while a batch is still on its way.
   */
  async resolve(freshness: Freshness): Promise<EngineConsistency> {
    if (freshness.kind === "minimize_latency") {
      const pin = this.#pinForLatency();
      return pin ? pinned(pin) : freshness;
    }
    if (freshness.kind === "fully_consistent") {
      // SpiceDB's head, once it holds every committed batch: also what a repair behind the outbox wrote.
      await this.applier.waitForLatest();
      return freshness;
    }
    const token = this.codec.decode(freshness.token);
    const zed = await this.applier.waitFor(token.batch);
    const pin = await this.#pinAtLeast(token.batch);
    if (pin) return pinned(pin);
    if (token.epoch === this.epoch && token.zed) return { kind: "at_least_as_fresh", token: token.zed };
    if (token.epoch === this.epoch && zed) return { kind: "at_least_as_fresh", token: zed };
    // A ZedToken from another SpiceDB instance (before a restart) means nothing here.
    return { kind: "fully_consistent" };
  }

  /** The pinned snapshot while it is fresh enough or still the newest; else the newest. */
  #pinForLatency(): Pin | undefined {
    const latest = this.applier.latestSnapshot();
    const pin = this.#current(latest);
    if (pin && (pin.zed === latest?.zed || Date.now() - pin.pinnedAt <= this.options.maxStalenessMs)) return pin;
    return latest ? this.#setPin(latest) : pin;
  }

  /** A snapshot holding every batch up to `batch`. */
  async #pinAtLeast(batch: number): Promise<Pin | undefined> {
    let latest = this.applier.latestSnapshot();
    const pin = this.#current(latest);
    if (pin && pin.batch >= batch) return pin;
    if (!latest && this.options.sharedEngine) latest = await this.applier.storedSnapshot();
    if (!latest || latest.batch < batch) return undefined;
    return pin?.zed === latest.zed ? pin : this.#setPin(latest);
  }

  /**
   * The pin, unless a repair (Reconcile, Rebuild) wrote a newer snapshot of
   * the same batches: what the pin says may be what was repaired.
   */
  #current(latest: Snapshot | undefined): Pin | undefined {
    const pin = this.#pin;
    if (pin && latest && latest.batch === pin.batch && latest.zed !== pin.zed) this.#pin = undefined;
    return this.#pin;
  }

  #setPin(snapshot: Snapshot): Pin {
    const pin = { ...snapshot, pinnedAt: Date.now() };
    this.#pin = pin;
    this.#pinnedBatch.set(pin.zed, pin.batch);
    if (this.#pinnedBatch.size > 64) this.#pinnedBatch.delete(this.#pinnedBatch.keys().next().value!);
    return pin;
  }

  /** The token for an answer SpiceDB gave at `zed`. */
  forRead(zed: string): string {
    const batch = this.#pinnedBatch.get(zed) ?? this.applier.appliedThrough;
    return this.codec.encode({ epoch: this.epoch, batch, zed });
  }

  /** The token for a committed write whose batch is `batch` (zed "" if it has not landed yet). */
  forWrite(batch: number, zed: string): string {
    return this.codec.encode({ epoch: this.epoch, batch, zed });
  }

  /** A token for a change that needed no relationship update. */
  current(): string {
    return this.codec.encode({ epoch: this.epoch, batch: this.applier.appliedThrough, zed: this.applier.lastZed });
  }
}

function pinned(pin: Snapshot): EngineConsistency {
  // The age counts from when the write that made the snapshot landed, not from when it was pinned.
  return Date.now() - pin.at > EXACT_MAX_AGE_MS ? { kind: "at_least_as_fresh", token: pin.zed } : { kind: "at_exact_snapshot", token: pin.zed };
}
