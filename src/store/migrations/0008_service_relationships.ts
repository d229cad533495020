import { sql, type Kysely } from "kysely";

/*
 * Partner accounts through service relationships [002] (R30–R33). A provider
 * organization owns accounts; a service links it to a consumer entity (of
 * another organization) and includes some accounts (service_accounts, id
 * "<service>/<account>"); users of the consumer entity are assigned to the
 * accounts of a service (account_assignments). An ended service keeps its
 * row (ended_at) but loses its consumer link, and its assignments are
 * deleted with the change that ends it (R33). Same conventions as 0001:
 * deferred, non-cascading foreign keys (store/cascade.ts deletes dependants).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table accounts (
      id text primary key,
      owner_organization_id text not null references organizations (id) deferrable initially deferred,
      name text not null,
      created_at timestamptz not null default now()
    );
    create index accounts_owner on accounts (owner_organization_id);

    create table services (
      id text primary key,
      name text not null,
      provider_organization_id text not null references organizations (id) deferrable initially deferred,
      consumer_entity_id text not null references entities (id) deferrable initially deferred,
      ended_at timestamptz,
      created_at timestamptz not null default now()
    );
    create index services_provider on services (provider_organization_id);
    create index services_consumer on services (consumer_entity_id);

    create table service_accounts (
      -- "<service_id>/<account_id>": the permission index's service_account object
      id text primary key,
      service_id text not null references services (id) deferrable initially deferred,
      account_id text not null references accounts (id) deferrable initially deferred,
      created_at timestamptz not null default now(),
      unique (service_id, account_id),
      check (id = service_id || '/' || account_id)
    );
    create index service_accounts_account on service_accounts (account_id);

    create table account_assignments (
      service_account_id text not null references service_accounts (id) deferrable initially deferred,
      user_id text not null references users (id) deferrable initially deferred,
      created_at timestamptz not null default now(),
      primary key (service_account_id, user_id)
    );
    create index account_assignments_user on account_assignments (user_id, service_account_id);
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    drop table account_assignments;
    drop table service_accounts;
    drop table services;
    drop table accounts;
  `.execute(db);
}
