import { sql, type Kysely } from "kysely";

/*
 * A table that holds no rows, locked by whoever applies outbox batches.
 * Unlike an advisory lock taken with a SELECT, `LOCK TABLE` is not a query:
 * a repeatable-read transaction (reconcile, rebuild) takes its snapshot only
 * after the lock is granted, so it cannot miss a batch applied while it
 * waited. It is also per schema, where advisory locks are per database.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table outbox_apply_lock (id integer primary key)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table outbox_apply_lock`.execute(db);
}
