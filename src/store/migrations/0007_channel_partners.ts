import { sql, type Kysely } from "kysely";

/*
 * Channel partners [004] (R20–R23). A customer organization adds chosen users
 * of a channel-partner organization; one partnership row per (customer,
 * partner organization), one row per added user. Whether an added user still
 * has access (still a member, org still classified) is the schema's
 * intersection, not these rows: nothing here is cleaned up when a user
 * leaves or the classification is dropped (R22). Same conventions as 0001:
 * deferred, non-cascading foreign keys (store/cascade.ts deletes dependants).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table channel_partnerships (
      id text primary key,
      customer_organization_id text not null references organizations (id) deferrable initially deferred,
      partner_organization_id text not null references organizations (id) deferrable initially deferred,
      created_at timestamptz not null default now(),
      unique (customer_organization_id, partner_organization_id),
      check (customer_organization_id <> partner_organization_id)
    );
    create index channel_partnerships_partner on channel_partnerships (partner_organization_id);

    create table channel_partner_users (
      channel_partnership_id text not null references channel_partnerships (id) deferrable initially deferred,
      user_id text not null references users (id) deferrable initially deferred,
      created_at timestamptz not null default now(),
      primary key (channel_partnership_id, user_id)
    );
    create index channel_partner_users_user on channel_partner_users (user_id);
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    drop table channel_partner_users;
    drop table channel_partnerships;
  `.execute(db);
}
