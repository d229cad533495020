import type pg from "pg";

/** Statements each database ran during a window, from pg_stat_statements. */
export interface StatementCounts {
  readonly byDatabase: Readonly<Record<string, number>>;
}

/**
 * Counts the statements Postgres ran per database during a window, when the
 * `pg_stat_statements` extension is loaded (shared_preload_libraries) and
 * created in the database `db` is connected to; otherwise `start` resolves
 * false and nothing is counted. Resets the extension's figures at start
 * (cluster-wide), so run it only against a bench's own Postgres.
 */
export class StatementCounter {
  constructor(
    private readonly db: pg.Client,
    private readonly databases: readonly string[],
  ) {}

  async start(): Promise<boolean> {
    try {
      await this.db.query("select pg_stat_statements_reset()");
      return true;
    } catch {
      return false;
    }
  }

  async read(): Promise<StatementCounts> {
    const { rows } = await this.db.query<{ datname: string; calls: string }>(
      "select d.datname, sum(s.calls)::text as calls from pg_stat_statements s join pg_database d on d.oid = s.dbid where d.datname = any($1) group by d.datname",
      [this.databases],
    );
    return { byDatabase: Object.fromEntries(this.databases.map((name) => [name, Number(rows.find((r) => r.datname === name)?.calls ?? 0)])) };
  }
}
