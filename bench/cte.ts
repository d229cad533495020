/**
 * The simplest alternative a user of sharegraph has: answer `view` on a
 * content item straight from sharegraph's own Postgres tables with a
 * recursive CTE, no permission index at all. Same rules as
 * schema/sharegraph.zed for `view` on report / board / dashboard / workbook:
 *
 *   view        = (granted_view & workspace->view_in_tree) + workspace->view_all_content + partner_share->viewer
 *   granted_view: any role on the item, or on its folder or any folder above (R1)
 *   subjects    : the user, a group the user is in at any nesting depth, an organization the user belongs to
 *   view_in_tree: a workspace permission (view / analyze / manage / guest, or admin of its organization)
 *                 on the item's workspace, on one above it, or on one below it
 *   view_all_content: MANAGE on the workspace or one above (manager, organization admin), or guest of it (R7)
 *
 * bench/run.ts checks on the sample that these answers equal sharegraph's
 * before it times anything. Connections run with jit=off: Postgres's JIT
 * (on by default) spends seconds compiling the lookup and gains nothing.
 */
import pg from "pg";

const CHECK = `
with recursive
ug(id) as (
  select group_id from group_members where user_id = $1
  union
  select gm.group_id from group_members gm join ug on gm.member_group_id = ug.id
),
item as (select id, workspace_id, folder_id from content where id = $2 and kind = $3),
chain(id) as (
  select folder_id from item where folder_id is not null
  union all
  select f.parent_id from folders f join chain on f.id = chain.id where f.parent_id is not null
),
ws_up(id) as (
  select workspace_id from item
  union
  select w.parent_id from workspaces w join ws_up on w.id = ws_up.id where w.parent_id is not null
),
ws_down(id) as (
  select workspace_id from item
  union
  select w.id from workspaces w join ws_down on w.parent_id = ws_down.id
),
ws_tree(id) as (select id from ws_up union select id from ws_down),
orgs(id) as (select organization_id from organization_members where user_id = $1),
admin_orgs(id) as (select organization_id from organization_members where user_id = $1 and admin)
select exists (select 1 from item) and (
  (
    (
      exists (
        select 1 from grants g
        where g.content_id = $2
          and (g.user_id = $1 or g.group_id in (select id from ug) or g.organization_id in (select id from orgs))
      )
      or exists (
        select 1 from chain join grants g on g.folder_id = chain.id
        where g.user_id = $1 or g.group_id in (select id from ug) or g.organization_id in (select id from orgs)
      )
    )
    and (
      exists (
        select 1 from workspace_access a
        where a.workspace_id in (select id from ws_tree) and a.kind in ('level', 'guest')
          and (a.user_id = $1 or a.group_id in (select id from ug))
      )
      or exists (select 1 from workspaces w where w.id in (select id from ws_tree) and w.organization_id in (select id from admin_orgs))
    )
  )
  or exists (
    select 1 from workspace_access a
    where ((a.kind = 'level' and a.level = 'manage' and a.workspace_id in (select id from ws_up))
        or (a.kind = 'guest' and a.workspace_id = (select workspace_id from item)))
      and (a.user_id = $1 or a.group_id in (select id from ug))
  )
  or exists (select 1 from workspaces w where w.id in (select id from ws_up) and w.organization_id in (select id from admin_orgs))
  or exists (
    select 1 from partner_shares ps
    join partnerships p on p.id = ps.partnership_id
    join organization_members m on m.organization_id = p.partner_organization_id and m.user_id = $1
    where ps.content_id = $2
  )
) as allowed
`;

/** Every item of one kind the user may view: the same rules, set at a time. */
const LOOKUP = `
with recursive
ug(id) as (
  select group_id from group_members where user_id = $1
  union
  select gm.group_id from group_members gm join ug on gm.member_group_id = ug.id
),
orgs(id) as (select organization_id from organization_members where user_id = $1),
admin_orgs(id) as (select organization_id from organization_members where user_id = $1 and admin),
-- every grant held by the user, a group the user is in, or an organization the user belongs to
held as (
  select content_id, folder_id from grants where user_id = $1
  union all
  select g.content_id, g.folder_id from grants g join ug on g.group_id = ug.id
  union all
  select g.content_id, g.folder_id from grants g join orgs on g.organization_id = orgs.id
),
-- folders granted, and every folder below them
granted_folders(id) as (
  select folder_id from held where folder_id is not null
  union
  select f.id from folders f join granted_folders g on f.parent_id = g.id
),
local_view(id) as (
  select workspace_id from workspace_access
  where kind in ('level', 'guest') and (user_id = $1 or group_id in (select id from ug))
  union
  select id from workspaces where organization_id in (select id from admin_orgs)
),
below_view(id) as (
  select id from local_view
  union
  select w.id from workspaces w join below_view b on w.parent_id = b.id
),
above_view(id) as (
  select id from local_view
  union
  select w.parent_id from workspaces w join above_view a on w.id = a.id where w.parent_id is not null
),
view_in_tree(id) as (select id from below_view union select id from above_view),
manage(id) as (
  select workspace_id from workspace_access
  where kind = 'level' and level = 'manage' and (user_id = $1 or group_id in (select id from ug))
  union
  select id from workspaces where organization_id in (select id from admin_orgs)
  union
  select w.id from workspaces w join manage m on w.parent_id = m.id
),
all_content(id) as (
  select id from manage
  union
  select workspace_id from workspace_access where kind = 'guest' and (user_id = $1 or group_id in (select id from ug))
)
select c.id from content c
where c.kind = $2 and c.workspace_id in (select id from view_in_tree)
  and c.id in (select content_id from held where content_id is not null)
union
select c.id from content c
where c.kind = $2 and c.workspace_id in (select id from view_in_tree)
  and c.folder_id in (select id from granted_folders)
union
select c.id from content c
where c.kind = $2 and c.workspace_id in (select id from all_content)
union
select ps.content_id from partner_shares ps
join partnerships p on p.id = ps.partnership_id
join organization_members m on m.organization_id = p.partner_organization_id and m.user_id = $1
where ps.kind = $2
`;

export class CteBaseline {
  readonly #pool: pg.Pool;

  constructor(databaseUrl: string, poolSize: number) {
    // JIT compilation (on by default) costs seconds per query here and saves nothing on these small ones.
    this.#pool = new pg.Pool({ connectionString: databaseUrl, max: poolSize, options: "-c jit=off" });
    this.#pool.on("error", () => {});
  }

  async check(userId: string, resource: { type: string; id: string }): Promise<boolean> {
    const result = await this.#pool.query<{ allowed: boolean }>({ name: "sg_cte_check", text: CHECK, values: [userId, resource.id, resource.type] });
    return result.rows[0]!.allowed;
  }

  async lookup(userId: string, kind: string): Promise<string[]> {
    const result = await this.#pool.query<{ id: string }>({ name: "sg_cte_lookup", text: LOOKUP, values: [userId, kind] });
    return result.rows.map((r) => r.id);
  }

  close(): Promise<void> {
    return this.#pool.end();
  }
}
