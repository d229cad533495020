import { sql, type Kysely } from "kysely";

/*
 * Foreign keys are DEFERRABLE INITIALLY DEFERRED and never cascade: deletes
 * go through store/cascade.ts, which returns every removed row so that the
 * relationships derived from it are removed from SpiceDB too. A dependent
 * table that cascade.ts does not know about makes the commit fail instead of
 * silently leaving relationships behind.
 */

// Migrations are frozen: they never import application code.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table users (
      id text primary key,
      email text not null unique,
      display_name text not null default '',
      created_at timestamptz not null default now()
    );

    create table platform_admins (
      user_id text primary key references users (id) deferrable initially deferred
    );

    create table organizations (
      id text primary key,
      name text not null,
      channel_partner boolean not null default false,
      created_at timestamptz not null default now()
    );

    create table organization_members (
      organization_id text not null references organizations (id) deferrable initially deferred,
      user_id text not null references users (id) deferrable initially deferred,
      admin boolean not null default false,
      created_at timestamptz not null default now(),
      primary key (organization_id, user_id)
    );
    create index organization_members_user on organization_members (user_id);

    create table groups (
      id text primary key,
      organization_id text not null references organizations (id) deferrable initially deferred,
      name text not null,
      created_at timestamptz not null default now()
    );
    create index groups_organization on groups (organization_id);

    create table group_members (
      id bigint generated always as identity primary key,
      group_id text not null references groups (id) deferrable initially deferred,
      user_id text references users (id) deferrable initially deferred,
      member_group_id text references groups (id) deferrable initially deferred,
      created_at timestamptz not null default now(),
      check (num_nonnulls(user_id, member_group_id) = 1),
      check (member_group_id is distinct from group_id),
      unique nulls not distinct (group_id, user_id, member_group_id)
    );
    create index group_members_user on group_members (user_id);
    create index group_members_member_group on group_members (member_group_id);

    create table workspaces (
      id text primary key,
      organization_id text not null references organizations (id) deferrable initially deferred,
      parent_id text references workspaces (id) deferrable initially deferred,
      name text not null,
      created_at timestamptz not null default now()
    );
    create index workspaces_organization on workspaces (organization_id);
    create index workspaces_parent on workspaces (parent_id);

    create table workspace_access (
      id bigint generated always as identity primary key,
      workspace_id text not null references workspaces (id) deferrable initially deferred,
      kind text not null check (kind in ('level', 'guest', 'see')),
      level text check (level in ('view', 'analyze', 'manage')),
      user_id text references users (id) deferrable initially deferred,
      group_id text references groups (id) deferrable initially deferred,
      created_at timestamptz not null default now(),
      check (num_nonnulls(user_id, group_id) = 1),
      check ((kind = 'level') = (level is not null)),
      unique nulls not distinct (workspace_id, kind, user_id, group_id)
    );
    create index workspace_access_user on workspace_access (user_id);
    create index workspace_access_group on workspace_access (group_id);

    create table entities (
      id text primary key,
      organization_id text not null references organizations (id) deferrable initially deferred,
      name text not null,
      created_at timestamptz not null default now()
    );
    create index entities_organization on entities (organization_id);

    create table entity_members (
      entity_id text not null references entities (id) deferrable initially deferred,
      user_id text not null references users (id) deferrable initially deferred,
      created_at timestamptz not null default now(),
      primary key (entity_id, user_id)
    );
    create index entity_members_user on entity_members (user_id);

    create table outbox (
      id bigint generated always as identity primary key,
      ops jsonb not null,
      op_count integer not null,
      created_at timestamptz not null default now(),
      applied_at timestamptz,
      attempts integer not null default 0,
      last_error text,
      zed_token text
    );
    create index outbox_pending on outbox (id) where applied_at is null;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    drop table outbox;
    drop table entity_members;
    drop table entities;
    drop table workspace_access;
    drop table workspaces;
    drop table group_members;
    drop table groups;
    drop table organization_members;
    drop table organizations;
    drop table platform_admins;
    drop table users;
  `.execute(db);
}
