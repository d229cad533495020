import { Code, ConnectError } from "@connectrpc/connect";
import { DomainError, type DomainErrorKind } from "../domain/errors.js";
import { EngineError, type EngineErrorKind } from "../engine/engine.js";
import { IndexNotReadyError } from "../engine/index-gate.js";
import { StoreConflictError, StoreReferenceError, StoreRetryableError, StoreUnavailableError, translateStoreError } from "../store/errors.js";
import { OutboxPendingError } from "../sync/applier.js";
import { InvalidTokenError, UnissuedTokenError } from "../sync/tokens.js";
import { CallAbortedError } from "../call-signal.js";

const DOMAIN_CODES: Record<DomainErrorKind, Code> = {
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  permission_denied: Code.PermissionDenied,
  unavailable: Code.Unavailable,
  aborted: Code.Aborted,
};

/** What the engine reports after our own validation is our fault or its outage, never the caller's input. */
const ENGINE_CODES: Record<EngineErrorKind, Code> = {
  unavailable: Code.Unavailable,
  invalid_argument: Code.InvalidArgument,
  failed_precondition: Code.Internal,
  not_found: Code.Internal,
  internal: Code.Internal,
};

/**
 * The one place where failures become gRPC codes. Returns undefined for
 * errors that are bugs (they become INTERNAL with a generic message and are
 * logged by the caller with their cause).
 */
export function toConnectError(err: unknown): ConnectError | undefined {
  if (err instanceof ConnectError) return err;
  if (err instanceof DomainError) return new ConnectError(err.message, DOMAIN_CODES[err.kind]);
  if (err instanceof InvalidTokenError || err instanceof UnissuedTokenError) {
    return new ConnectError(`consistency.at_least_as_fresh: ${err.message}`, Code.InvalidArgument);
  }
  if (err instanceof CallAbortedError) {
    return new ConnectError(err.message, err.reason === "deadline" ? Code.DeadlineExceeded : Code.Canceled);
  }
  if (err instanceof OutboxPendingError) {
    return new ConnectError(`${err.message}; retry shortly (the permission index is catching up)`, Code.Unavailable);
  }
  if (err instanceof IndexNotReadyError) return new ConnectError(err.message, Code.Unavailable);
  if (err instanceof EngineError) {
    const code = ENGINE_CODES[err.kind];
    if (code === Code.Internal) return undefined;
    if (code === Code.InvalidArgument) return new ConnectError(`the permission index refused the request: ${err.message}`, code);
    return new ConnectError("the permission index (SpiceDB) is unavailable; retry shortly", code);
  }
  const store = translateStoreError(err);
  if (store instanceof StoreRetryableError) return new ConnectError("a concurrent change conflicted with this one; retry", Code.Aborted);
  if (store instanceof StoreUnavailableError) return new ConnectError("the database is unavailable; retry shortly", Code.Unavailable);
  if (store instanceof StoreConflictError) return new ConnectError("this object already exists", Code.AlreadyExists);
  if (store instanceof StoreReferenceError) {
    return new ConnectError("an object this change refers to was deleted meanwhile; check it and retry", Code.FailedPrecondition);
  }
  return undefined;
}

/** Longest error message a caller gets (and the log line keeps). */
export const MAX_ERROR_MESSAGE = 1024;

/**
 * Messages name fields and often quote what the caller sent; a huge value
 * must not become a huge grpc-message trailer (clients refuse header blocks
 * beyond their limit and report INTERNAL) or a huge log line.
 */
export function boundMessage(err: ConnectError): ConnectError {
  if (err.rawMessage.length <= MAX_ERROR_MESSAGE) return err;
  const bounded = new ConnectError(`${err.rawMessage.slice(0, MAX_ERROR_MESSAGE - 1)}…`, err.code, err.metadata, undefined, err.cause);
  bounded.details = err.details;
  return bounded;
}
