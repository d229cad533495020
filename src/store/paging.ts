/** Keyset paging over a text key: the token is the last key of the previous page. */
export interface Page {
  readonly limit: number;
  readonly after?: string | undefined;
}

export interface PageOf<T> {
  readonly items: T[];
  /** The key to continue after, or undefined on the last page. */
  readonly next?: string | undefined;
}

/** Callers fetch limit + 1 rows; the extra one only says whether a next page exists. */
export function pageOf<T>(rows: T[], limit: number, key: (row: T) => string): PageOf<T> {
  if (rows.length <= limit) return { items: rows };
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, next: last === undefined ? undefined : key(last) };
}

/** Escapes LIKE wildcards so a search for "50%" means the text "50%". */
export function likePattern(query: string): string {
  return `%${query.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}
