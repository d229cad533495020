/**
 * sharegraph's consistency token. It names the outbox batch a write produced
 * (or the newest one applied when a read ran) and, when known, SpiceDB's
 * ZedToken for it, plus the epoch of the SpiceDB instance that issued that
 * ZedToken. An embedded SpiceDB is rebuilt at every start, so its ZedTokens
 * mean nothing to the next process; the batch number still does, because
 * the outbox is in Postgres.
 */
export interface TokenParts {
  readonly epoch: string;
  readonly batch: number;
  readonly zed: string;
}

const PREFIX = "sg1";

export function encodeToken(parts: TokenParts): string {
  const raw = `${PREFIX}|${parts.epoch}|${parts.batch}|${parts.zed}`;
  return Buffer.from(raw, "utf8").toString("base64url");
}

/** Throws InvalidTokenError for anything this server did not issue. */
export function decodeToken(token: string): TokenParts {
  if (!/^[A-Za-z0-9_-]{1,4096}$/.test(token)) throw new InvalidTokenError();
  const raw = Buffer.from(token, "base64url").toString("utf8");
  const [prefix, epoch, batch, ...zed] = raw.split("|");
  if (prefix !== PREFIX || !epoch || !batch || !/^\d{1,15}$/.test(batch)) throw new InvalidTokenError();
  return { epoch, batch: Number(batch), zed: zed.join("|") };
}

export class InvalidTokenError extends Error {
  constructor() {
    super("not a consistency token issued by sharegraph");
    this.name = "InvalidTokenError";
  }
}
