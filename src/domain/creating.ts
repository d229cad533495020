import { StoreConflictError } from "../store/errors.js";
import type { Repositories } from "../store/store.js";
import type { RelationshipChanges } from "../sync/changes.js";
import type { ChangeWriter, Committed } from "../sync/writer.js";
import { alreadyExists } from "./errors.js";

/**
 * A change that creates `what`. The domain checks for an existing object
 * first, for a precise message; two concurrent creators can still both pass
 * that check, and then the unique key decides: the loser gets ALREADY_EXISTS.
 */
export async function creating<T>(
  writer: ChangeWriter,
  what: string,
  fn: (tx: Repositories, rels: RelationshipChanges) => Promise<T>,
): Promise<Committed<T>> {
  try {
    return await writer.change(fn);
  } catch (err) {
    if (err instanceof StoreConflictError) throw alreadyExists(`${what} already exists`);
    throw err;
  }
}
