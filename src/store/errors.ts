/**
 * Database failures the domain can act on. Driver errors never travel
 * further than this: everything else stays an internal error, logged.
 */
export class StoreConflictError extends Error {
  constructor(
    /** The violated constraint, e.g. "users_email_key". */
    readonly constraint: string,
    options?: { cause?: unknown },
  ) {
    super(`unique constraint ${constraint} violated`, options);
    this.name = "StoreConflictError";
  }
}

/** A referenced row vanished before commit (a concurrent delete); retrying re-checks it. */
export class StoreReferenceError extends Error {
  constructor(
    readonly constraint: string,
    options?: { cause?: unknown },
  ) {
    super(`foreign key ${constraint} violated`, options);
    this.name = "StoreReferenceError";
  }
}

/** Two transactions collided (serialization failure or deadlock); retrying may succeed. */
export class StoreRetryableError extends Error {
  constructor(options?: { cause?: unknown }) {
    super("concurrent update; retry", options);
    this.name = "StoreRetryableError";
  }
}

/** The database cannot be reached. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreUnavailableError";
  }
}

interface PgLikeError {
  code?: unknown;
  constraint?: unknown;
  message?: unknown;
}

/** Translates pg and PGlite errors (both carry Postgres SQLSTATE codes). */
export function translateStoreError(err: unknown): unknown {
  if (typeof err !== "object" || err === null) return err;
  const e = err as PgLikeError;
  const code = typeof e.code === "string" ? e.code : "";
  if (code === "23505") {
    const constraint = typeof e.constraint === "string" ? e.constraint : constraintFromMessage(String(e.message));
    return new StoreConflictError(constraint, { cause: err });
  }
  if (code === "23503") {
    const constraint = typeof e.constraint === "string" ? e.constraint : constraintFromMessage(String(e.message));
    return new StoreReferenceError(constraint, { cause: err });
  }
  if (code === "40001" || code === "40P01") return new StoreRetryableError({ cause: err });
  if (code === "ECONNREFUSED" || code === "ENOTFOUND" || code.startsWith("57P") || code.startsWith("08") || code === "53300") {
    return new StoreUnavailableError("the database is unreachable", { cause: err });
  }
  // statement_timeout (DATABASE_QUERY_TIMEOUT_MS) or a cancelled statement.
  if (code === "57014") return new StoreUnavailableError("the database did not answer in time", { cause: err });
  return err;
}

function constraintFromMessage(message: string): string {
  return /constraint "([^"]+)"/.exec(message)?.[1] ?? "unknown";
}
