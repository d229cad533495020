import { sql, type Kysely } from "kysely";

// Folders, content and role grants (R1–R8). Same conventions as 0001:
// deferred, non-cascading foreign keys; deletes go through store/cascade.ts.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table folders (
      id text primary key,
      workspace_id text not null references workspaces (id) deferrable initially deferred,
      parent_id text references folders (id) deferrable initially deferred,
      name text not null,
      created_by text references users (id) deferrable initially deferred,
      created_at timestamptz not null default now(),
      check (parent_id is distinct from id)
    );
    create index folders_workspace on folders (workspace_id);
    create index folders_parent on folders (parent_id);
    create index folders_created_by on folders (created_by);

    create table content (
      id text primary key,
      kind text not null check (kind in ('report', 'board', 'dashboard', 'workbook')),
      workspace_id text not null references workspaces (id) deferrable initially deferred,
      folder_id text references folders (id) deferrable initially deferred,
      name text not null,
      created_by text references users (id) deferrable initially deferred,
      created_at timestamptz not null default now()
    );
    create index content_workspace on content (workspace_id);
    create index content_folder on content (folder_id);
    create index content_created_by on content (created_by);

    create table grants (
      id bigint generated always as identity primary key,
      -- 'folder' or the content's kind, so the grant's relationship derives from this row alone
      resource_type text not null check (resource_type in ('folder', 'report', 'board', 'dashboard', 'workbook')),
      folder_id text references folders (id) deferrable initially deferred,
      content_id text references content (id) deferrable initially deferred,
      user_id text references users (id) deferrable initially deferred,
      group_id text references groups (id) deferrable initially deferred,
      organization_id text references organizations (id) deferrable initially deferred,
      role text not null check (role in ('viewer', 'sharer', 'editor', 'manager')),
      granted_by text references users (id) deferrable initially deferred,
      created_at timestamptz not null default now(),
      check (num_nonnulls(folder_id, content_id) = 1),
      check ((resource_type = 'folder') = (folder_id is not null)),
      check (num_nonnulls(user_id, group_id, organization_id) = 1),
      unique nulls not distinct (folder_id, content_id, user_id, group_id, organization_id)
    );
    create index grants_folder on grants (folder_id);
    create index grants_content on grants (content_id);
    create index grants_user on grants (user_id);
    create index grants_group on grants (group_id);
    create index grants_organization on grants (organization_id);
    create index grants_granted_by on grants (granted_by);
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    drop table grants;
    drop table content;
    drop table folders;
  `.execute(db);
}
