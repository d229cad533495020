import { CompiledQuery, sql, type Kysely } from "kysely";
import type { Database, OutboxOp, Row } from "./database.js";
import { COMMIT_WITH_MARK } from "./statement-marks.js";

export type OutboxRow = Row<"outbox">;

/*
 * Two locks:
 *  - ORDER (an advisory lock) is taken by every writing transaction just
 *    before it inserts its outbox row and held until commit, so outbox ids
 *    follow commit order and applying in id order reproduces the commit
 *    order in SpiceDB.
 *  - APPLY (the outbox_apply_lock table, see migration 0004) is held by
 *    whoever applies batches (any gateway), so batches are applied one at a
 *    time, in order.
 */
const ORDER_LOCK = 0x5347_0001;

export interface OutboxStatus {
  readonly pending: number;
  readonly lastApplied: number;
  readonly oldestPendingError: string | null;
  readonly oldestPendingAttempts: number;
}

export class OutboxRepo {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * append, as the transaction's last statement, and its commit: on real
   * Postgres in the same message (COMMIT_WITH_MARK), so that the order lock
   * is held only while Postgres inserts and commits, not while the answer
   * goes to the gateway and a COMMIT comes back. Nothing may run in the
   * transaction after it.
   */
  async appendAndCommit(ops: readonly OutboxOp[]): Promise<number> {
    const { rows } = await this.db.executeQuery<{ id: number }>(
      CompiledQuery.raw(
        `${COMMIT_WITH_MARK}
      with ordered as (select pg_advisory_xact_lock($1::bigint))
      insert into outbox (ops, op_count) select $2::jsonb, $3::int from ordered
      returning id`,
        [ORDER_LOCK, JSON.stringify(ops), ops.length],
      ),
    );
    return Number(rows[0]!.id);
  }

  /**
   * Call inside the writing transaction, as its last statement before commit.
   * One statement: the lock is taken in a CTE the insert reads its row from,
   * so the id (the column default, computed per row produced) is drawn after
   * the lock is granted. (A CTE calling a volatile function is never inlined.)
   */
  async append(ops: readonly OutboxOp[]): Promise<number> {
    const { rows } = await sql<{ id: number }>`
      with ordered as (select pg_advisory_xact_lock(${ORDER_LOCK}))
      insert into outbox (ops, op_count) select ${JSON.stringify(ops)}::jsonb, ${ops.length} from ordered
      returning id
    `.execute(this.db);
    return Number(rows[0]!.id);
  }

  /**
   * Call first inside the applying transaction; held until it ends. In a
   * repeatable-read transaction the snapshot is taken after it is granted.
   */
  async lockForApply(): Promise<void> {
    await sql`lock table outbox_apply_lock in exclusive mode`.execute(this.db);
  }

  async pending(limit: number, upTo?: number): Promise<OutboxRow[]> {
    let q = this.db.selectFrom("outbox").selectAll().where("applied_at", "is", null).orderBy("id").limit(limit);
    if (upTo !== undefined) q = q.where("id", "<=", upTo);
    return q.execute();
  }

  async markApplied(id: number, zedToken: string): Promise<void> {
    await this.db
      .updateTable("outbox")
      .set({ applied_at: sql`now()`, zed_token: zedToken, last_error: null })
      .where("id", "=", id)
      .execute();
  }

  /** Marks batches applied together (one SpiceDB write, one ZedToken). */
  async markAppliedMany(ids: readonly number[], zedToken: string): Promise<void> {
    await this.db
      .updateTable("outbox")
      .set({ applied_at: sql`now()`, zed_token: zedToken, last_error: null })
      .where("id", "in", ids)
      .execute();
  }

  /**
   * markAppliedMany as the applying transaction's last statement, sent with
   * its COMMIT in one message on real Postgres (COMMIT_WITH_MARK): the apply
   * lock is released without a round trip more. Nothing may run after it.
   */
  async markAppliedAndCommit(ids: readonly number[], zedToken: string): Promise<void> {
    await this.db.executeQuery(
      CompiledQuery.raw(
        `${COMMIT_WITH_MARK}
      update outbox set applied_at = now(), zed_token = $1::text, last_error = null
      where id = any(string_to_array($2::text, ',')::bigint[])`,
        [zedToken, ids.join(",")],
      ),
    );
  }

  /**
   * The newest batch id and the oldest pending batches (up to limit), read
   * in one statement and so at one snapshot: every batch up to the newest
   * that is not among the pending ones was applied. (Ids follow commit
   * order, so a snapshot never holds a batch without every earlier one.)
   */
  async pendingWithNewest(limit: number): Promise<{ newest: number; rows: OutboxRow[] }> {
    const { rows } = await sql<OutboxRow & { newest: string | number }>`
      select n.newest, p.*
      from (select coalesce(max(id), 0)::bigint as newest from outbox) n
      left join lateral (select * from outbox where applied_at is null order by id limit ${limit}) p on true
      order by p.id
    `.execute(this.db);
    const newest = Number(rows[0]?.newest ?? 0);
    // Without pending batches the one row has nulls in the batch's columns.
    return { newest, rows: rows.filter((r) => r.id !== null).map(({ newest: _, ...row }) => row) };
  }

  /** Marks every pending batch up to `upTo` as applied (a rebuild wrote their effect). */
  async markAppliedThrough(upTo: number, zedToken: string): Promise<void> {
    await this.db
      .updateTable("outbox")
      .set({ applied_at: sql`now()`, zed_token: zedToken, last_error: null })
      .where("applied_at", "is", null)
      .where("id", "<=", upTo)
      .execute();
  }

  async markFailed(id: number, error: string): Promise<void> {
    await this.db
      .updateTable("outbox")
      .set((eb) => ({ attempts: eb("attempts", "+", 1), last_error: error.slice(0, 2000) }))
      .where("id", "=", id)
      .execute();
  }

  /** True when batch `id` exists (was ever committed) and every batch up to and including it has been applied. */
  async appliedThrough(id: number): Promise<boolean> {
    const { newest, applied } = await this.progress(id);
    return id <= newest && applied;
  }

  /**
   * In one statement: the newest batch id (applied batches are pruned, the
   * newest never is), and whether no batch up to `id` is pending. A batch
   * beyond the newest was never committed: callers must not take "nothing
   * pending up to it" for "applied".
   */
  async progress(id: number): Promise<{ newest: number; applied: boolean }> {
    const result = await sql<{ newest: number; applied: boolean }>`
      select coalesce((select max(id) from outbox), 0)::bigint as newest,
             not exists (select 1 from outbox where applied_at is null and id <= ${id}) as applied
    `.execute(this.db);
    const row = result.rows[0]!;
    return { newest: Number(row.newest), applied: row.applied };
  }

  async zedToken(id: number): Promise<string | null> {
    const row = await this.db.selectFrom("outbox").select("zed_token").where("id", "=", id).executeTakeFirst();
    return row?.zed_token ?? null;
  }

  async maxId(): Promise<number> {
    const row = await this.db.selectFrom("outbox").select(sql<number>`coalesce(max(id), 0)::bigint`.as("id")).executeTakeFirstOrThrow();
    return Number(row.id);
  }

  async status(): Promise<OutboxStatus> {
    const counts = await this.db
      .selectFrom("outbox")
      .select([
        sql<number>`count(*) filter (where applied_at is null)::int`.as("pending"),
        sql<number>`coalesce(max(id) filter (where applied_at is not null), 0)::bigint`.as("last_applied"),
      ])
      .executeTakeFirstOrThrow();
    const oldest = await this.db
      .selectFrom("outbox")
      .select(["last_error", "attempts"])
      .where("applied_at", "is", null)
      .orderBy("id")
      .limit(1)
      .executeTakeFirst();
    return {
      pending: counts.pending,
      lastApplied: Number(counts.last_applied),
      oldestPendingError: oldest?.last_error ?? null,
      oldestPendingAttempts: oldest?.attempts ?? 0,
    };
  }

  /** Deletes applied batches older than the cutoff, always keeping the newest one. */
  async prune(appliedBefore: Date): Promise<number> {
    const newest = await this.maxId();
    const result = await this.db
      .deleteFrom("outbox")
      .where("applied_at", "<", appliedBefore)
      .where("id", "<", newest)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
