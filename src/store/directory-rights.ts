import { CompiledQuery, type Kysely } from "kysely";
import type { Database } from "./database.js";

/** The questions DirectoryRightsRepo answers: "permission on type". */
const ANSWERED = new Set(["manage on organization", "manage on group", "manage on entity", "change_permissions on workspace"]);

/*
 * $1 actor, $2 resource type, $3 resource id.
 *
 *   organization manage = admin + platform->manage (every organization has the platform)
 *   group / entity manage = organization->manage
 *   workspace change_permissions = manage = ancestor_or_self->(manager + organization->admin)
 *
 * An object that does not exist has no relationships, so SpiceDB answers no
 * for it; so does this statement.
 */
const DIRECTORY_RIGHTS = `/* prepared: sg_directory_rights */
  with
  org as (
    select id from organizations where id = (
      case $2::text
        when 'organization' then $3::text
        when 'group' then (select organization_id from groups where id = $3::text)
        when 'entity' then (select organization_id from entities where id = $3::text)
      end)
  ),
  platform_admin as (select exists (select 1 from platform_admins where user_id = $1::text) as yes),
  up as (
    select id from workspaces where $2::text = 'workspace' and id = $3::text
    union all select ancestor_id from workspace_ancestors where $2::text = 'workspace' and workspace_id = $3::text
  )
  select case
    when $2::text = 'workspace' then
      exists (
        select 1 from workspace_access a join up on a.workspace_id = up.id
        where a.kind = 'level' and a.level = 'manage'
          and (a.user_id = $1::text or a.group_id in (select group_id from group_closure where user_id = $1::text))
      )
      or exists (
        select 1 from workspaces w join up on w.id = up.id
        join organization_members om on om.organization_id = w.organization_id and om.user_id = $1::text and om.admin
      )
    else exists (select 1 from org)
      and ((select yes from platform_admin)
        or exists (select 1 from organization_members om join org on om.organization_id = org.id where om.user_id = $1::text and om.admin))
  end as allowed
`;

/**
 * The directory's own rights — organization, group and entity `manage`,
 * and a workspace's `change_permissions` — answered from
 * sharegraph's rows with the rules of schema/sharegraph.zed (above), for
 * WRITE_CHECKS_FROM=postgres: one statement instead of a SpiceDB question
 * at a revision its caches have not seen. Other questions are not answered
 * here (undefined). test/store/write-checks.property.test.ts holds it equal
 * to SpiceDB.
 */
export class DirectoryRightsRepo {
  constructor(private readonly db: Kysely<Database>) {}

  async can(actor: string, permission: string, resource: { readonly type: string; readonly id: string }): Promise<boolean | undefined> {
    if (!ANSWERED.has(`${permission} on ${resource.type}`)) return undefined;
    const { rows } = await this.db.executeQuery<{ allowed: boolean }>(CompiledQuery.raw(DIRECTORY_RIGHTS, [actor, resource.type, resource.id]));
    return rows[0]?.allowed === true;
  }
}
