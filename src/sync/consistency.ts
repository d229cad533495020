import type { Consistency as EngineConsistency } from "../engine/engine.js";
import type { OutboxApplier } from "./applier.js";
import type { TokenCodec } from "./tokens.js";

/** What a caller asks for; at_least_as_fresh carries a sharegraph token. */
export type Freshness =
  | { readonly kind: "minimize_latency" }
  | { readonly kind: "fully_consistent" }
  | { readonly kind: "at_least_as_fresh"; readonly token: string };

/**
 * Turns sharegraph tokens into SpiceDB consistency and back. A token's batch
 * must have reached SpiceDB before a read may claim to be as fresh as it:
 * that is what makes a revoke followed by a check with the revoke's token
 * never see the old access.
 */
export class ConsistencyTokens {
  constructor(
    /** Identifies the SpiceDB instance whose ZedTokens we issue. */
    readonly epoch: string,
    private readonly applier: OutboxApplier,
    /** Signs and verifies tokens with the deployment's server key. */
    private readonly codec: TokenCodec,
  ) {}

  /**
   * Throws InvalidTokenError (not signed by this deployment),
   * UnissuedTokenError (signed, but beyond the newest outbox batch) or
   * OutboxPendingError. fully_consistent waits
   * for the outbox to be applied first: SpiceDB's newest data is not the
   * newest committed change while a batch is still on its way.
   */
  async resolve(freshness: Freshness): Promise<EngineConsistency> {
    if (freshness.kind === "minimize_latency") return freshness;
    if (freshness.kind === "fully_consistent") {
      await this.applier.waitForLatest();
      return freshness;
    }
    const token = this.codec.decode(freshness.token);
    const zed = await this.applier.waitFor(token.batch);
    if (token.epoch === this.epoch && token.zed) return { kind: "at_least_as_fresh", token: token.zed };
    if (token.epoch === this.epoch && zed) return { kind: "at_least_as_fresh", token: zed };
    // A ZedToken from another SpiceDB instance (before a restart) means nothing here.
    return { kind: "fully_consistent" };
  }

  /** The token for an answer SpiceDB gave at `zed`. */
  forRead(zed: string): string {
    return this.codec.encode({ epoch: this.epoch, batch: this.applier.appliedThrough, zed });
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
