/**
 * Issue 7, item 8 (invitation tokens were readable in stored and listed
 * notification bodies) and item 1's server key, at the storage level:
 *
 *  - the server key (migration 0005) is one per database, the same for
 *    every reader, and is what tokens and sealed secrets are bound to;
 *  - Sealer (src/secrets.ts) opens only what it sealed, for its purpose;
 *  - migration 0005 scrubs tokens out of invitation mails recorded before
 *    it, keeping them sealed for mails still to be sent, in the same format
 *    as the application's Sealer (the migration cannot import it);
 *  - the invitation mail's stored body holds a placeholder, and the mail
 *    sent puts the token (and the accept link) in its place.
 */
import { randomBytes } from "node:crypto";
import { Migrator, sql } from "kysely";
import { describe, expect, it } from "vitest";
import { INVITATION_TOKEN_PURPOSE, TOKEN_PLACEHOLDER, invitationMail, withToken } from "../../src/domain/mail.js";
import { SealedSecretError, ServerKey, newServerKeyText } from "../../src/secrets.js";
import { migrationProvider } from "../../src/store/migrations/index.js";
import type { Store } from "../../src/store/store.js";
import { freshStoreEach, kyselyOf } from "./helpers.js";

describe("Sealer and Mac (src/secrets.ts)", () => {
  const key = new ServerKey(randomBytes(32));

  it("opens what it sealed; each sealing differs (random IV)", () => {
    const sealer = key.sealer(INVITATION_TOKEN_PURPOSE);
    const a = sealer.seal("the token");
    const b = sealer.seal("the token");
    expect(a).not.toBe(b);
    expect(a).not.toContain("the token");
    expect(sealer.open(a)).toBe("the token");
    expect(sealer.open(b)).toBe("the token");
  });

  it("refuses a value sealed for another purpose, with another key, or altered", () => {
    const sealed = key.sealer(INVITATION_TOKEN_PURPOSE).seal("the token");
    expect(() => key.sealer("something-else/v1").open(sealed)).toThrow(SealedSecretError);
    expect(() => new ServerKey(randomBytes(32)).sealer(INVITATION_TOKEN_PURPOSE).open(sealed)).toThrow(SealedSecretError);
    const raw = Buffer.from(sealed.slice(3), "base64url");
    raw[14] = raw[14]! ^ 1;
    expect(() => key.sealer(INVITATION_TOKEN_PURPOSE).open(`v1.${raw.toString("base64url")}`)).toThrow(SealedSecretError);
    expect(() => key.sealer(INVITATION_TOKEN_PURPOSE).open("not sealed")).toThrow(SealedSecretError);
  });

  it("a MAC verifies only under its own key and purpose, and only the full text", () => {
    const mac = key.mac("consistency-token/v2");
    const tag = mac.tag("payload");
    expect(mac.verify("payload", tag)).toBe(true);
    expect(mac.verify("payload!", tag)).toBe(false);
    expect(key.mac("other/v1").verify("payload", tag)).toBe(false);
    expect(new ServerKey(randomBytes(32)).mac("consistency-token/v2").verify("payload", tag)).toBe(false);
    expect(mac.verify("payload", tag.subarray(0, 8))).toBe(false);
  });

  it("a server key shorter than 32 bytes is refused", () => {
    expect(() => new ServerKey(randomBytes(16))).toThrow(/at least 32 bytes/);
  });
});

describe("invitation mails (src/domain/mail.ts)", () => {
  const sealedToken = new ServerKey(randomBytes(32)).sealer(INVITATION_TOKEN_PURPOSE).seal("TOKEN_abc-123");
  const input = { to: "jo@client.example", ownerName: "Acme", inviterName: "Alice", items: [{ kind: "report", id: "r1", name: "Pipeline" }], sealedToken, expiresAt: new Date("2030-01-01T00:00:00Z") };

  it("issue 7.8: the stored body has a placeholder where the token goes, and the sealed token beside it", () => {
    const mail = invitationMail({ ...input, acceptUrl: undefined });
    expect(mail.secret).toBe(sealedToken);
    expect(mail.body).toContain(`Accept the invitation with this token: ${TOKEN_PLACEHOLDER}`);
    expect(withToken(mail.body, "TOKEN_abc-123")).toContain("Accept the invitation with this token: TOKEN_abc-123\n(invitation token: TOKEN_abc-123)");
  });

  it("issue 7.8: with INVITATION_ACCEPT_URL, the mail sent carries a working link", () => {
    const mail = invitationMail({ ...input, acceptUrl: "https://bi.example.com/partners/accept?token={token}" });
    expect(mail.body).not.toContain("TOKEN_abc-123");
    expect(withToken(mail.body, "TOKEN_abc-123")).toContain("Accept the invitation: https://bi.example.com/partners/accept?token=TOKEN_abc-123\n");
  });
});

describe("migration 0005: server key and sealed secrets", () => {
  let store: Store;
  freshStoreEach((s) => (store = s));

  function migrator(): Migrator {
    const schema = (store as unknown as { opened: { schema?: string } }).opened.schema;
    return new Migrator({ db: kyselyOf(store), provider: migrationProvider, ...(schema ? { migrationTableSchema: schema } : {}) });
  }

  it("generates one server key per database; every reader gets the same one", async () => {
    const first = await store.read.serverKeys.master(newServerKeyText);
    const again = await store.read.serverKeys.master(newServerKeyText);
    expect(first.length).toBe(32);
    expect(again.equals(first)).toBe(true);
  });

  it("a key deleted behind its back is replaced once, and then shared", async () => {
    await sql`delete from server_keys`.execute(kyselyOf(store));
    const [a, b] = await Promise.all([store.read.serverKeys.master(newServerKeyText), store.read.serverKeys.master(newServerKeyText)]);
    expect(a.equals(b)).toBe(true);
  });

  it("issue 7.8: scrubs tokens out of invitation mails recorded before it; a pending one keeps its token sealed, openable by the application", async () => {
    const db = kyselyOf(store);
    expect((await migrator().migrateTo("0004_outbox_apply_lock")).error).toBeUndefined();
    const pendingToken = randomBytes(32).toString("base64url");
    const sentToken = randomBytes(32).toString("base64url");
    const legacyBody = (token: string) =>
      `Alice of Acme invited you as a partner, with view access to:\n  - report "Pipeline" (r1)\n\n` +
      `Accept the invitation: https://bi.example.com/accept?token=${token}\n(invitation token: ${token})\n`;
    await sql`
      insert into notifications (kind, recipient, subject, body, status) values
        ('partner_invitation', 'jo@client.example', 'invited', ${legacyBody(pendingToken)}, 'pending'),
        ('partner_invitation', 'sam@client.example', 'invited', ${legacyBody(sentToken)}, 'sent'),
        ('partner_removed', 'kim@client.example', 'removed', 'no token here', 'pending')
    `.execute(db);

    expect((await migrator().migrateToLatest()).error).toBeUndefined();

    const rows = await sql<{ recipient: string; body: string; secret: string | null; json: string }>`
      select recipient, body, secret, to_jsonb(n)::text as json from notifications n order by id
    `.execute(db);
    const [pending, sent, other] = rows.rows;
    for (const row of [pending!, sent!]) {
      expect(row.json).not.toContain(pendingToken);
      expect(row.json).not.toContain(sentToken);
      expect(row.body).toContain(`(invitation token: ${TOKEN_PLACEHOLDER})`);
    }
    expect(sent!.secret).toBe(null);
    expect(other).toMatchObject({ body: "no token here", secret: null });

    const sealer = new ServerKey(await store.read.serverKeys.master(newServerKeyText)).sealer(INVITATION_TOKEN_PURPOSE);
    const opened = sealer.open(pending!.secret!);
    expect(opened).toBe(pendingToken);
    expect(withToken(pending!.body, opened)).toBe(legacyBody(pendingToken));
  });
});
