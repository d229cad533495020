import { useState } from "react";

/**
 * Follows the API's cursors (page tokens): the token of the page shown, and
 * the ones before it to go back. Pass `token` in the request's
 * `page.pageToken`, and the response's `nextPageToken` to <Pager>.
 */
export function usePager() {
  const [tokens, setTokens] = useState<string[]>([""]);
  const token = tokens[tokens.length - 1] ?? "";
  return {
    token,
    page: tokens.length,
    next: (nextPageToken: string) => setTokens((t) => [...t, nextPageToken]),
    previous: () => setTokens((t) => (t.length > 1 ? t.slice(0, -1) : t)),
    reset: () => setTokens([""]),
  };
}

export type PagerState = ReturnType<typeof usePager>;

export function Pager({ pager, nextPageToken, busy = false }: { pager: PagerState; nextPageToken: string | undefined; busy?: boolean }) {
  return (
    <nav className="pager" aria-label="pages">
      <button type="button" onClick={pager.previous} disabled={busy || pager.page <= 1}>
        ← Previous
      </button>
      <span>page {pager.page}</span>
      <button type="button" onClick={() => nextPageToken && pager.next(nextPageToken)} disabled={busy || !nextPageToken}>
        Next →
      </button>
    </nav>
  );
}
