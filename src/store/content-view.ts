import { sql, type Kysely } from "kysely";
import type { Database } from "./database.js";

/** One question: may this user view this content item? */
export interface ViewQuestion {
  readonly userId: string;
  readonly kind: string;
  readonly contentId: string;
}

/**
 * `view` on a content item (report, board, dashboard, workbook) for a user,
 * answered from sharegraph's own tables and the closures the store keeps
 * beside them (group_closure, folder_ancestors, workspace_ancestors): the
 * same rows every relationship in SpiceDB derives from (src/domain/graph.ts),
 * read with the rules of schema/sharegraph.zed:
 *
 *   view         = (granted_view & workspace->view_in_tree) + workspace->view_all_content + partner_share->viewer
 *   granted_view : any role on the item, its folder or a folder above (R1), held by the
 *                  user, a group the user is in at any depth, or an organization of the user
 *   view_in_tree : a workspace level or guest on the item's workspace, one above or one
 *                  below it, or admin of such a workspace's organization
 *   view_all_content: MANAGE on the workspace or one above (a manage level, or admin of its
 *                  organization), or guest of the workspace itself (R7)
 *   partner_share->viewer: a member of the partner organization of a partnership the item is shared through (R12)
 *
 * test/store/content-view.property.test.ts holds this equal to SpiceDB's
 * answers on random graphs and random changes; docs/PERFORMANCE.md (round 7)
 * says why it exists: a first-time question costs SpiceDB ~20 relation reads
 * on its datastore, and this one statement ~0.5 ms.
 *
 * One statement answers a whole list (unnest … with ordinality), so a bulk
 * check is one round trip. A question about an item that does not exist is
 * answered false, as SpiceDB answers it.
 */
export class ContentViewRepo {
  constructor(private readonly db: Kysely<Database>) {}

  async canView(questions: readonly ViewQuestion[]): Promise<boolean[]> {
    if (questions.length === 0) return [];
    const users = questions.map((q) => q.userId);
    const kinds = questions.map((q) => q.kind);
    const ids = questions.map((q) => q.contentId);
    const { rows } = await sql<{ allowed: boolean }>`
      select coalesce(v.allowed, false) as allowed
      from unnest(${users}::text[], ${kinds}::text[], ${ids}::text[]) with ordinality as q(user_id, kind, content_id, ord)
      left join lateral (
        select (
          -- partner_share->viewer (R12)
          exists (
            select 1 from partner_shares ps
            join partnerships p on p.id = ps.partnership_id
            join organization_members pm on pm.organization_id = p.partner_organization_id and pm.user_id = q.user_id
            where ps.content_id = c.id and ps.kind = c.kind
          )
          -- view_all_content: guest of the item's workspace…
          or exists (
            select 1 from workspace_access a
            where a.workspace_id = c.workspace_id and a.kind = 'guest'
              and (a.user_id = q.user_id or a.group_id in (select gc.group_id from group_closure gc where gc.user_id = q.user_id))
          )
          -- …or MANAGE on it or on a workspace above: a manage level…
          or exists (
            select 1 from workspace_access a
            where a.kind = 'level' and a.level = 'manage'
              and (a.workspace_id = c.workspace_id or a.workspace_id in (select wa.ancestor_id from workspace_ancestors wa where wa.workspace_id = c.workspace_id))
              and (a.user_id = q.user_id or a.group_id in (select gc.group_id from group_closure gc where gc.user_id = q.user_id))
          )
          -- …or admin of its organization
          or exists (
            select 1 from workspaces w
            join organization_members om on om.organization_id = w.organization_id and om.user_id = q.user_id and om.admin
            where w.id = c.workspace_id or w.id in (select wa.ancestor_id from workspace_ancestors wa where wa.workspace_id = c.workspace_id)
          )
          -- granted_view & view_in_tree
          or (
            (
              exists (
                select 1 from grants g
                where g.content_id = c.id and g.resource_type = c.kind
                  and (g.user_id = q.user_id
                    or g.group_id in (select gc.group_id from group_closure gc where gc.user_id = q.user_id)
                    or g.organization_id in (select om.organization_id from organization_members om where om.user_id = q.user_id))
              )
              or exists (
                select 1 from grants g
                where (g.folder_id = c.folder_id or g.folder_id in (select fa.ancestor_id from folder_ancestors fa where fa.folder_id = c.folder_id))
                  and (g.user_id = q.user_id
                    or g.group_id in (select gc.group_id from group_closure gc where gc.user_id = q.user_id)
                    or g.organization_id in (select om.organization_id from organization_members om where om.user_id = q.user_id))
              )
            )
            and (
              exists (
                select 1 from workspace_access a
                where a.kind in ('level', 'guest')
                  and (a.workspace_id = c.workspace_id
                    or a.workspace_id in (select wa.ancestor_id from workspace_ancestors wa where wa.workspace_id = c.workspace_id)
                    or a.workspace_id in (select wa.workspace_id from workspace_ancestors wa where wa.ancestor_id = c.workspace_id))
                  and (a.user_id = q.user_id or a.group_id in (select gc.group_id from group_closure gc where gc.user_id = q.user_id))
              )
              or exists (
                select 1 from workspaces w
                join organization_members om on om.organization_id = w.organization_id and om.user_id = q.user_id and om.admin
                where w.id = c.workspace_id
                  or w.id in (select wa.ancestor_id from workspace_ancestors wa where wa.workspace_id = c.workspace_id)
                  or w.id in (select wa.workspace_id from workspace_ancestors wa where wa.ancestor_id = c.workspace_id)
              )
            )
          )
        ) as allowed
        from content c
        where c.id = q.content_id and c.kind = q.kind
      ) v on true
      order by q.ord
    `.execute(this.db);
    return rows.map((r) => r.allowed);
  }

  /**
   * Every item of one kind the user may view: the same rules as canView, a
   * set at a time (the user's groups and organizations once, then the
   * grants, folders and workspaces they reach). Each id once.
   */
  async viewable(userId: string, kind: string): Promise<string[]> {
    const { rows } = await sql<{ id: string }>`
      with
      ug as (select group_id from group_closure where user_id = ${userId}),
      held as (
        select g.folder_id, g.content_id, g.resource_type from grants g
        where g.user_id = ${userId}
          or g.group_id in (select group_id from ug)
          or g.organization_id in (select organization_id from organization_members where user_id = ${userId})
      ),
      granted_folders as (
        select folder_id as id from held where folder_id is not null
        union
        select fa.folder_id from folder_ancestors fa join held h on fa.ancestor_id = h.folder_id
      ),
      admin_of as (
        select w.id from workspaces w
        join organization_members om on om.organization_id = w.organization_id and om.user_id = ${userId} and om.admin
      ),
      local_view as (
        select workspace_id as id from workspace_access
        where kind in ('level', 'guest') and (user_id = ${userId} or group_id in (select group_id from ug))
        union
        select id from admin_of
      ),
      -- relative->local_view: the workspaces with a relative (itself, one above, one below) in local_view
      view_in_tree as (
        select id from local_view
        union
        select wa.workspace_id from workspace_ancestors wa where wa.ancestor_id in (select id from local_view)
        union
        select wa.ancestor_id from workspace_ancestors wa where wa.workspace_id in (select id from local_view)
      ),
      local_manage as (
        select workspace_id as id from workspace_access
        where kind = 'level' and level = 'manage' and (user_id = ${userId} or group_id in (select group_id from ug))
        union
        select id from admin_of
      ),
      -- MANAGE here or above, or guest here
      all_content as (
        select id from local_manage
        union
        select wa.workspace_id from workspace_ancestors wa where wa.ancestor_id in (select id from local_manage)
        union
        select workspace_id from workspace_access
        where kind = 'guest' and (user_id = ${userId} or group_id in (select group_id from ug))
      )
      select c.id from content c
      where c.kind = ${kind} and c.workspace_id in (select id from view_in_tree)
        and c.id in (select content_id from held where resource_type = ${kind})
      union
      select c.id from content c
      where c.kind = ${kind} and c.workspace_id in (select id from view_in_tree)
        and c.folder_id in (select id from granted_folders)
      union
      select c.id from content c
      where c.kind = ${kind} and c.workspace_id in (select id from all_content)
      union
      select ps.content_id from partner_shares ps
      join partnerships p on p.id = ps.partnership_id
      join organization_members pm on pm.organization_id = p.partner_organization_id and pm.user_id = ${userId}
      where ps.kind = ${kind}
    `.execute(this.db);
    return rows.map((r) => r.id);
  }
}
