import { invalid } from "./errors.js";

/** Ids of objects sharegraph creates: letters, digits, '_' and '-'; at most 128. */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * Ids in permission questions may also name composite objects sharegraph
 * derives (e.g. a service's account "svc-1/acct-9"); SpiceDB's own alphabet.
 */
export const QUERY_ID_PATTERN = /^[A-Za-z0-9/_|=+-]{1,1024}$/;

export function requireId(field: string, value: string, pattern: RegExp = ID_PATTERN): string {
  if (!value) throw invalid(field, "is required");
  if (!pattern.test(value)) {
    throw invalid(
      field,
      `${JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)} is not a valid id (1-128 letters, digits, '_' or '-')`,
    );
  }
  return value;
}

/** Optional id of an object to create: empty means "generate one". */
export function optionalId(field: string, value: string): string | undefined {
  return value ? requireId(field, value) : undefined;
}

export function requireName(field: string, value: string, max = 200): string {
  const name = value.trim();
  if (!name) throw invalid(field, "is required");
  if (name.length > max) throw invalid(field, `at most ${max} characters`);
  return name;
}
