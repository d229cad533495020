import { sql, type Kysely } from "kysely";

/*
 * No table changes: the permission index gains cumulative role relations
 * (schema/sharegraph.zed, src/domain/graph.ts CUMULATIVE_*): every content
 * or folder grant is also written on `view_role` (and `share_role`,
 * `edit_role` for the roles at or above them), every workspace level on
 * `view_level` (and `analyze_level`), so that a permission reads one
 * relation instead of a union of four or five.
 *
 * Existing data: the relationships the grants and workspace levels now
 * imply are appended to the outbox here, after any batch already pending
 * and under the outbox's ordering lock, as 0009 did for the workspace
 * closure, so that a SpiceDB datastore kept by the outbox receives them at
 * the next start's drain, before anything is served. The text of each
 * relationship restates graph.ts's derivation in SQL (migrations do not
 * import app code); a test compares the two.
 */

/** The outbox's ordering lock (store/outbox.ts, ORDER_LOCK). */
const OUTBOX_ORDER_LOCK = 0x5347_0001;
/** Relationships per outbox batch: SpiceDB's default write limit is 1,000 updates. */
const PER_BATCH = 1000;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`select pg_advisory_xact_lock(${OUTBOX_ORDER_LOCK})`.execute(db);
  await sql`
    with content_levels(role, relation) as (
      values ('viewer', 'view_role'),
             ('sharer', 'view_role'), ('sharer', 'share_role'),
             ('editor', 'view_role'), ('editor', 'share_role'), ('editor', 'edit_role'),
             ('manager', 'view_role'), ('manager', 'share_role'), ('manager', 'edit_role')
    ),
    workspace_levels(level, relation) as (
      values ('view', 'view_level'),
             ('analyze', 'view_level'), ('analyze', 'analyze_level'),
             ('manage', 'view_level'), ('manage', 'analyze_level')
    ),
    granted(resource, subject, role) as (
      select case when folder_id is not null then 'folder:' || folder_id else resource_type || ':' || content_id end,
             case when user_id is not null then 'user:' || user_id
                  when group_id is not null then 'group:' || group_id || '#member'
                  else 'organization:' || organization_id || '#member' end,
             role
      from grants
    ),
    leveled(resource, subject, level) as (
      select 'workspace:' || workspace_id,
             case when user_id is not null then 'user:' || user_id else 'group:' || group_id || '#member' end,
             level
      from workspace_access
      where kind = 'level'
    ),
    rels(r) as (
      select g.resource || '#' || c.relation || '@' || g.subject from granted g join content_levels c on c.role = g.role
      union all
      select l.resource || '#' || w.relation || '@' || l.subject from leveled l join workspace_levels w on w.level = l.level
    ),
    numbered(r, n) as (select r, row_number() over (order by r) - 1 from rels)
    insert into outbox (ops, op_count)
    select jsonb_agg(jsonb_build_object('o', 't', 'r', r) order by n), count(*)
    from numbered
    group by n / ${sql.lit(PER_BATCH)}
    order by n / ${sql.lit(PER_BATCH)}
  `.execute(db);
}

/**
 * Nothing to undo in Postgres. A SpiceDB datastore keeps the cumulative
 * relationships: the older schema can be written to it again only after
 * they are deleted there (SpiceDB refuses to drop a relation that still
 * holds relationships), e.g. with `zed relationship bulk-delete`.
 */
export async function down(): Promise<void> {}
