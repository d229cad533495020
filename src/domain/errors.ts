/**
 * Refusals and failures of the domain, each with a stable reason. The API
 * maps the kind to a gRPC code in one place (api/errors.ts); the message is
 * for a person and names the field or object involved.
 */
export type DomainErrorKind =
  | "invalid_argument"
  | "not_found"
  | "already_exists"
  | "failed_precondition"
  | "permission_denied"
  | "unavailable"
  | "aborted";

export class DomainError extends Error {
  constructor(
    readonly kind: DomainErrorKind,
    message: string,
    /** Machine-readable reason, e.g. "LESS_PERMISSIVE_THAN_INHERITED". */
    readonly reason: string = kind.toUpperCase(),
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "DomainError";
  }
}

export const invalid = (field: string, problem: string): DomainError =>
  new DomainError("invalid_argument", `${field}: ${problem}`, "INVALID_FIELD");

/** "<what> does not exist", and optionally what to do about it. */
export const notFound = (what: string, hint = ""): DomainError =>
  new DomainError("not_found", `${what} does not exist${hint ? `; ${hint}` : ""}`, "NOT_FOUND");

export const alreadyExists = (message: string, reason = "ALREADY_EXISTS"): DomainError =>
  new DomainError("already_exists", message, reason);

export const refused = (message: string, reason: string): DomainError => new DomainError("failed_precondition", message, reason);

export const denied = (message: string, reason = "ACTOR_LACKS_PERMISSION"): DomainError =>
  new DomainError("permission_denied", message, reason);
