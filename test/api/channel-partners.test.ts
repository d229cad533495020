/**
 * Channel partners over a real server: seed 004, rules R20–R23 (with R40,
 * R41, R42) of DESIGN.md.
 *
 * One server for the file; each scenario builds its own customer (contoso),
 * channel-partner organization (northwind), unclassified organization
 * (fabrikam) and people under its own id prefix. Permission reads ask to be
 * at least as fresh as the write they follow.
 */
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHECK_KEY, PLATFORM_ADMIN, startTestServer, type Clients, type TestServer } from "../support/server.js";
import { fresh, refusal, user, writeTokens } from "../support/rpc.js";

let server: TestServer;
let c: Clients;
const tokens = writeTokens();
const { wrote } = tokens;

beforeAll(async () => {
  server = await startTestServer();
  c = server.clients();
});

afterAll(async () => {
  await server?.stop();
});

async function person(id: string, email = `${id}@example.com`): Promise<void> {
  await wrote(c.directory.createUser({ actor: PLATFORM_ADMIN, userId: id, email, displayName: id }));
}

async function organization(id: string, name: string, admin: string, members: string[], channelPartner = false): Promise<void> {
  await wrote(c.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: id, name, adminUserIds: [admin], channelPartner }));
  for (const m of members) await wrote(c.directory.addOrganizationMember({ actor: admin, organizationId: id, userId: m }));
}

/** Contoso (customer: colin admin, cara member), Northwind (channel partner: nadia admin, nina, nate), Fabrikam (not classified: fay), olga (no organization). */
async function world(p: string) {
  const w = {
    contoso: `${p}-contoso`,
    northwind: `${p}-northwind`,
    fabrikam: `${p}-fabrikam`,
    colin: `${p}-colin`,
    cara: `${p}-cara`,
    nadia: `${p}-nadia`,
    nina: `${p}-nina`,
    nate: `${p}-nate`,
    fay: `${p}-fay`,
    olga: `${p}-olga`,
  };
  for (const u of [w.colin, w.cara, w.nadia, w.nina, w.nate, w.fay, w.olga]) await person(u);
  await organization(w.contoso, `Contoso ${p}`, w.colin, [w.cara]);
  await organization(w.northwind, `Northwind ${p}`, w.nadia, [w.nina, w.nate], true);
  await organization(w.fabrikam, `Fabrikam ${p}`, w.fay, []);
  return { ...w, email: (id: string) => `${id}@example.com` };
}

/** Whether the user views the customer's insights, at the last write's token. */
async function views(userId: string, customer: string, token = tokens.last, permission = "view_insights"): Promise<boolean> {
  const r = await c.permission.checkPermission({ resource: { type: "organization", id: customer }, permission, subject: user(userId), consistency: fresh(token) });
  return r.allowed;
}

async function table(customer: string, query = "") {
  const r = await c.partner.listChannelPartners({ customerOrganizationId: customer, query });
  return r.partners.map((p) => ({ id: p.organizationId, addedUsers: p.addedUsers, channelPartner: p.channelPartner }));
}

async function mailsTo(userId: string) {
  const r = await c.admin.listNotifications({ recipient: `${userId}@example.com` });
  return r.notifications.map((n) => n.kind).reverse();
}

async function customersOf(userId: string, pageSize = 0, token = tokens.last) {
  const ids: string[] = [];
  let pageToken = "";
  do {
    const r = await c.partner.listCustomers({ userId, page: { pageSize, pageToken }, consistency: fresh(token) });
    ids.push(...r.customers.map((x) => x.organizationId));
    pageToken = r.nextPageToken;
  } while (pageToken);
  return ids;
}

describe("R20: adding channel-partner users", () => {
  it("R20: a member (not only an admin) adds an individual by email; the partner views the customer's insights at once", async () => {
    const w = await world("ind");
    expect(await views(w.nina, w.contoso)).toBe(false);
    const r = await wrote(c.partner.addChannelPartnerUsers({ actor: w.cara, customerOrganizationId: w.contoso, email: ` ${w.email(w.nina).toUpperCase()} ` }));
    expect(r.addedUserIds).toEqual([w.nina]);
    expect(r.partner).toMatchObject({ organizationId: w.northwind, organizationName: `Northwind ind`, addedUsers: 1, channelPartner: true });
    expect(await views(w.nina, w.contoso, r.consistencyToken)).toBe(true);
    expect(await views(w.nina, w.contoso, r.consistencyToken, "channel_partner_view")).toBe(true);
    // Only the added user: nate is in the same organization but was not added.
    expect(await views(w.nate, w.contoso, r.consistencyToken)).toBe(false);
    // View only: a partner user never manages the customer or its partners.
    expect(await views(w.nina, w.contoso, r.consistencyToken, "manage_channel_partners")).toBe(false);
    expect(await table(w.contoso)).toEqual([{ id: w.northwind, addedUsers: 1, channelPartner: true }]);
  });

  it("R20/R21: adds chosen users of an existing partner organization; adding more of an organization already in the table only updates its count", async () => {
    const w = await world("org");
    await wrote(c.partner.addChannelPartnerUsers({ actor: w.colin, customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind, userIds: [w.nina] }));
    expect(await table(w.contoso)).toEqual([{ id: w.northwind, addedUsers: 1, channelPartner: true }]);
    const r = await wrote(
      c.partner.addChannelPartnerUsers({ actor: w.colin, customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind, userIds: [w.nina, w.nate, w.nadia] }),
    );
    // nina was already added: only the new ones are reported.
    expect(r.addedUserIds).toEqual([w.nadia, w.nate].sort());
    expect(r.partner?.addedUsers).toBe(3);
    expect(await table(w.contoso)).toEqual([{ id: w.northwind, addedUsers: 3, channelPartner: true }]);
    for (const u of [w.nina, w.nate, w.nadia]) expect(await views(u, w.contoso)).toBe(true);
  });

  it("R21: concurrent adds of users of the same organization make one row of the table, with both counted", async () => {
    const w = await world("race");
    const [a, b] = await Promise.all([
      c.partner.addChannelPartnerUsers({ actor: w.cara, customerOrganizationId: w.contoso, email: w.email(w.nina) }),
      c.partner.addChannelPartnerUsers({ actor: w.colin, customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind, userIds: [w.nate] }),
    ]);
    expect([...a.addedUserIds, ...b.addedUserIds].sort()).toEqual([w.nate, w.nina].sort());
    expect(await table(w.contoso)).toEqual([{ id: w.northwind, addedUsers: 2, channelPartner: true }]);
    for (const [u, t] of [[w.nina, a.consistencyToken], [w.nate, b.consistencyToken]] as const) expect(await views(u, w.contoso, t)).toBe(true);
  });

  it("R20: refuses an actor who is not an active member of the customer organization, naming what to do", async () => {
    const w = await world("act");
    for (const actor of [w.olga, w.nina]) {
      await refusal(
        c.partner.addChannelPartnerUsers({ actor, customerOrganizationId: w.contoso, email: w.email(w.nate) }),
        Code.FailedPrecondition,
        new RegExp(`user ${actor} is not an active member of organization ${w.contoso}.*members can add channel partners`),
      );
    }
    // A member who left is no longer active.
    await wrote(c.directory.removeOrganizationMember({ actor: w.colin, organizationId: w.contoso, userId: w.cara }));
    await refusal(
      c.partner.addChannelPartnerUsers({ actor: w.cara, customerOrganizationId: w.contoso, email: w.email(w.nate) }),
      Code.FailedPrecondition,
      /is not an active member/,
    );
    expect(await table(w.contoso)).toEqual([]);
    expect(await mailsTo(w.nate)).toEqual([]);
  });

  it("R20: refuses a partner user who belongs to the customer organization", async () => {
    const w = await world("ins");
    // cara of contoso is also a member of northwind.
    await wrote(c.directory.addOrganizationMember({ actor: w.nadia, organizationId: w.northwind, userId: w.cara }));
    await refusal(
      c.partner.addChannelPartnerUsers({ actor: w.colin, customerOrganizationId: w.contoso, email: w.email(w.cara) }),
      Code.FailedPrecondition,
      new RegExp(`user ${w.cara}\\) is a member of organization ${w.contoso}; partners are people outside it`),
    );
    await refusal(
      c.partner.addChannelPartnerUsers({ actor: w.colin, customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind, userIds: [w.nina, w.cara] }),
      Code.FailedPrecondition,
      new RegExp(`user ${w.cara} is a member of organization ${w.contoso}`),
    );
    // All or nothing: nina was not added either.
    expect(await table(w.contoso)).toEqual([]);
  });

  it("R20: refuses an email that is not an active user's, or whose user is in no channel-partner organization", async () => {
    const w = await world("eml");
    await refusal(
      c.partner.addChannelPartnerUsers({ actor: w.colin, customerOrganizationId: w.contoso, email: "nobody@example.com" }),
      Code.FailedPrecondition,
      /nobody@example\.com is not the address of an active user.*ask the partner to register/,
    );
    await refusal(
      c.partner.addChannelPartnerUsers({ actor: w.colin, customerOrganizationId: w.contoso, email: w.email(w.fay) }),
      Code.FailedPrecondition,
      new RegExp(`user ${w.fay}\\) does not belong to any organization classified as a channel partner`),
    );
    await refusal(
      c.partner.addChannelPartnerUsers({ actor: w.colin, customerOrganizationId: w.contoso, email: w.email(w.olga) }),
      Code.FailedPrecondition,
      /does not belong to any organization classified as a channel partner/,
    );
    expect(await table(w.contoso)).toEqual([]);
  });

  it("R20: refuses users of an organization not classified as a channel partner, and users who are not members of the chosen one", async () => {
    const w = await world("cls");
    await refusal(
      c.partner.addChannelPartnerUsers({ actor: w.colin, customerOrganizationId: w.contoso, partnerOrganizationId: w.fabrikam, userIds: [w.fay] }),
      Code.FailedPrecondition,
      new RegExp(`organization ${w.fabrikam} \\("Fabrikam cls"\\) is not classified as a channel partner.*SetChannelPartner`),
    );
    await refusal(
      c.partner.addChannelPartnerUsers({ actor: w.colin, customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind, userIds: [w.nina, w.olga] }),
      Code.FailedPrecondition,
      new RegExp(`user ${w.olga} is not an active member of organization ${w.northwind}`),
    );
    await refusal(
      c.partner.addChannelPartnerUsers({ actor: w.colin, customerOrganizationId: w.contoso, email: w.email(w.fay), partnerOrganizationId: w.northwind }),
      Code.FailedPrecondition,
      new RegExp(`user ${w.fay} is not an active member of organization ${w.northwind}`),
    );
    expect(await table(w.contoso)).toEqual([]);
  });

  it("R20: a person in several channel-partner organizations is added under the one named", async () => {
    const w = await world("two");
    await organization(`two-tailspin`, "Tailspin two", w.nadia, [w.nina], true);
    await refusal(
      c.partner.addChannelPartnerUsers({ actor: w.colin, customerOrganizationId: w.contoso, email: w.email(w.nina) }),
      Code.FailedPrecondition,
      /belongs to several channel-partner organizations .*name one in partner_organization_id/,
    );
    const r = await wrote(c.partner.addChannelPartnerUsers({ actor: w.colin, customerOrganizationId: w.contoso, email: w.email(w.nina), partnerOrganizationId: "two-tailspin" }));
    expect(r.partner?.organizationId).toBe("two-tailspin");
  });

  it("R42: bad requests are INVALID_ARGUMENT naming the field; unknown objects NOT_FOUND", async () => {
    const w = await world("bad");
    const base = { actor: w.colin, customerOrganizationId: w.contoso };
    await refusal(c.partner.addChannelPartnerUsers({ ...base }), Code.InvalidArgument, /^email: give email/);
    await refusal(c.partner.addChannelPartnerUsers({ ...base, email: w.email(w.nina), partnerOrganizationId: w.northwind, userIds: [w.nina] }), Code.InvalidArgument, /^user_ids: give either/);
    await refusal(c.partner.addChannelPartnerUsers({ ...base, partnerOrganizationId: w.northwind }), Code.InvalidArgument, /^user_ids: choose at least one user/);
    await refusal(c.partner.addChannelPartnerUsers({ ...base, email: "not-an-email" }), Code.InvalidArgument, /email/);
    await refusal(c.partner.addChannelPartnerUsers({ ...base, partnerOrganizationId: w.northwind, userIds: ["a b"] }), Code.InvalidArgument, /^user_ids\[0\]: /);
    const many = Array.from({ length: 1001 }, (_, i) => `u${i}`);
    await refusal(c.partner.addChannelPartnerUsers({ ...base, partnerOrganizationId: w.northwind, userIds: many }), Code.InvalidArgument, /^user_ids: at most 1000 users per call, got 1001/);
    await refusal(c.partner.addChannelPartnerUsers({ ...base, customerOrganizationId: "" }), Code.InvalidArgument, /^customer_organization_id: is required/);
    await refusal(c.partner.addChannelPartnerUsers({ ...base, partnerOrganizationId: "bad-nope", userIds: [w.nina] }), Code.NotFound, /organization bad-nope does not exist/);
    await refusal(c.partner.addChannelPartnerUsers({ ...base, customerOrganizationId: "bad-nope", email: w.email(w.nina) }), Code.NotFound, /organization bad-nope does not exist/);
    await refusal(c.partner.listChannelPartners({ customerOrganizationId: w.contoso, page: { pageSize: 5000 } }), Code.InvalidArgument, /^page\.page_size: at most 1000/);
    await refusal(c.partner.listCustomers({ userId: w.nina, page: { pageToken: "forged.token" } }), Code.InvalidArgument, /^page\.page_token: /);
    await refusal(c.partner.listCustomers({ userId: "bad-nobody" }), Code.NotFound, /user bad-nobody does not exist/);
  });
});

describe("R21: the Partners table and editing partner access", () => {
  it("R21: lists partner organizations with added-user counts, searchable by name, paged", async () => {
    const w = await world("tbl");
    const orgs = ["Alpine", "Bayside", "Cobalt"].map((name) => ({ id: `tbl-${name.toLowerCase()}`, name, admin: `tbl-${name.toLowerCase()}-admin` }));
    for (const o of orgs) {
      await person(o.admin);
      await organization(o.id, `${o.name} Partners`, o.admin, [], true);
      await wrote(c.partner.addChannelPartnerUsers({ actor: w.cara, customerOrganizationId: w.contoso, email: w.email(o.admin) }));
    }
    await wrote(c.partner.addChannelPartnerUsers({ actor: w.cara, customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind, userIds: [w.nina, w.nate] }));
    expect(await table(w.contoso)).toEqual([
      { id: "tbl-alpine", addedUsers: 1, channelPartner: true },
      { id: "tbl-bayside", addedUsers: 1, channelPartner: true },
      { id: "tbl-cobalt", addedUsers: 1, channelPartner: true },
      { id: w.northwind, addedUsers: 2, channelPartner: true },
    ]);
    expect((await table(w.contoso, "bAySiDe")).map((p) => p.id)).toEqual(["tbl-bayside"]);
    expect((await table(w.contoso, "partners")).map((p) => p.id)).toEqual(["tbl-alpine", "tbl-bayside", "tbl-cobalt"]);
    expect(await table(w.contoso, "%")).toEqual([]);
    const seen: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const r = await c.partner.listChannelPartners({ customerOrganizationId: w.contoso, page: { pageSize: 3, pageToken } });
      seen.push(...r.partners.map((p) => p.organizationId));
      pageToken = r.nextPageToken;
      pages++;
    } while (pageToken);
    expect({ seen, pages }).toEqual({ seen: ["tbl-alpine", "tbl-bayside", "tbl-cobalt", w.northwind], pages: 2 });
    // Another customer's table is its own.
    expect(await table(w.northwind)).toEqual([]);
  });

  it("R21/R23: the sidebar lists the organization's users with checkboxes; saving it adds and removes users, at once, and mails them", async () => {
    const w = await world("edt");
    // Before any user is added: "Select existing partner organization" lists its users, none selected.
    const before = await c.partner.listChannelPartnerUsers({ customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind });
    expect(before.partner).toBeUndefined();
    expect(before.users.map((u) => [u.userId, u.selected])).toEqual([[w.nadia, false], [w.nate, false], [w.nina, false]]);

    await wrote(c.partner.addChannelPartnerUsers({ actor: w.cara, customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind, userIds: [w.nina, w.nate] }));
    const sidebar = await c.partner.listChannelPartnerUsers({ customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind });
    expect(sidebar.partner?.addedUsers).toBe(2);
    expect(sidebar.users.map((u) => [u.userId, u.selected])).toEqual([[w.nadia, false], [w.nate, true], [w.nina, true]]);
    const searched = await c.partner.listChannelPartnerUsers({ customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind, query: "NINA@example" });
    expect(searched.users.map((u) => u.userId)).toEqual([w.nina]);

    // Uncheck nate, check nadia, save.
    const saved = await wrote(c.partner.setChannelPartnerUsers({ actor: w.cara, customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind, userIds: [w.nina, w.nadia] }));
    expect({ added: saved.addedUserIds, removed: saved.removedUserIds, count: saved.partner?.addedUsers }).toEqual({ added: [w.nadia], removed: [w.nate], count: 2 });
    expect(saved.users.map((u) => [u.userId, u.selected])).toEqual([[w.nadia, true], [w.nate, false], [w.nina, true]]);
    expect(await views(w.nate, w.contoso, saved.consistencyToken)).toBe(false);
    expect(await views(w.nadia, w.contoso, saved.consistencyToken)).toBe(true);
    expect(await views(w.nina, w.contoso, saved.consistencyToken)).toBe(true);
    expect(await mailsTo(w.nate)).toEqual(["channel_partner_added", "channel_partner_removed"]);
    expect(await mailsTo(w.nadia)).toEqual(["channel_partner_added"]);
    expect(await mailsTo(w.nina)).toEqual(["channel_partner_added"]);

    // Saving users who are not members of the partner organization is refused, naming the user; nothing changes.
    await refusal(
      c.partner.setChannelPartnerUsers({ actor: w.cara, customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind, userIds: [w.nina, w.fay] }),
      Code.FailedPrecondition,
      new RegExp(`user ${w.fay} is not an active member of organization ${w.northwind}`),
    );
    await refusal(
      c.partner.setChannelPartnerUsers({ actor: w.cara, customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind, userIds: [] }),
      Code.InvalidArgument,
      /^user_ids: at least one user; to remove .* use RemoveChannelPartner/,
    );
    await refusal(
      c.partner.setChannelPartnerUsers({ actor: w.cara, customerOrganizationId: w.contoso, partnerOrganizationId: w.fabrikam, userIds: [w.fay] }),
      Code.NotFound,
      new RegExp(`channel partner organization ${w.fabrikam} of organization ${w.contoso} does not exist; add its users with AddChannelPartnerUsers`),
    );
    expect(await table(w.contoso)).toEqual([{ id: w.northwind, addedUsers: 2, channelPartner: true }]);
  });

  it("R21/R23: removing a partner removes the organization and all its added users in one write; they are mailed, then nothing more about that customer", async () => {
    const w = await world("rem");
    await wrote(c.partner.addChannelPartnerUsers({ actor: w.cara, customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind, userIds: [w.nina, w.nate] }));
    expect(await customersOf(w.nina)).toEqual([w.contoso]);
    const r = await wrote(c.partner.removeChannelPartner({ actor: w.cara, customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind }));
    expect(r.removedUserIds).toEqual([w.nate, w.nina].sort());
    for (const u of [w.nina, w.nate]) {
      expect(await views(u, w.contoso, r.consistencyToken)).toBe(false);
      expect(await mailsTo(u)).toEqual(["channel_partner_added", "channel_partner_removed"]);
    }
    expect(await customersOf(w.nina, 0, r.consistencyToken)).toEqual([]);
    expect(await table(w.contoso)).toEqual([]);
    await refusal(c.partner.removeChannelPartner({ actor: w.cara, customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind }), Code.NotFound, /does not exist/);

    // The customer goes on with northwind: only the user it adds again hears of it.
    await wrote(c.partner.addChannelPartnerUsers({ actor: w.cara, customerOrganizationId: w.contoso, email: w.email(w.nadia) }));
    await wrote(c.partner.setChannelPartnerUsers({ actor: w.cara, customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind, userIds: [w.nadia] }));
    await wrote(c.partner.removeChannelPartner({ actor: w.cara, customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind }));
    for (const u of [w.nina, w.nate]) expect(await mailsTo(u)).toEqual(["channel_partner_added", "channel_partner_removed"]);
    expect(await mailsTo(w.nadia)).toEqual(["channel_partner_added", "channel_partner_removed"]);
  });
});

describe("R22: access follows the classification and the membership, by the schema alone", () => {
  it("R22: the partner organization loses its channel-partner classification: access ends at once, and comes back with it", async () => {
    const w = await world("flag");
    await wrote(c.partner.addChannelPartnerUsers({ actor: w.cara, customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind, userIds: [w.nina] }));
    expect(await views(w.nina, w.contoso)).toBe(true);

    const off = await wrote(c.directory.setChannelPartner({ actor: PLATFORM_ADMIN, organizationId: w.northwind, channelPartner: false }));
    expect(await views(w.nina, w.contoso, off.consistencyToken)).toBe(false);
    expect(await customersOf(w.nina, 0, off.consistencyToken)).toEqual([]);
    // The row stays (no cleanup job); the table shows the organization is not a channel partner now.
    expect(await table(w.contoso)).toEqual([{ id: w.northwind, addedUsers: 1, channelPartner: false }]);
    // The user keeps everything of their own.
    expect(await views(w.nina, w.northwind, off.consistencyToken)).toBe(true);
    // More users cannot be added while it is not classified.
    await refusal(
      c.partner.addChannelPartnerUsers({ actor: w.cara, customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind, userIds: [w.nate] }),
      Code.FailedPrecondition,
      /is not classified as a channel partner/,
    );

    const on = await wrote(c.directory.setChannelPartner({ actor: PLATFORM_ADMIN, organizationId: w.northwind, channelPartner: true }));
    expect(await views(w.nina, w.contoso, on.consistencyToken)).toBe(true);
    expect(await customersOf(w.nina, 0, on.consistencyToken)).toEqual([w.contoso]);
  });

  it("R22: a user who leaves the partner organization loses access at once, and keeps their own", async () => {
    const w = await world("left");
    await wrote(c.partner.addChannelPartnerUsers({ actor: w.cara, customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind, userIds: [w.nina, w.nate] }));
    // nina also has an organization of her own.
    await organization("left-own", "Nina's own", w.nina, []);
    const left = await wrote(c.directory.removeOrganizationMember({ actor: w.nadia, organizationId: w.northwind, userId: w.nina }));
    expect(await views(w.nina, w.contoso, left.consistencyToken)).toBe(false);
    expect(await views(w.nate, w.contoso, left.consistencyToken)).toBe(true);
    expect(await customersOf(w.nina, 0, left.consistencyToken)).toEqual([]);
    expect(await views(w.nina, "left-own", left.consistencyToken)).toBe(true);
    // She no longer shows in the sidebar's list of the organization's users.
    const sidebar = await c.partner.listChannelPartnerUsers({ customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind });
    expect(sidebar.users.map((u) => u.userId)).toEqual([w.nadia, w.nate]);
    // Back in the organization: the customer's grant still holds.
    const back = await wrote(c.directory.addOrganizationMember({ actor: w.nadia, organizationId: w.northwind, userId: w.nina }));
    expect(await views(w.nina, w.contoso, back.consistencyToken)).toBe(true);
  });

  it("R22: a partner user lists every customer whose insights they can view, paged, from the permission index", async () => {
    const w = await world("cust");
    const customers = ["cust-a", "cust-b", "cust-c", "cust-d", "cust-e"];
    for (const id of customers) {
      await person(`${id}-admin`);
      await organization(id, `Customer ${id}`, `${id}-admin`, []);
      await wrote(c.partner.addChannelPartnerUsers({ actor: `${id}-admin`, customerOrganizationId: id, email: w.email(w.nina) }));
    }
    const first = await c.partner.listCustomers({ userId: w.nina, page: { pageSize: 2 }, consistency: fresh(tokens.last) });
    expect(first.customers).toEqual([
      expect.objectContaining({ organizationId: "cust-a", organizationName: "Customer cust-a" }),
      expect.objectContaining({ organizationId: "cust-b", organizationName: "Customer cust-b" }),
    ]);
    expect(first.nextPageToken).not.toBe("");
    expect(first.consistencyToken).not.toBe("");
    expect(await customersOf(w.nina, 2)).toEqual(customers);
    expect(await customersOf(w.nina, 5)).toEqual(customers);
    expect(await customersOf(w.nina)).toEqual(customers);
    // Only customers that added her; not her own organization, not the others' members.
    expect(await customersOf(w.nate)).toEqual([]);
    expect(await customersOf(w.cara)).toEqual([]);
  });
});

describe("R40/R41: who may act", () => {
  it("R40: only members of the customer organization change or remove its channel partners", async () => {
    const w = await world("who");
    await wrote(c.partner.addChannelPartnerUsers({ actor: w.colin, customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind, userIds: [w.nina] }));
    for (const actor of [w.nina, w.olga, w.nadia]) {
      await refusal(
        c.partner.setChannelPartnerUsers({ actor, customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind, userIds: [w.nate] }),
        Code.PermissionDenied,
        new RegExp(`user ${actor} may not change the channel partners of organization ${w.contoso}: that needs manage_channel_partners`),
      );
      await refusal(
        c.partner.removeChannelPartner({ actor, customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind }),
        Code.PermissionDenied,
        /may not remove channel partners/,
      );
    }
    expect(await table(w.contoso)).toEqual([{ id: w.northwind, addedUsers: 1, channelPartner: true }]);
  });

  it("R41: a check key reads the Partners table and a partner's customers but cannot add, change or remove", async () => {
    const w = await world("key");
    const check = server.clients("connect", CHECK_KEY);
    await refusal(
      check.partner.addChannelPartnerUsers({ actor: w.colin, customerOrganizationId: w.contoso, email: w.email(w.nina) }),
      Code.PermissionDenied,
      /needs an admin API key/,
    );
    await refusal(check.partner.setChannelPartnerUsers({ actor: w.colin, customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind, userIds: [w.nina] }), Code.PermissionDenied, /needs an admin API key/);
    await refusal(check.partner.removeChannelPartner({ actor: w.colin, customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind }), Code.PermissionDenied, /needs an admin API key/);
    expect((await check.partner.listChannelPartners({ customerOrganizationId: w.contoso })).partners).toEqual([]);
    expect((await check.partner.listChannelPartnerUsers({ customerOrganizationId: w.contoso, partnerOrganizationId: w.northwind })).users).toHaveLength(3);
    expect((await check.partner.listCustomers({ userId: w.nina })).customers).toEqual([]);
    await refusal(server.clients("connect", null).partner.listCustomers({ userId: w.nina }), Code.Unauthenticated, /./);
  });
});

describe("the permission index follows Postgres", () => {
  it("after every scenario above, reconcile finds no drift: each change wrote exactly the relationships its rows imply", async () => {
    const r = await c.admin.reconcile({ dryRun: true });
    expect({ missing: r.missing, extra: r.extra, examples: [...r.missingExamples, ...r.extraExamples] }).toEqual({ missing: 0, extra: 0, examples: [] });
  });
});

