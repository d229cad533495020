import { sql, type Kysely } from "kysely";

/*
 * Every group's members at any depth, as rows (a closure table, like
 * folder_ancestors and workspace_ancestors): for each group, every user in
 * it directly or through nested groups, and every group nested in it. The
 * permission index then holds `group:G#member@user:U` for each such user
 * (the Leopard index of Zanzibar), and the stand-in user of each group
 * ("group|<id>", engine/group-subjects.ts) is a member of the group and of
 * every group containing it, instead of the nested relationship
 * `group:G#member@group:N#member`; a check about a user reads one relation
 * per group instead of walking the nesting (docs/PERFORMANCE.md, round 5).
 * Kept by the store on every membership change (store/groups.ts).
 *
 * Existing data: the rows are backfilled here, and the outbox gets, after
 * any batch already pending and under its ordering lock, the closure's
 * relationships and the deletion of every nested relationship, so that a
 * SpiceDB datastore kept by the outbox matches before it is read again
 * (the gateway drains the outbox before it serves, on the transitional
 * schema that still allows nested relationships: engine/schema.ts). The
 * text of each relationship is graph.ts's derivation restated in SQL; a
 * test compares the two.
 */

/** The outbox's ordering lock (store/outbox.ts, ORDER_LOCK). */
const OUTBOX_ORDER_LOCK = 0x5347_0001;
/** Relationships per outbox batch: SpiceDB's default write limit is 1,000 updates. */
const PER_BATCH = 1000;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table group_closure (
      group_id text not null references groups (id) deferrable initially deferred,
      user_id text references users (id) deferrable initially deferred,
      member_group_id text references groups (id) deferrable initially deferred,
      check (num_nonnulls(user_id, member_group_id) = 1),
      check (member_group_id is distinct from group_id),
      unique nulls not distinct (group_id, user_id, member_group_id)
    );
    create index group_closure_user on group_closure (user_id);
    create index group_closure_member_group on group_closure (member_group_id);

    insert into group_closure (group_id, user_id, member_group_id)
    with recursive down(top, grp) as (
      select id, id from groups
      union
      select down.top, gm.member_group_id
      from group_members gm join down on gm.group_id = down.grp
      where gm.member_group_id is not null
    )
    select distinct down.top, gm.user_id, null::text
    from down join group_members gm on gm.group_id = down.grp and gm.user_id is not null
    union
    select top, null::text, grp from down where grp <> top;
  `.execute(db);
  await sql`select pg_advisory_xact_lock(${OUTBOX_ORDER_LOCK})`.execute(db);
  await sql`
    with ops(o, r) as (
      select 't', 'group:' || group_id || '#member@user:' || user_id from group_closure where user_id is not null
      union all
      select 't', 'group:' || id || '#member@user:group|' || id from groups
      union all
      select 't', 'group:' || group_id || '#member@user:group|' || member_group_id from group_closure where member_group_id is not null
      union all
      select 'd', 'group:' || group_id || '#member@group:' || member_group_id || '#member' from group_members where member_group_id is not null
    ),
    numbered(o, r, n) as (select o, r, row_number() over (order by o desc, r) - 1 from ops)
    insert into outbox (ops, op_count)
    select jsonb_agg(jsonb_build_object('o', o, 'r', r) order by n), count(*)
    from numbered
    group by n / ${sql.lit(PER_BATCH)}
    order by n / ${sql.lit(PER_BATCH)}
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table group_closure`.execute(db);
}
