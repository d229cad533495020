/**
 * R11 under concurrency: "Enforced by a Postgres unique constraint, so
 * concurrent invites cannot both win; the loser gets ALREADY_EXISTS naming
 * the existing partner."
 *
 * On real Postgres (TEST_DATABASE_URL) the server gets a pool large enough
 * for every call to hold its own transaction, and the test holds a lock on
 * the claims table until all the invitations are waiting on it: released
 * together, they race past the "is the domain taken?" read and meet at the
 * unique constraint. On PGlite (one connection) the calls serialize; the
 * outcome must be the same.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InvitePartnerResponse } from "../../src/gen/sharegraph/v1/partner_service_pb.js";
import type { DatabaseTarget } from "../../src/store/connect.js";
import { freshTarget } from "../support/database.js";
import { PLATFORM_ADMIN, startTestServer, type Clients, type TestServer } from "../support/server.js";

const N = 20;
const ADMIN = "cc-admin";
const OWNER = "cc-org";
const REPORT = { type: "report", id: "cc-report" };

let server: TestServer;
let c: Clients;
let target: DatabaseTarget;
let dispose: () => Promise<void>;

beforeAll(async () => {
  const fresh = await freshTarget();
  // Postgres: one connection per concurrent call (plus the background applier's).
  target = fresh.target.kind === "postgres" ? { ...fresh.target, poolSize: N + 4 } : fresh.target;
  dispose = fresh.dispose;
  server = await startTestServer({ database: target });
  c = server.clients();
  await c.directory.createUser({ actor: PLATFORM_ADMIN, userId: ADMIN, email: "admin@cc-owner.com" });
  await c.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: OWNER, name: "Concurrent Owner", adminUserIds: [ADMIN] });
  await c.directory.createWorkspace({ actor: ADMIN, organizationId: OWNER, workspaceId: "cc-ws", name: "WS" });
  await c.content.createContent({ actor: ADMIN, kind: "report", contentId: REPORT.id, name: "Report", workspaceId: "cc-ws" });
});

afterAll(async () => {
  await server?.stop();
  await dispose?.();
});

type Outcome = { ok: true; response: InvitePartnerResponse; email: string } | { ok: false; code: Code; message: string; email: string };

function inviteAll(emails: readonly string[]): Promise<Outcome[]> {
  return Promise.all(
    emails.map((email) =>
      c.partner.invitePartner({ actor: ADMIN, ownerOrganizationId: OWNER, email, items: [REPORT] }).then(
        (response): Outcome => ({ ok: true, response, email }),
        (err: unknown): Outcome => {
          const e = ConnectError.from(err);
          return { ok: false, code: e.code, message: e.rawMessage, email };
        },
      ),
    ),
  );
}

/**
 * Runs the invitations at once. On Postgres, a test transaction holds
 * partner_domain_claims in EXCLUSIVE mode (blocking the invitations'
 * `select … for update` on it) until every invitation waits there, then
 * lets them all go. Returns the outcomes and how many were seen waiting
 * together (0 on PGlite).
 */
async function race(emails: readonly string[]): Promise<{ outcomes: Outcome[]; waitedTogether: number }> {
  if (target.kind !== "postgres") return { outcomes: await inviteAll(emails), waitedTogether: 0 };
  const gate = new pg.Client({ connectionString: target.url, ...(target.schema ? { options: `-c search_path=${target.schema}` } : {}) });
  await gate.connect();
  try {
    await gate.query("begin");
    await gate.query("lock table partner_domain_claims in exclusive mode");
    const running = inviteAll(emails);
    let waiting = 0;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const r = await gate.query<{ n: number }>(
        `select count(*)::int as n from pg_locks where relation = 'partner_domain_claims'::regclass and not granted`,
      );
      waiting = r.rows[0]!.n;
      if (waiting >= emails.length) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await gate.query("commit");
    return { outcomes: await running, waitedTogether: waiting };
  } finally {
    await gate.end();
  }
}

describe("R11: concurrent invitations for one private domain", () => {
  const emails = Array.from({ length: N }, (_, i) => `person${String(i).padStart(2, "0")}@race-corp.com`);
  let outcomes: Outcome[];
  let waitedTogether = 0;

  beforeAll(async () => {
    ({ outcomes, waitedTogether } = await race(emails));
  });

  it(`R11: of ${N} concurrent invitations for ${N} addresses of race-corp.com exactly one wins`, () => {
    if (target.kind === "postgres") {
      // The race was real: the invitations were held at the claims table together and released at once.
      expect(waitedTogether).toBe(N);
    }
    const winners = outcomes.filter((o) => o.ok);
    expect(winners).toHaveLength(1);
    const losers = outcomes.filter((o) => !o.ok);
    expect(losers.map((o) => o.code)).toEqual(Array(N - 1).fill(Code.AlreadyExists));
  });

  it("R11: every loser's ALREADY_EXISTS names the winning invitation and its email", () => {
    const winner = outcomes.find((o) => o.ok);
    if (!winner?.ok) throw new Error("no winner");
    const invitation = winner.response.invitation!;
    expect(invitation.email).toBe(winner.email);
    for (const loser of outcomes.filter((o) => !o.ok)) {
      if (loser.ok) continue;
      expect(loser.message, loser.email).toContain(winner.email);
      expect(loser.message, loser.email).toContain(invitation.id);
      expect(loser.message, loser.email).not.toContain(loser.email);
    }
  });

  it("R11: the losers left nothing behind: one pending invitation, one invitation notification", async () => {
    const winner = outcomes.find((o) => o.ok)!;
    const list = await c.partner.listPartners({ ownerOrganizationId: OWNER, query: "race-corp" });
    expect(list.pendingInvitations.map((i) => i.email)).toEqual([winner.email]);
    const mails = (await c.admin.listNotifications({})).notifications.filter((n) => n.recipient.endsWith("@race-corp.com"));
    expect(mails.map((n) => n.recipient)).toEqual([winner.email]);
  });

  it("R11: the domain stays taken afterwards (eu.race-corp.com included)", async () => {
    const [later] = await inviteAll(["late@eu.race-corp.com"]);
    expect(later).toMatchObject({ ok: false, code: Code.AlreadyExists });
  });
});

describe("R12: concurrent acceptances of one invitation", () => {
  it("R12: of 10 concurrent AcceptInvitation calls with the same token exactly one succeeds; the rest are FAILED_PRECONDITION", async () => {
    const inv = await c.partner.invitePartner({ actor: ADMIN, ownerOrganizationId: OWNER, email: "twice@accept-corp.com", items: [REPORT] });
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        c.partner.acceptInvitation({ invitationToken: inv.invitationToken, userId: `cc-twice-${i}`, organizationName: `Accept Corp ${i}` }).then(
          (r) => ({ ok: true as const, organizationId: r.partner!.organizationId, userId: r.userId }),
          (err: unknown) => ({ ok: false as const, code: ConnectError.from(err).code }),
        ),
      ),
    );
    const winners = outcomes.filter((o) => o.ok);
    expect(winners).toHaveLength(1);
    expect(outcomes.filter((o) => !o.ok).map((o) => (o.ok ? Code.Unknown : o.code))).toEqual(Array(9).fill(Code.FailedPrecondition));
    // One user, one organization, one partner.
    const list = await c.partner.listPartners({ ownerOrganizationId: OWNER, query: "accept corp" });
    expect(list.partners.map((p) => p.organizationId)).toEqual([winners[0]!.organizationId]);
    const users = await c.directory.listUsers({ query: "twice@accept-corp.com" });
    expect(users.users.map((u) => u.id)).toEqual([winners[0]!.userId]);
  });
});

describe("R11: concurrent invitations on a public domain", () => {
  it(`R11: ${N} concurrent invitations for different gmail.com addresses all succeed`, async () => {
    const emails = Array.from({ length: N }, (_, i) => `fan${String(i).padStart(2, "0")}@gmail.com`);
    const { outcomes, waitedTogether } = await race(emails);
    if (target.kind === "postgres") expect(waitedTogether).toBe(N);
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    const list = await c.partner.listPartners({ ownerOrganizationId: OWNER, query: "@gmail.com" });
    expect(list.pendingInvitations.map((i) => i.email).sort()).toEqual(emails);
  });

  it(`R11: ${N} concurrent invitations for the same gmail.com address: exactly one wins`, async () => {
    const emails = Array.from({ length: N }, (_, i) => (i % 2 === 0 ? "same.fan@gmail.com" : " Same.Fan@GMAIL.com "));
    const { outcomes } = await race(emails);
    expect(outcomes.filter((o) => o.ok)).toHaveLength(1);
    const losers = outcomes.filter((o) => !o.ok);
    expect(losers.map((o) => (o.ok ? Code.Unknown : o.code))).toEqual(Array(N - 1).fill(Code.AlreadyExists));
    for (const l of losers) if (!l.ok) expect(l.message).toContain("same.fan@gmail.com");
  });
});
