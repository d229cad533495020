import { createHash } from "node:crypto";
import type { LookupResourcesQuery } from "../engine/engine.js";
import { invalid } from "./errors.js";

/**
 * Paged LookupResources. SpiceDB may return a resource more than once (one
 * per path that reaches it) and leaves de-duplication to its callers; its
 * cursors cannot tell a later page what an earlier one returned. sharegraph
 * therefore pages over the de-duplicated result in resource-id order: a page
 * holds the next ids after the cursor's, so no id can come twice across the
 * pages of one lookup, and every page of a lookup is computed at the first
 * page's snapshot (at_exact_snapshot) while that snapshot is readable.
 *
 * The whole sorted result of a (query, snapshot) is kept for a while, so
 * that the second and later pages are a slice, not a new lookup.
 */

export interface LookupCursor {
  /** The last resource id returned. */
  readonly after: string;
  /** Epoch of the engine whose ZedToken `zed` is. */
  readonly epoch: string;
  /** ZedToken of the snapshot the first page was computed at. */
  readonly zed: string;
}

interface CursorBody extends LookupCursor {
  readonly q: string;
}

/**
 * Cursors are signed with the deployment's server key (any gateway honours
 * them): a cursor names a snapshot to read at, and a forged one must not
 * let a caller read an arbitrary old snapshot.
 */
export interface CursorMac {
  tag(text: string): Buffer;
  verify(text: string, tag: Buffer): boolean;
}

/** The server key's MAC purpose for cursors: a token's MAC never verifies a cursor. */
export const CURSOR_MAC_PURPOSE = "lookup-cursor/v1";

export class LookupCursors {
  constructor(private readonly mac: CursorMac) {}

  encode(query: LookupResourcesQuery, cursor: LookupCursor): string {
    const body = Buffer.from(JSON.stringify({ q: queryKey(query), ...cursor } satisfies CursorBody), "utf8").toString("base64url");
    return `${body}.${this.mac.tag(body).toString("base64url")}`;
  }

  /** INVALID_ARGUMENT for a cursor this deployment did not issue for this very query. */
  decode(query: LookupResourcesQuery, text: string): LookupCursor {
    const bad = () => invalid("cursor", "not a cursor issued by this server for this lookup; start again without a cursor");
    const [body, tag, ...rest] = text.split(".");
    if (!body || !tag || rest.length > 0 || text.length > 8192 || !/^[A-Za-z0-9_-]+$/.test(tag)) throw bad();
    if (!this.mac.verify(body, Buffer.from(tag, "base64url"))) throw bad();
    let parsed: Partial<CursorBody>;
    try {
      parsed = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as Partial<CursorBody>;
    } catch {
      throw bad();
    }
    if (parsed.q !== queryKey(query) || typeof parsed.after !== "string" || typeof parsed.epoch !== "string" || typeof parsed.zed !== "string") {
      throw bad();
    }
    return { after: parsed.after, epoch: parsed.epoch, zed: parsed.zed };
  }

}

/** What identifies a lookup, whatever its page size and cursor. */
export function queryKey(query: LookupResourcesQuery): string {
  const s = query.subject;
  return createHash("sha256")
    .update(`${query.resourceType}|${query.permission}|${s.type}:${s.id}#${s.relation ?? ""}`)
    .digest("base64url")
    .slice(0, 22);
}

/** The index of the first id greater than `after` in sorted ids. */
export function firstAfter(sorted: readonly string[], after: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareIds(sorted[mid]!, after) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Code-unit order: the same in every locale and in the cursor. */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

interface Memo {
  readonly ids: readonly string[];
  readonly at: number;
}

/**
 * Sorted results of recent lookups, by (query, snapshot). Bounded by the
 * number of ids held and by age; the oldest go first.
 */
export class LookupMemo {
  readonly #entries = new Map<string, Memo>();
  #held = 0;

  constructor(
    private readonly maxIds = 2_000_000,
    private readonly ttlMs = 5 * 60_000,
  ) {}

  get(key: string): readonly string[] | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (Date.now() - entry.at > this.ttlMs) {
      this.#drop(key, entry);
      return undefined;
    }
    return entry.ids;
  }

  set(key: string, ids: readonly string[]): void {
    if (ids.length > this.maxIds) return;
    const old = this.#entries.get(key);
    if (old) this.#drop(key, old);
    this.#entries.set(key, { ids, at: Date.now() });
    this.#held += ids.length;
    for (const [k, e] of this.#entries) {
      if (this.#held <= this.maxIds) break;
      this.#drop(k, e);
    }
  }

  #drop(key: string, entry: Memo): void {
    this.#entries.delete(key);
    this.#held -= entry.ids.length;
  }
}
