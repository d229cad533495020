import { CompiledQuery, type Kysely } from "kysely";
import type { Database, RoleName } from "./database.js";

/** Who a sharing question is about: a user, a group's members, or an organization's members. */
export interface SharingSubject {
  readonly kind: "user" | "group" | "organization";
  readonly id: string;
}

/** What a Share, Unshare or organization default role needs to know, asked in one statement. */
export interface SharingQuestion {
  /** The item: "folder" or a content kind, and its id. */
  readonly itemType: string;
  readonly itemId: string;
  /** The item's workspace. */
  readonly workspaceId: string;
  /** The folder whose grants and ancestors' grants reach the item: the folder itself, or the content's folder (null: none). */
  readonly baseFolderId: string | null;
  /** The actor, when what they may do on the item is asked. */
  readonly actor?: string | undefined;
  /** The grantee, when its eligibility (R6) or inherited role (R2) is asked. */
  readonly grantee?: SharingSubject | undefined;
  readonly askEligibility?: boolean;
  /** The item's parent folder, when the role the grantee inherits from it is asked. */
  readonly parentFolderId?: string | null | undefined;
}

export interface SharingAnswers {
  readonly actorCan: { readonly manage: boolean; readonly edit: boolean; readonly share: boolean };
  readonly eligible: boolean;
  readonly eligibleNative: boolean;
  /** The highest role the grantee holds on the parent folder or a folder above it (R1, R2). */
  readonly inheritedRole: RoleName | undefined;
  /** The nearest of those folders that grants that role itself. */
  readonly inheritedFrom: string | undefined;
}

const ROLE_BY_RANK: readonly (RoleName | undefined)[] = [undefined, "viewer", "sharer", "editor", "manager"];

/*
 * $1 actor (null: not asked), $2 item type, $3 item id, $4 workspace, $5 base folder,
 * $6 grantee kind (null: not asked), $7 grantee id, $8 eligibility asked, $9 parent folder (null: none).
 *
 * A grantee that is a group is its members: the group itself and every
 * group containing it, never a user of its own nor an organization member
 * (the stand-in of src/engine/group-subjects.ts). An organization's members
 * are reached only by grants to that organization.
 */
const SHARING_QUESTIONS = `/* prepared: sg_sharing_questions */
  with
  a_groups as materialized (select group_id from group_closure where user_id = $1::text),
  a_orgs as materialized (select organization_id, admin from organization_members where user_id = $1::text),
  g_groups as materialized (
    select group_id from group_closure where $6::text = 'user' and user_id = $7::text
    union all select $7::text where $6::text = 'group'
    union all select group_id from group_closure where $6::text = 'group' and member_group_id = $7::text
  ),
  g_orgs as materialized (
    select organization_id, admin from organization_members where $6::text = 'user' and user_id = $7::text
    union all select $7::text, false where $6::text = 'organization'
  ),
  g_user as (select $7::text as id where $6::text = 'user'),
  up as (select $4::text as id union all select ancestor_id from workspace_ancestors where workspace_id = $4::text),
  tree as (select id from up union all select workspace_id from workspace_ancestors where ancestor_id = $4::text),
  chain as (select $5::text as id where $5::text is not null union all select ancestor_id from folder_ancestors where folder_id = $5::text),
  parents as (select $9::text as id, 0 as depth where $9::text is not null union all select ancestor_id, depth from folder_ancestors where folder_id = $9::text),
  item_grants as (
    select role, user_id, group_id, organization_id from grants where $2::text <> 'folder' and content_id = $3::text and resource_type = $2::text
    union all select g.role, g.user_id, g.group_id, g.organization_id from grants g join chain on g.folder_id = chain.id
  ),
  a_rank as (
    select coalesce(max(case role when 'manager' then 4 when 'editor' then 3 when 'sharer' then 2 else 1 end), 0) as r
    from item_grants g where $1::text is not null and (
      g.user_id = $1::text or g.group_id in (select group_id from a_groups) or g.organization_id in (select organization_id from a_orgs))
  ),
  a_access as (
    select a.workspace_id, a.kind, a.level from workspace_access a
    where a.workspace_id in (select id from tree) and $1::text is not null
      and (a.user_id = $1::text or a.group_id in (select group_id from a_groups))
  ),
  a_admin as (select w.id from workspaces w join a_orgs o on o.organization_id = w.organization_id and o.admin where w.id in (select id from tree)),
  a_ws as (
    select
      exists (select 1 from a_access where workspace_id in (select id from up) and kind = 'level' and level = 'manage')
        or exists (select 1 from a_admin where id in (select id from up)) as manage,
      exists (select 1 from a_access where workspace_id in (select id from up) and kind = 'level' and level in ('analyze', 'manage'))
        or exists (select 1 from a_admin where id in (select id from up)) as analyze,
      exists (select 1 from a_access where kind in ('level', 'guest')) or exists (select 1 from a_admin) as view_in_tree
  ),
  g_access as (
    select a.workspace_id, a.kind from workspace_access a
    where $8::boolean and a.workspace_id in (select id from tree)
      and (a.user_id in (select id from g_user) or a.group_id in (select group_id from g_groups))
  ),
  g_admin as (select w.id from workspaces w join g_orgs o on o.organization_id = w.organization_id and o.admin where $8::boolean and w.id in (select id from tree)),
  g_ws as (
    select
      exists (select 1 from g_access where kind in ('level', 'guest')) or exists (select 1 from g_admin) as view_in_tree,
      exists (select 1 from g_access where workspace_id in (select id from up) and kind in ('level', 'guest'))
        or exists (select 1 from g_admin where id in (select id from up)) as view,
      exists (select 1 from g_access where workspace_id = $4::text and kind = 'see') as see
  ),
  inherited as (
    select case g.role when 'manager' then 4 when 'editor' then 3 when 'sharer' then 2 else 1 end as r, p.depth, p.id
    from grants g join parents p on g.folder_id = p.id
    where g.user_id in (select id from g_user) or g.group_id in (select group_id from g_groups) or g.organization_id in (select organization_id from g_orgs)
  ),
  top as (select r, id from inherited order by r desc, depth asc limit 1)
  select
    (a_rank.r >= 4 and a_ws.analyze) or a_ws.manage as actor_manage,
    (a_rank.r >= 3 and a_ws.analyze) or a_ws.manage as actor_edit,
    (a_rank.r >= 2 and a_ws.view_in_tree) or (a_rank.r >= 4 and a_ws.analyze) or a_ws.manage as actor_share,
    g_ws.view_in_tree or g_ws.see as eligible,
    g_ws.view or g_ws.see as eligible_native,
    (select r from top) as inherited_rank,
    (select id from top) as inherited_from
  from a_rank, a_ws, g_ws
`;

interface Row {
  actor_manage: boolean;
  actor_edit: boolean;
  actor_share: boolean;
  eligible: boolean;
  eligible_native: boolean;
  inherited_rank: number | null;
  inherited_from: string | null;
}

/**
 * The questions of the Share dialog answered from sharegraph's own rows and
 * the closures kept beside them (group_closure, folder_ancestors,
 * workspace_ancestors) — the rows every SpiceDB relationship is derived from
 * (src/domain/graph.ts) — with the rules of schema/sharegraph.zed:
 *
 *   manage = (granted_manage & workspace->analyze) + workspace->manage
 *   edit   = (granted_edit & workspace->analyze) + workspace->manage
 *   share  = (granted_share & workspace->view_in_tree) + manage
 *   granted_<role>: that role or a higher one on the item, its folder or a folder above (R1)
 *   workspace manage / analyze: a level (or admin of the organization) here or above
 *   view_in_tree: a level or guest (or admin) here, above or below
 *   eligible = view_in_tree + see; eligible_native = view (here or above) + see (R6)
 *
 * WRITE_CHECKS_FROM=postgres. A write's authorization then costs one
 * statement instead of SpiceDB's questions at a new revision each time,
 * where its caches hold nothing (docs/PERFORMANCE.md, round 11); and it
 * reads every committed change, as R40 asks, without waiting for the outbox.
 * test/store/write-checks.property.test.ts holds it equal to SpiceDB.
 */
export class SharingQuestionsRepo {
  constructor(private readonly db: Kysely<Database>) {}

  async ask(q: SharingQuestion): Promise<SharingAnswers> {
    const params = [
      q.actor ?? null,
      q.itemType,
      q.itemId,
      q.workspaceId,
      q.baseFolderId,
      q.grantee?.kind ?? null,
      q.grantee?.id ?? null,
      q.askEligibility === true && q.grantee !== undefined,
      q.grantee ? (q.parentFolderId ?? null) : null,
    ];
    const { rows } = await this.db.executeQuery<Row>(CompiledQuery.raw(SHARING_QUESTIONS, params));
    const row = rows[0]!;
    return {
      actorCan: { manage: row.actor_manage, edit: row.actor_edit, share: row.actor_share },
      eligible: row.eligible,
      eligibleNative: row.eligible_native,
      inheritedRole: ROLE_BY_RANK[Number(row.inherited_rank ?? 0)],
      inheritedFrom: row.inherited_from ?? undefined,
    };
  }
}
