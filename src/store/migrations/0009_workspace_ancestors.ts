import { sql, type Kysely } from "kysely";

/*
 * Every workspace's ancestors, as rows (a closure table, like
 * folder_ancestors in 0006). With the workspaces themselves they give the
 * permission index the tree's closure (src/domain/graph.ts):
 * `ancestor_or_self`, `descendant_or_self` and `relative` on each
 * workspace, so that workspace permissions held above (manage, analyze,
 * view) or below (view_in_tree, subtree_view) are found in one batched step
 * instead of one step per level. Kept by the store on workspace creation;
 * deleting a workspace deletes its rows through store/cascade.ts like any
 * other reference.
 *
 * Existing data: the rows are backfilled here, and the relationships that
 * the workspaces and these rows now imply are appended to the outbox in the
 * same transaction (after any batch already pending, under the outbox's
 * ordering lock), so that a SpiceDB datastore kept by the outbox receives
 * them before it is read again: the gateway drains the outbox before it
 * serves. The text of each relationship is graph.ts's derivation, restated
 * in SQL (migrations do not import app code); a test compares the two.
 */

/** The outbox's ordering lock (store/outbox.ts, ORDER_LOCK). */
const OUTBOX_ORDER_LOCK = 0x5347_0001;
/** Relationships per outbox batch: SpiceDB's default write limit is 1,000 updates. */
const PER_BATCH = 1000;

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
    with rels(r) as (
      select 'workspace:' || id || '#ancestor_or_self@workspace:' || id from workspaces
      union all select 'workspace:' || id || '#descendant_or_self@workspace:' || id from workspaces
      union all select 'workspace:' || id || '#relative@workspace:' || id from workspaces
      union all select 'workspace:' || workspace_id || '#ancestor_or_self@workspace:' || ancestor_id from workspace_ancestors
      union all select 'workspace:' || ancestor_id || '#descendant_or_self@workspace:' || workspace_id from workspace_ancestors
      union all select 'workspace:' || workspace_id || '#relative@workspace:' || ancestor_id from workspace_ancestors
      union all select 'workspace:' || ancestor_id || '#relative@workspace:' || workspace_id from workspace_ancestors
    ),
    numbered(r, n) as (select r, row_number() over (order by r) - 1 from rels)
    insert into outbox (ops, op_count)
    select jsonb_agg(jsonb_build_object('o', 't', 'r', r) order by n), count(*)
    from numbered
    group by n / ${sql.lit(PER_BATCH)}
    order by n / ${sql.lit(PER_BATCH)}
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table workspace_ancestors`.execute(db);
}
