/**
 * R43 over real SMTP: sharegraph (SMTP_URL set) delivers the notifications
 * it records to a loopback SMTP server (the `smtp-server` package), retries
 * while that server is down, delivers exactly once when it comes back, and
 * gives up after NOTIFY_MAX_ATTEMPTS.
 *
 * Nothing here asserts timing: eventual states are polled with a deadline.
 */
import { createServer } from "node:net";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Notification } from "../../src/gen/sharegraph/v1/admin_service_pb.js";
import { sql } from "kysely";
import { PLATFORM_ADMIN, startTestServer, type Clients, type TestServer } from "../support/server.js";
import { kyselyOf } from "../store/helpers.js";

const FROM = "sharegraph <no-reply@sharegraph.test>";
/** How long the poller may take to reach an eventual state. */
const DEADLINE_MS = 20_000;
/** How long to keep watching for a duplicate after a delivery (many poll periods of 50 ms). */
const GRACE_MS = 1_500;

interface Received {
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  readonly headers: string;
  /** The body, transfer-decoded. */
  readonly text: string;
}

/** A loopback SMTP server that keeps what it receives. */
class Inbox {
  readonly messages: Received[] = [];
  #server: SMTPServer | undefined;

  /** Listens on 127.0.0.1 (port 0: a free one); returns the port. */
  async start(port = 0): Promise<number> {
    const server = new SMTPServer({
      secure: false,
      authOptional: true,
      disabledCommands: ["STARTTLS"],
      logger: false,
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("end", () => {
          this.messages.push({
            mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
            rcptTo: session.envelope.rcptTo.map((a) => a.address),
            ...parse(Buffer.concat(chunks).toString("utf8")),
          });
          callback();
        });
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.on("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    this.#server = server;
    const address = server.server.address();
    if (!address || typeof address === "string") throw new Error("SMTP server has no port");
    return address.port;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  to(recipient: string): Received[] {
    return this.messages.filter((m) => m.rcptTo.includes(recipient));
  }
}

/** Splits a raw message into headers and a decoded body (7bit, quoted-printable or base64). */
function parse(raw: string): { headers: string; text: string } {
  const cut = raw.indexOf("\r\n\r\n");
  const headers = raw.slice(0, cut).replace(/\r\n[ \t]+/g, " ");
  const body = raw.slice(cut + 4);
  const encoding = /^content-transfer-encoding:\s*(\S+)/im.exec(headers)?.[1]?.toLowerCase();
  if (encoding === "quoted-printable") {
    const bytes = body.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    return { headers, text: Buffer.from(bytes, "latin1").toString("utf8") };
  }
  if (encoding === "base64") return { headers, text: Buffer.from(body, "base64").toString("utf8") };
  return { headers, text: body };
}

/** A port nothing listens on (taken from the OS, then released). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", () => resolve()));
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (!address || typeof address === "string") throw new Error("no port");
  return address.port;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `probe` returns a value (not undefined), or fails after the deadline with the last state seen. */
async function eventually<T>(what: string, probe: () => Promise<T | undefined>, describeState: () => Promise<unknown> = async () => undefined): Promise<T> {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last state: ${JSON.stringify(await describeState())}`);
    await sleep(25);
  }
}

/** The invitation's stored row as Postgres holds it (every column as JSON text), and its sealed secret. */
async function storedInvitation(server: TestServer, recipient: string): Promise<{ json: string; secret: string | null }> {
  const r = await sql<{ json: string; secret: string | null }>`
    select to_jsonb(n)::text as json, n.secret from notifications n where recipient = ${recipient} and kind = 'partner_invitation'
  `.execute(kyselyOf(server.app.domain.store));
  if (r.rows.length !== 1) throw new Error(`expected one invitation to ${recipient}, found ${r.rows.length}`);
  return r.rows[0]!;
}

async function notificationTo(c: Clients, recipient: string, kind = "partner_invitation"): Promise<Notification | undefined> {
  return (await c.admin.listNotifications({ recipient })).notifications.find((n) => n.kind === kind);
}

/** An owner organization with an admin and a report, ready to invite partners. */
async function ownerWithReport(c: Clients, p: string): Promise<{ admin: string; org: string; report: { type: string; id: string } }> {
  const admin = `${p}-admin`;
  const org = `${p}-org`;
  await c.directory.createUser({ actor: PLATFORM_ADMIN, userId: admin, email: `admin@${p}-owner.com`, displayName: "Olivia Owner" });
  await c.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: org, name: `${p.toUpperCase()} Analytics`, adminUserIds: [admin] });
  await c.directory.createWorkspace({ actor: admin, organizationId: org, workspaceId: `${p}-ws`, name: "WS" });
  await c.content.createContent({ actor: admin, kind: "report", contentId: `${p}-report`, name: "Campaign results", workspaceId: `${p}-ws` });
  return { admin, org, report: { type: "report", id: `${p}-report` } };
}

const smtpEnv = (port: number, more: Record<string, string> = {}) => ({
  SMTP_URL: `smtp://127.0.0.1:${port}`,
  SMTP_FROM: FROM,
  NOTIFY_POLL_MS: "50",
  NOTIFY_MAX_BACKOFF_MS: "200",
  ...more,
});

describe("R43: invitations are mailed by SMTP when SMTP_URL is set", () => {
  const inbox = new Inbox();
  let server: TestServer;
  let c: Clients;
  let owner: Awaited<ReturnType<typeof ownerWithReport>>;

  beforeAll(async () => {
    const port = await inbox.start();
    server = await startTestServer({ env: smtpEnv(port) });
    c = server.clients();
    owner = await ownerWithReport(c, "sm");
  });

  afterAll(async () => {
    await server?.stop();
    await inbox.stop();
  });

  it('R43: "The partner will receive an email invitation": it arrives for the invitee, with the token, from SMTP_FROM', async () => {
    const r = await c.partner.invitePartner({ actor: owner.admin, ownerOrganizationId: owner.org, email: "Dana@Mail-Partner.com", items: [owner.report] });
    const mail = await eventually("the invitation mail", async () => inbox.to("dana@mail-partner.com")[0]);
    expect(mail.rcptTo).toEqual(["dana@mail-partner.com"]);
    expect(mail.mailFrom).toBe("no-reply@sharegraph.test");
    expect(mail.headers).toMatch(/^to: dana@mail-partner\.com$/im);
    expect(mail.headers).toMatch(/^from: sharegraph <no-reply@sharegraph\.test>$/im);
    expect(mail.headers).toMatch(/^subject: SM Analytics invited you/im);
    expect(mail.text).toContain(r.invitationToken);
    expect(mail.text).toContain("Campaign results");

    // The mailed token is the one that accepts.
    const mailed = /invitation token: ([A-Za-z0-9_-]+)/.exec(mail.text)?.[1];
    expect(mailed).toBe(r.invitationToken);
  });

  it('R43: ListNotifications then shows it "sent", once', async () => {
    const n = await eventually(
      'status "sent"',
      async () => {
        const found = await notificationTo(c, "dana@mail-partner.com");
        return found?.status === "sent" ? found : undefined;
      },
      () => notificationTo(c, "dana@mail-partner.com"),
    );
    expect(n).toMatchObject({ status: "sent", attempts: 1, lastError: "" });
    expect(n.sentAt).not.toBe("");
    await sleep(GRACE_MS);
    expect(inbox.to("dana@mail-partner.com")).toHaveLength(1);
  });

  it("R43: the acceptance is mailed to the inviter", async () => {
    const token = /invitation token: ([A-Za-z0-9_-]+)/.exec(inbox.to("dana@mail-partner.com")[0]!.text)![1]!;
    await c.partner.acceptInvitation({ invitationToken: token, userId: "sm-dana" });
    const mail = await eventually("the acceptance mail", async () => inbox.to("admin@sm-owner.com")[0]);
    expect(mail.headers).toMatch(/^subject: dana@mail-partner\.com accepted/im);
    const n = await eventually("sent", async () => {
      const found = await notificationTo(c, "admin@sm-owner.com", "partner_invitation_accepted");
      return found?.status === "sent" ? found : undefined;
    });
    expect(n.attempts).toBe(1);
  });
});

describe("R43: while the SMTP server is down notifications are retried, then delivered exactly once", () => {
  const inbox = new Inbox();
  let port = 0;
  let server: TestServer;
  let c: Clients;
  let owner: Awaited<ReturnType<typeof ownerWithReport>>;
  let token = "";

  beforeAll(async () => {
    port = await freePort();
    // Nothing listens on `port` yet. Enough attempts that it never gives up here.
    server = await startTestServer({ env: smtpEnv(port, { NOTIFY_MAX_ATTEMPTS: "1000" }) });
    c = server.clients();
    owner = await ownerWithReport(c, "sd");
  });

  afterAll(async () => {
    await server?.stop();
    await inbox.stop();
  });

  it("R43: the invitation is recorded, and each failed attempt is counted with its error", async () => {
    const r = await c.partner.invitePartner({ actor: owner.admin, ownerOrganizationId: owner.org, email: "eli@down-partner.com", items: [owner.report] });
    token = r.invitationToken;
    const n = await eventually(
      "a failed attempt",
      async () => {
        const found = await notificationTo(c, "eli@down-partner.com");
        return found && found.attempts >= 2 ? found : undefined;
      },
      () => notificationTo(c, "eli@down-partner.com"),
    );
    expect(n.status).toBe("pending");
    expect(n.lastError).not.toBe("");
    expect(n.sentAt).toBe("");
    expect(inbox.messages).toEqual([]);
  });

  it("issue 7.8: while it waits to be sent, the token is neither listed nor stored in the clear, only sealed", async () => {
    expect((await notificationTo(c, "eli@down-partner.com"))!.body).not.toContain(token);
    const stored = await storedInvitation(server, "eli@down-partner.com");
    expect(stored.json).not.toContain(token);
    expect(stored.secret).toMatch(/^v1\.[A-Za-z0-9_-]+$/);
  });

  it("R43: once the SMTP server is back, the invitation is delivered — exactly once", async () => {
    await inbox.start(port);
    const mail = await eventually("the invitation mail", async () => inbox.to("eli@down-partner.com")[0]);
    expect(mail.text).toContain(token);
    expect(mail.text).not.toContain("sent by mail only");
    const n = await eventually(
      'status "sent"',
      async () => {
        const found = await notificationTo(c, "eli@down-partner.com");
        return found?.status === "sent" ? found : undefined;
      },
      () => notificationTo(c, "eli@down-partner.com"),
    );
    expect(n.attempts).toBeGreaterThanOrEqual(3);
    expect(n.lastError).toBe("");
    expect(n.sentAt).not.toBe("");
    await sleep(GRACE_MS);
    expect(inbox.to("eli@down-partner.com")).toHaveLength(1);
    expect(inbox.messages).toHaveLength(1);
  });

  it("issue 7.8: once delivered, the sealed token is erased", async () => {
    const stored = await storedInvitation(server, "eli@down-partner.com");
    expect(stored.secret).toBe(null);
    expect(stored.json).not.toContain(token);
  });

  it("issue 7.8: the mailed token accepts the invitation", async () => {
    const mailed = /invitation token: ([A-Za-z0-9_-]+)/.exec(inbox.to("eli@down-partner.com")[0]!.text)![1]!;
    const r = await c.partner.acceptInvitation({ invitationToken: mailed, userId: "sd-eli" });
    expect(r.partner?.sharedReports).toBe(1);
  });
});

describe("R43: after NOTIFY_MAX_ATTEMPTS failures a notification is marked failed and no longer retried", () => {
  let server: TestServer;
  let c: Clients;

  beforeAll(async () => {
    server = await startTestServer({ env: smtpEnv(await freePort(), { NOTIFY_MAX_ATTEMPTS: "2" }) });
    c = server.clients();
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('R43: status "failed" with attempts = NOTIFY_MAX_ATTEMPTS and the last error', async () => {
    const owner = await ownerWithReport(c, "sf");
    await c.partner.invitePartner({ actor: owner.admin, ownerOrganizationId: owner.org, email: "fay@never-partner.com", items: [owner.report] });
    const n = await eventually(
      'status "failed"',
      async () => {
        const found = await notificationTo(c, "fay@never-partner.com");
        return found?.status === "failed" ? found : undefined;
      },
      () => notificationTo(c, "fay@never-partner.com"),
    );
    expect(n.attempts).toBe(2);
    expect(n.lastError).not.toBe("");
    await sleep(GRACE_MS);
    expect((await notificationTo(c, "fay@never-partner.com"))?.attempts).toBe(2);
    // issue 7.8: given up on, its sealed token is erased.
    expect((await storedInvitation(server, "fay@never-partner.com")).secret).toBe(null);
    expect((await c.admin.listNotifications({ status: "failed" })).notifications.map((x) => x.recipient)).toEqual(["fay@never-partner.com"]);
  });
});
