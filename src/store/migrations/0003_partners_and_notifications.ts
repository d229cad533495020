import { sql, type Kysely } from "kysely";

// Partner share access [000] (R10–R13) and notifications (R43). Same
// conventions as 0001: deferred, non-cascading foreign keys.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table partnerships (
      id text primary key,
      owner_organization_id text not null references organizations (id) deferrable initially deferred,
      partner_organization_id text not null references organizations (id) deferrable initially deferred,
      created_at timestamptz not null default now(),
      unique (owner_organization_id, partner_organization_id),
      check (owner_organization_id <> partner_organization_id)
    );
    create index partnerships_partner on partnerships (partner_organization_id);

    create table partner_shares (
      partnership_id text not null references partnerships (id) deferrable initially deferred,
      content_id text not null references content (id) deferrable initially deferred,
      -- the content's kind, so the relationship derives from this row alone
      kind text not null check (kind in ('report', 'board')),
      created_at timestamptz not null default now(),
      primary key (partnership_id, content_id)
    );
    create index partner_shares_content on partner_shares (content_id);

    create table partner_invitations (
      id text primary key,
      owner_organization_id text not null references organizations (id) deferrable initially deferred,
      email text not null,
      token_hash text not null unique,
      status text not null check (status in ('pending', 'accepted', 'revoked', 'expired')),
      invited_by text references users (id) deferrable initially deferred,
      expires_at timestamptz not null,
      accepted_at timestamptz,
      accepted_by text references users (id) deferrable initially deferred,
      partner_organization_id text references organizations (id) deferrable initially deferred,
      created_at timestamptz not null default now()
    );
    create index partner_invitations_owner on partner_invitations (owner_organization_id, status);
    create index partner_invitations_invited_by on partner_invitations (invited_by);
    create index partner_invitations_accepted_by on partner_invitations (accepted_by);
    create index partner_invitations_partner on partner_invitations (partner_organization_id);

    create table partner_invitation_items (
      invitation_id text not null references partner_invitations (id) deferrable initially deferred,
      content_id text not null references content (id) deferrable initially deferred,
      primary key (invitation_id, content_id)
    );
    create index partner_invitation_items_content on partner_invitation_items (content_id);

    -- R11: one person per private email domain (key "domain:acme.com") or,
    -- for public domains, per address ("email:jo@gmail.com"), per inviting
    -- organization. Held by a pending invitation or, once accepted, by the
    -- partnership; the unique key makes concurrent invitations race-free.
    create table partner_domain_claims (
      id bigint generated always as identity primary key,
      owner_organization_id text not null references organizations (id) deferrable initially deferred,
      claim_key text not null,
      email text not null,
      invitation_id text references partner_invitations (id) deferrable initially deferred,
      partnership_id text references partnerships (id) deferrable initially deferred,
      created_at timestamptz not null default now(),
      unique (owner_organization_id, claim_key),
      check (num_nonnulls(invitation_id, partnership_id) = 1)
    );
    create index partner_domain_claims_invitation on partner_domain_claims (invitation_id);
    create index partner_domain_claims_partnership on partner_domain_claims (partnership_id);

    -- R43: recorded with the change that caused them, delivered by SMTP when configured.
    create table notifications (
      id bigint generated always as identity primary key,
      kind text not null,
      recipient text not null,
      subject text not null,
      body text not null,
      status text not null default 'pending' check (status in ('pending', 'sent', 'failed')),
      attempts integer not null default 0,
      last_error text,
      next_attempt_at timestamptz not null default now(),
      sent_at timestamptz,
      created_at timestamptz not null default now()
    );
    create index notifications_due on notifications (next_attempt_at) where status = 'pending';
    create index notifications_recipient on notifications (recipient);
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    drop table notifications;
    drop table partner_domain_claims;
    drop table partner_invitation_items;
    drop table partner_invitations;
    drop table partner_shares;
    drop table partnerships;
  `.execute(db);
}
