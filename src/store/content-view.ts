import { CompiledQuery, sql, type Kysely } from "kysely";
import type { Database } from "./database.js";

/** One question: may this user view this content item? */
export interface ViewQuestion {
  readonly userId: string;
  readonly kind: string;
  readonly contentId: string;
}

/** One question ($1 user, $2 kind, $3 content id), with the rules of ContentViewRepo's comment. */
const CAN_VIEW = `/* prepared: sg_can_view */
  with
  c as (select id, kind, workspace_id, folder_id from content where id = $3 and kind = $2),
  ug as materialized (select group_id from group_closure where user_id = $1),
  om as materialized (select organization_id, admin from organization_members where user_id = $1),
  up as (select workspace_id as id from c union all select wa.ancestor_id from workspace_ancestors wa join c on wa.workspace_id = c.workspace_id),
  tree as (select id from up union all select wa.workspace_id from workspace_ancestors wa join c on wa.ancestor_id = c.workspace_id),
  chain as (select folder_id as id from c where folder_id is not null union all select fa.ancestor_id from folder_ancestors fa join c on fa.folder_id = c.folder_id)
  select exists (select 1 from c) and (
    exists (
      select 1 from partner_shares ps join c on ps.content_id = c.id and ps.kind = c.kind
      join partnerships p on p.id = ps.partnership_id
      join om on om.organization_id = p.partner_organization_id
    )
    or exists (
      select 1 from workspace_access a join c on a.workspace_id = c.workspace_id
      where a.kind = 'guest' and (a.user_id = $1 or a.group_id in (select group_id from ug))
    )
    or exists (
      select 1 from workspace_access a join up on a.workspace_id = up.id
      where a.kind = 'level' and a.level = 'manage' and (a.user_id = $1 or a.group_id in (select group_id from ug))
    )
    or exists (select 1 from workspaces w join up on w.id = up.id join om on om.organization_id = w.organization_id and om.admin)
    or (
      (
        exists (
          select 1 from grants g join c on g.content_id = c.id and g.resource_type = c.kind
          where g.user_id = $1 or g.group_id in (select group_id from ug) or g.organization_id in (select organization_id from om)
        )
        or exists (
          select 1 from grants g join chain on g.folder_id = chain.id
          where g.user_id = $1 or g.group_id in (select group_id from ug) or g.organization_id in (select organization_id from om)
        )
      )
      and (
        exists (
          select 1 from workspace_access a join tree on a.workspace_id = tree.id
          where a.kind in ('level', 'guest') and (a.user_id = $1 or a.group_id in (select group_id from ug))
        )
        or exists (select 1 from workspaces w join tree on w.id = tree.id join om on om.organization_id = w.organization_id and om.admin)
      )
    )
  ) as allowed
`;

/** Statements of one bulk check in flight at once: the pool serves other calls too. */
const BULK_IN_FLIGHT = 4;

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
 * on its datastore.
 *
 * One statement answers one question: the user's groups and organizations,
 * the item's workspaces and folders, then an indexed probe for each way in.
 * On Postgres it is prepared once per connection: planning it costs more
 * than running it, and after a few runs Postgres keeps one generic plan
 * (~0.2 ms a question at 100,000 items; src/store/pg-pool.ts). A question
 * about an item that does not exist is answered false, as SpiceDB answers it.
 */
export class ContentViewRepo {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * The answers, in order. A bulk check runs its questions a few at a time,
   * each one statement; once one fails, no further one is sent.
   */
  async canView(questions: readonly ViewQuestion[]): Promise<boolean[]> {
    const answers = new Array<boolean>(questions.length);
    let next = 0;
    let failed = false;
    const worker = async () => {
      while (!failed && next < questions.length) {
        const i = next++;
        try {
          answers[i] = await this.#canView(questions[i]!);
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(BULK_IN_FLIGHT, questions.length) }, worker));
    return answers;
  }

  async #canView({ userId, kind, contentId }: ViewQuestion): Promise<boolean> {
    // A constant text, compiled once: the same string every call (prepared by name on Postgres).
    const { rows } = await this.db.executeQuery<{ allowed: boolean }>(CompiledQuery.raw(CAN_VIEW, [userId, kind, contentId]));
    return rows[0]?.allowed === true;
  }

  /**
   * Every item of one kind the user may view: the same rules as canView, a
   * set at a time (the user's groups and organizations once, then the
   * grants, folders and workspaces they reach). Each id once.
   */
  async viewable(userId: string, kind: string): Promise<string[]> {
    const { rows } = await sql<{ id: string }>`/* prepared: sg_viewable */
      with
      ug as (select group_id from group_closure where user_id = ${userId}),
      -- one index scan per kind of holder: an OR across the three columns would read every grant
      held as (
        select g.folder_id, g.content_id, g.resource_type from grants g where g.user_id = ${userId}
        union all
        select g.folder_id, g.content_id, g.resource_type from grants g join ug on g.group_id = ug.group_id
        union all
        select g.folder_id, g.content_id, g.resource_type from grants g
        join organization_members om on g.organization_id = om.organization_id and om.user_id = ${userId}
      ),
      held_folders as (select distinct folder_id as id from held where folder_id is not null),
      -- Folders below the held ones, then their content, probed per folder through an index
      -- (content_folder_kind answers from the index alone). offset 0 keeps each probe a probe:
      -- the planner's estimate of these sets is far too high, and it would otherwise hash every
      -- folder_ancestors row and scan every item of the kind.
      granted_folders as (
        select id from held_folders
        union
        select d.folder_id from held_folders hf,
          lateral (select fa.folder_id from folder_ancestors fa where fa.ancestor_id = hf.id offset 0) d
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
      select c.id from granted_folders gf,
        lateral (select c.id, c.workspace_id from content c where c.folder_id = gf.id and c.kind = ${kind} offset 0) c
      where c.workspace_id in (select id from view_in_tree)
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
