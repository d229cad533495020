/**
 * A statement whose text starts with this comment is its transaction's last,
 * and on real Postgres it is sent with its COMMIT in one message
 * (src/store/pg-pool.ts); elsewhere (PGlite) it is an ordinary statement and
 * the transaction commits as usual.
 */
export const COMMIT_WITH_MARK = "/* then commit */";
