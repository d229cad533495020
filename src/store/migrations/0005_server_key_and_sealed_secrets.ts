import { createCipheriv, hkdfSync, randomBytes } from "node:crypto";
import { sql, type Kysely } from "kysely";

/*
 * Issue 7 (hardening):
 *  - server_keys: the deployment's server key, 32 random bytes generated
 *    here, once, so that every gateway sharing this database reads the same
 *    key (consistency tokens are MACed with it; invitation tokens waiting to
 *    be mailed are sealed with it). See src/secrets.ts.
 *  - notifications.secret: a secret the mail needs but the stored and
 *    listed body must not show (an invitation token), sealed with the
 *    server key, erased once the mail is delivered or given up on.
 *  - Invitation mails recorded before this migration carry their token in
 *    the body: it is replaced by the placeholder; still-pending ones keep it
 *    sealed in `secret` so the mail still works when it is sent.
 *
 * Like every migration, this does not import application code; the sealing
 * below is the format of Sealer in src/secrets.ts ("v1." ‖ base64url(IV ‖
 * ciphertext ‖ tag), subkey HKDF-SHA256 "sharegraph <purpose>", AAD the
 * purpose), pinned to it by test/store/sealed-secrets.test.ts.
 */
const PURPOSE = "invitation-token/v1";
const PLACEHOLDER = "[invitation token: sent by mail only]";
const LEGACY_TOKEN = /\(invitation token: ([A-Za-z0-9_-]{16,})\)/;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table server_keys (
      name text primary key,
      secret text not null,
      created_at timestamptz not null default now()
    );
    alter table notifications add column secret text;
  `.execute(db);
  const master = randomBytes(32);
  await sql`insert into server_keys (name, secret) values ('master', ${master.toString("base64url")})`.execute(db);

  const key = Buffer.from(hkdfSync("sha256", master, Buffer.alloc(0), `sharegraph ${PURPOSE}`, 32));
  const legacy = await sql<{ id: number; body: string; status: string }>`
    select id, body, status from notifications where kind = 'partner_invitation' and body like '%(invitation token: %'
  `.execute(db);
  for (const row of legacy.rows) {
    const token = LEGACY_TOKEN.exec(row.body)?.[1];
    if (!token) continue;
    const body = row.body.split(token).join(PLACEHOLDER);
    const secret = row.status === "pending" ? seal(key, token) : null;
    await sql`update notifications set body = ${body}, secret = ${secret} where id = ${row.id}`.execute(db);
  }
}

/** Tokens scrubbed from bodies stay scrubbed: down() cannot put them back. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    alter table notifications drop column secret;
    drop table server_keys;
  `.execute(db);
}

function seal(key: Buffer, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(PURPOSE, "utf8"));
  const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return `v1.${Buffer.concat([iv, body, cipher.getAuthTag()]).toString("base64url")}`;
}
