import { sql, type Kysely } from "kysely";

/*
 * Every workspace's ancestors, as rows (a closure table, like
 * folder_ancestors in 0006). Each row gives the permission index two
 * relationships, `workspace:<w>#ancestor@workspace:<a>` and
 * `workspace:<a>#descendant@workspace:<w>`, so that workspace permissions
 * held above (manage, analyze, view) or below (view_in_tree, subtree_view)
 * are found in one step instead of one step per level. Kept by the store on
 * workspace creation; deleting a workspace deletes its rows through
 * store/cascade.ts like any other reference.
 *
 * Existing data: the rows are backfilled here, and the relationships they
 * imply are appended to the outbox in the same transaction (after any batch
 * already pending, under the outbox's ordering lock), so that a SpiceDB
 * datastore kept by the outbox receives them before it is read again: the
 * gateway drains the outbox before it serves.
 */

/** The outbox's ordering lock (store/outbox.ts, ORDER_LOCK); migrations do not import app code. */
const OUTBOX_ORDER_LOCK = 0x5347_0001;
/** Closure rows per outbox batch (two relationships each): SpiceDB's default write limit is 1,000 updates. */
const ROWS_PER_BATCH = 500;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table workspace_ancestors (
      workspace_id text not null references workspaces (id) deferrable initially deferred,
      ancestor_id text not null references workspaces (id) deferrable initially deferred,
      depth integer not null check (depth > 0),
      primary key (workspace_id, ancestor_id)
    );
    create index workspace_ancestors_ancestor on workspace_ancestors (ancestor_id);

    insert into workspace_ancestors (workspace_id, ancestor_id, depth)
    with recursive up(workspace_id, ancestor_id, depth) as (
      select id, parent_id, 1 from workspaces where parent_id is not null
      union all
      select up.workspace_id, w.parent_id, up.depth + 1
      from up join workspaces w on w.id = up.ancestor_id
      where w.parent_id is not null and up.depth < 1000
    )
    select workspace_id, ancestor_id, depth from up;
  `.execute(db);
  await sql`select pg_advisory_xact_lock(${OUTBOX_ORDER_LOCK})`.execute(db);
  await sql`
    insert into outbox (ops, op_count)
    select jsonb_agg(op order by n, side), count(*)
    from (
      select
        (row_number() over (order by workspace_id, ancestor_id) - 1) as n,
        side,
        jsonb_build_object(
          'o', 't',
          'r', case side
            when 0 then 'workspace:' || workspace_id || '#ancestor@workspace:' || ancestor_id
            else 'workspace:' || ancestor_id || '#descendant@workspace:' || workspace_id
          end
        ) as op
      from workspace_ancestors cross join (values (0), (1)) as sides(side)
    ) ops
    group by n / ${sql.lit(ROWS_PER_BATCH * 2)}
    order by n / ${sql.lit(ROWS_PER_BATCH * 2)}
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table workspace_ancestors`.execute(db);
}
