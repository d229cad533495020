import type { Relationship, RelationshipUpdate } from "../engine/engine.js";
import type { OutboxOp } from "../store/database.js";
import { formatRelationship, parseRelationship } from "./relationship-text.js";

/**
 * The relationship updates one domain change implies, collected while the
 * change runs in its transaction and written to the outbox with it. The last
 * word on a relationship wins; updates keep the order they were first made
 * in, so a change can put the update that ends access first.
 */
export class RelationshipChanges {
  readonly #ops = new Map<string, "t" | "d">();

  touch(relationships: Iterable<Relationship>): this {
    for (const r of relationships) this.#ops.set(formatRelationship(r), "t");
    return this;
  }

  delete(relationships: Iterable<Relationship>): this {
    for (const r of relationships) this.#ops.set(formatRelationship(r), "d");
    return this;
  }

  /** A row changed: delete what only the old version implied, touch what the new one implies. */
  replace(before: Iterable<Relationship>, after: Iterable<Relationship>): this {
    const next = new Set([...after].map(formatRelationship));
    for (const r of before) {
      const key = formatRelationship(r);
      if (!next.has(key)) this.#ops.set(key, "d");
    }
    for (const key of next) this.#ops.set(key, "t");
    return this;
  }

  get size(): number {
    return this.#ops.size;
  }

  toOps(): OutboxOp[] {
    return [...this.#ops].map(([r, o]) => ({ o, r }));
  }
}

export function toUpdates(ops: readonly OutboxOp[]): RelationshipUpdate[] {
  return ops.map((op) => ({ op: op.o === "t" ? "touch" : "delete", relationship: parseRelationship(op.r) }));
}
