import type { Mac } from "../secrets.js";

/**
 * sharegraph's consistency token. It names the outbox batch a write produced
 * (or the newest one applied when a read ran) and, when known, SpiceDB's
 * ZedToken for it, plus the epoch of the SpiceDB instance that issued that
 * ZedToken. An embedded SpiceDB is rebuilt at every start, so its ZedTokens
 * mean nothing to the next process; the batch number still does, because
 * the outbox is in Postgres.
 *
 * Format (v2): `sg2.<payload>.<tag>`, payload = base64url("epoch|batch|zed"),
 * tag = base64url(first 16 bytes of HMAC-SHA256(payload)) under a subkey of
 * the deployment's server key (src/secrets.ts). A caller can copy a token,
 * never make or alter one: a token this deployment did not sign is
 * INVALID_ARGUMENT, and so is a signed one naming a batch beyond the newest
 * in the outbox (a database restored from an older backup), which is never
 * recorded as applied.
 */
export interface TokenParts {
  readonly epoch: string;
  readonly batch: number;
  readonly zed: string;
}

const PREFIX = "sg2";
/** The label of the MAC subkey: a new format gets a new label. */
export const TOKEN_MAC_PURPOSE = "consistency-token/v2";
const SHAPE = /^sg2\.([A-Za-z0-9_-]{1,4096})\.([A-Za-z0-9_-]{22})$/;

/**
 * Between two writes every answer carries the same token, and callers send
 * back the few tokens they were given: the codec remembers the last token it
 * made and the last few it verified, so the HMAC runs once per token rather
 * than once per call. Only exact strings that verified are remembered.
 */
const VERIFIED_KEPT = 64;

export class TokenCodec {
  #lastEncoded: { parts: TokenParts; token: string } | undefined;
  readonly #verified = new Map<string, TokenParts>();

  constructor(private readonly mac: Mac) {}

  encode(parts: TokenParts): string {
    const last = this.#lastEncoded;
    if (last && last.parts.batch === parts.batch && last.parts.epoch === parts.epoch && last.parts.zed === parts.zed) return last.token;
    const payload = Buffer.from(`${parts.epoch}|${parts.batch}|${parts.zed}`, "utf8").toString("base64url");
    const token = `${PREFIX}.${payload}.${this.mac.tag(payload).toString("base64url")}`;
    this.#lastEncoded = { parts: { epoch: parts.epoch, batch: parts.batch, zed: parts.zed }, token };
    return token;
  }

  /** Throws InvalidTokenError for anything this deployment did not issue. */
  decode(token: string): TokenParts {
    const known = this.#verified.get(token);
    if (known) return known;
    const match = SHAPE.exec(token);
    if (!match) throw isLegacy(token) ? new InvalidTokenError(LEGACY) : new InvalidTokenError();
    const [, payload, tag] = match as unknown as [string, string, string];
    if (!this.mac.verify(payload, Buffer.from(tag, "base64url"))) throw new InvalidTokenError();
    const [epoch, batch, ...zed] = Buffer.from(payload, "base64url").toString("utf8").split("|");
    // Only a bug of ours could sign a malformed payload; still refuse rather than guess.
    if (!epoch || !batch || !/^\d{1,15}$/.test(batch)) throw new InvalidTokenError();
    const parts = Object.freeze({ epoch, batch: Number(batch), zed: zed.join("|") });
    if (this.#verified.size >= VERIFIED_KEPT) this.#verified.delete(this.#verified.keys().next().value!);
    this.#verified.set(token, parts);
    return parts;
  }
}

const LEGACY =
  "this token is of the unsigned format of earlier sharegraph versions, which is no longer accepted; " +
  "read with fully_consistent, or use the token of a call made since the upgrade";

/** Version 1 tokens were base64url("sg1|epoch|batch|zed"), unsigned. */
function isLegacy(token: string): boolean {
  return /^[A-Za-z0-9_-]{1,4096}$/.test(token) && Buffer.from(token, "base64url").toString("utf8").startsWith("sg1|");
}

export class InvalidTokenError extends Error {
  constructor(message = "not a consistency token issued by this sharegraph deployment") {
    super(message);
    this.name = "InvalidTokenError";
  }
}

/** A correctly signed token naming an outbox batch this database never had (restored from an older backup?). */
export class UnissuedTokenError extends Error {
  constructor(
    readonly batch: number,
    readonly newest: number,
  ) {
    super(
      `this token names change ${batch}, but the newest change in this deployment's database is ${newest} ` +
        "(was the database restored from an older backup?); read with fully_consistent instead",
    );
    this.name = "UnissuedTokenError";
  }
}
