/**
 * Partner share access over a real server: seed 000, rules R10–R13, R40,
 * R42 and R43 of DESIGN.md.
 *
 * One server for the file; each scenario has its own inviting (owner)
 * organization and id prefix, so that R11's "one person per private domain
 * per inviting organization" never couples two scenarios. Reads of the
 * permission index ask to be at least as fresh as the write they follow.
 */
import { Code } from "@connectrpc/connect";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Role } from "../../src/gen/sharegraph/v1/common_pb.js";
import { ShareSource } from "../../src/gen/sharegraph/v1/content_service_pb.js";
import type { Notification } from "../../src/gen/sharegraph/v1/admin_service_pb.js";
import type { InvitePartnerResponse, PartnerInvitation } from "../../src/gen/sharegraph/v1/partner_service_pb.js";
import { kyselyOf } from "../store/helpers.js";
import { PLATFORM_ADMIN, startTestServer, type Clients, type TestServer } from "../support/server.js";
import { codeOf, user, writeTokens } from "../support/rpc.js";

type Ref = { type: string; id: string };

const report = (id: string): Ref => ({ type: "report", id });
const board = (id: string): Ref => ({ type: "board", id });
const folder = (id: string): Ref => ({ type: "folder", id });

/** Everything a viewer of a report or board could be asked for. */
const CONTENT_PERMISSIONS = ["view", "interact", "edit", "explore", "share", "manage", "delete"] as const;
/** "Partners can view live data … change metrics, filters, and date ranges … can't save any changes." */
const PARTNER_RIGHTS = { view: true, interact: true, edit: false, explore: false, share: false, manage: false, delete: false };
const NO_RIGHTS = { view: false, interact: false, edit: false, explore: false, share: false, manage: false, delete: false };

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

// ---- helpers -----------------------------------------------------------------------

const at = (token: string) => ({ requirement: { case: "atLeastAsFresh" as const, value: token } });

/** What a user may do on a report, board or folder, in one bulk check at `token`. */
async function rights(userId: string, resource: Ref, token = tokens.last, permissions: readonly string[] = CONTENT_PERMISSIONS): Promise<Record<string, boolean>> {
  const r = await c.permission.checkBulkPermissions({
    items: permissions.map((permission) => ({ resource, permission, subject: user(userId) })),
    consistency: at(token),
  });
  for (const result of r.results) expect(result.error).toBe("");
  return Object.fromEntries(permissions.map((p, i) => [p, r.results[i]!.allowed]));
}

async function lookup(userId: string, resourceType: string, token = tokens.last, permission = "view"): Promise<string[]> {
  const ids: string[] = [];
  for await (const r of c.permission.lookupResources({ resourceType, permission, subject: user(userId), consistency: at(token) })) {
    ids.push(r.resourceId);
  }
  return ids.sort();
}

async function person(id: string, email: string, displayName = id): Promise<void> {
  await wrote(c.directory.createUser({ actor: PLATFORM_ADMIN, userId: id, email, displayName }));
}

async function organization(id: string, name: string, adminId: string, members: string[] = []): Promise<void> {
  await wrote(c.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: id, name, adminUserIds: [adminId] }));
  for (const m of members) await wrote(c.directory.addOrganizationMember({ actor: adminId, organizationId: id, userId: m }));
}

/** An owner organization with an admin, a workspace and the given reports and boards (created by the admin). */
async function ownerWithContent(
  p: string,
  name: string,
  admin: { id: string; email: string },
  content: Array<{ ref: Ref; name: string; folderId?: string }>,
  folders: Array<{ id: string; name: string }> = [],
): Promise<{ orgId: string; ws: string }> {
  const orgId = `${p}-org`;
  const ws = `${p}-ws`;
  await person(admin.id, admin.email);
  await organization(orgId, name, admin.id);
  await wrote(c.directory.createWorkspace({ actor: admin.id, organizationId: orgId, workspaceId: ws, name: `${name} workspace` }));
  for (const f of folders) await wrote(c.content.createFolder({ actor: admin.id, workspaceId: ws, folderId: f.id, name: f.name }));
  for (const item of content) {
    await wrote(
      c.content.createContent({ actor: admin.id, kind: item.ref.type, contentId: item.ref.id, name: item.name, workspaceId: ws, folderId: item.folderId ?? "" }),
    );
  }
  return { orgId, ws };
}

function invite(actor: string, ownerOrganizationId: string, email: string, items: Ref[]): Promise<InvitePartnerResponse> {
  return wrote(c.partner.invitePartner({ actor, ownerOrganizationId, email, items }));
}

function shareMore(actor: string, ownerOrganizationId: string, partnerOrganizationId: string, items: Ref[]): Promise<InvitePartnerResponse> {
  return wrote(c.partner.invitePartner({ actor, ownerOrganizationId, partnerOrganizationId, items }));
}

function accept(invitationToken: string, more: { userId?: string; displayName?: string; organizationName?: string; organizationId?: string } = {}) {
  return wrote(c.partner.acceptInvitation({ invitationToken, ...more }));
}

async function listPartners(ownerOrganizationId: string, query = "") {
  const r = await c.partner.listPartners({ ownerOrganizationId, query });
  return {
    partners: r.partners.map((p) => ({ id: p.organizationId, name: p.organizationName, reports: p.sharedReports, boards: p.sharedBoards })),
    pending: r.pendingInvitations,
  };
}

/** Counts of one partner as the "Partner share access" tab shows them. */
async function counts(ownerId: string, partnerId: string): Promise<{ reports: number; boards: number } | undefined> {
  const p = (await listPartners(ownerId)).partners.find((x) => x.id === partnerId);
  return p && { reports: p.reports, boards: p.boards };
}

const pendingView = (i: PartnerInvitation) => ({
  email: i.email,
  status: i.status,
  items: i.items.map((r) => `${r.type}:${r.id}`).sort(),
});

async function notificationsTo(recipient: string): Promise<Notification[]> {
  return (await c.admin.listNotifications({ recipient })).notifications;
}

async function members(organizationId: string): Promise<Array<{ id: string; email: string; admin: boolean }>> {
  const r = await c.directory.listOrganizationMembers({ organizationId });
  return r.members.map((m) => ({ id: m.user?.id ?? "", email: m.user?.email ?? "", admin: m.admin })).sort((a, b) => a.id.localeCompare(b.id));
}

// ---- seed 000: invite, accept, view ---------------------------------------------------

describe("Seed 000: share with a partner, and what partners can do", () => {
  const p = "pa";
  const olivia = { id: `${p}-olivia`, email: "olivia@acme-analytics.com" };
  const mark = `${p}-mark`;
  const campaigns = `${p}-campaigns`;
  const q3 = report(`${p}-campaign-q3`);
  const q4 = report(`${p}-campaign-q4`);
  const clientB = report(`${p}-client-b-results`);
  const campaignBoard = board(`${p}-campaign-board`);
  const internalBoard = board(`${p}-internal-board`);
  const everything = [q3, q4, clientB, campaignBoard, internalBoard];
  let owner = "";

  let johnInvite: InvitePartnerResponse;
  let saraInvite: InvitePartnerResponse;
  let leeInvite: InvitePartnerResponse;
  let clientCo = "";
  let acceptToken = "";

  beforeAll(async () => {
    ({ orgId: owner } = await ownerWithContent(
      p,
      "Acme Analytics",
      olivia,
      [
        { ref: q3, name: "Campaign Q3", folderId: campaigns },
        { ref: q4, name: "Campaign Q4", folderId: campaigns },
        { ref: clientB, name: "Client B results", folderId: campaigns },
        { ref: campaignBoard, name: "Campaign board", folderId: campaigns },
        { ref: internalBoard, name: "Internal board" },
      ],
      [{ id: campaigns, name: "Campaigns" }],
    ));
    await person(mark, "mark@acme-analytics.com");
    await wrote(c.directory.addOrganizationMember({ actor: olivia.id, organizationId: owner, userId: mark }));
  });

  it('R10: "From a report": Olivia invites john@clientco.com with several reports; the invitation is pending', async () => {
    johnInvite = await invite(olivia.id, owner, "john@clientco.com", [q3, q4]);
    expect(johnInvite.invitationToken).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(johnInvite.partner).toBeUndefined();
    const inv = johnInvite.invitation!;
    expect(pendingView(inv)).toEqual({ email: "john@clientco.com", status: "pending", items: [`report:${q3.id}`, `report:${q4.id}`] });
    expect(inv.ownerOrganizationId).toBe(owner);
    expect(inv.invitedBy).toBe(olivia.id);
    expect(inv.partnerOrganizationId).toBe("");
    expect(Date.parse(inv.expiresAt)).toBeGreaterThan(Date.parse(inv.createdAt));
  });

  it('R10: "From a board": the same call invites sara@brandco.com with a board', async () => {
    saraInvite = await invite(olivia.id, owner, "sara@brandco.com", [campaignBoard]);
    expect(pendingView(saraInvite.invitation!)).toEqual({ email: "sara@brandco.com", status: "pending", items: [`board:${campaignBoard.id}`] });
  });

  it('R10: "From Workspace Settings" → Add Partner: reports and boards together in one invitation', async () => {
    leeInvite = await invite(olivia.id, owner, "lee@agencyco.com", [q3, campaignBoard]);
    expect(pendingView(leeInvite.invitation!).items).toEqual([`board:${campaignBoard.id}`, `report:${q3.id}`]);
  });

  it("R10: pending invitations are listed apart from active partners (there are none yet)", async () => {
    const list = await listPartners(owner);
    expect(list.partners).toEqual([]);
    expect(list.pending.map(pendingView)).toEqual([
      { email: "john@clientco.com", status: "pending", items: [`report:${q3.id}`, `report:${q4.id}`] },
      { email: "sara@brandco.com", status: "pending", items: [`board:${campaignBoard.id}`] },
      { email: "lee@agencyco.com", status: "pending", items: [`board:${campaignBoard.id}`, `report:${q3.id}`] },
    ]);
    expect(list.pending.map((i) => i.id)).toEqual([johnInvite.invitation!.id, saraInvite.invitation!.id, leeInvite.invitation!.id]);
    // The search box matches pending emails too.
    expect((await listPartners(owner, "BRANDCO")).pending.map((i) => i.email)).toEqual(["sara@brandco.com"]);
  });

  it('R12: "Once they accept, they\'ll create their own organization": John accepts and is the admin of a new organization', async () => {
    const r = await accept(johnInvite.invitationToken, { userId: `${p}-john`, displayName: "John Doe", organizationName: "ClientCo" });
    acceptToken = r.consistencyToken;
    expect(r.organizationCreated).toBe(true);
    expect(r.userId).toBe(`${p}-john`);
    clientCo = r.partner!.organizationId;
    expect(r.partner).toMatchObject({ organizationName: "ClientCo", sharedReports: 2, sharedBoards: 0 });
    expect(await members(clientCo)).toEqual([{ id: `${p}-john`, email: "john@clientco.com", admin: true }]);
    const org = await c.directory.getOrganization({ organizationId: clientCo });
    expect(org.organization?.name).toBe("ClientCo");
  });

  it('R12: "…and immediately get access": with the acceptance\'s token John views and interacts with both reports, and cannot save', async () => {
    for (const item of [q3, q4]) expect(await rights(`${p}-john`, item, acceptToken), item.id).toEqual(PARTNER_RIGHTS);
  });

  it('R12: "Access any reports or boards you haven\'t explicitly shared": nothing else, not even the folder holding the shared reports', async () => {
    for (const item of [clientB, campaignBoard, internalBoard]) expect(await rights(`${p}-john`, item, acceptToken), item.id).toEqual(NO_RIGHTS);
    expect(await rights(`${p}-john`, folder(campaigns), acceptToken, ["view", "see_name", "edit", "manage"])).toEqual({
      view: false,
      see_name: false,
      edit: false,
      manage: false,
    });
  });

  it("R12: LookupResources lists exactly the shared reports for John, and no board", async () => {
    expect(await lookup(`${p}-john`, "report", acceptToken)).toEqual([q3.id, q4.id].sort());
    expect(await lookup(`${p}-john`, "board", acceptToken)).toEqual([]);
    expect(await lookup(`${p}-john`, "folder", acceptToken)).toEqual([]);
    expect(await lookup(`${p}-john`, "report", acceptToken, "edit")).toEqual([]);
  });

  it("R10: once accepted, John's invitation leaves the pending list and ClientCo is an active partner with its counts", async () => {
    const list = await listPartners(owner);
    expect(list.partners).toEqual([{ id: clientCo, name: "ClientCo", reports: 2, boards: 0 }]);
    expect(list.pending.map((i) => i.email)).toEqual(["sara@brandco.com", "lee@agencyco.com"]);
    expect((await listPartners(owner, "client")).partners.map((x) => x.id)).toEqual([clientCo]);
  });

  it("R12: without an organization name, the new organization is named after the invitee's email domain", async () => {
    const r = await accept(saraInvite.invitationToken, { userId: `${p}-sara` });
    expect(r.organizationCreated).toBe(true);
    expect(r.partner).toMatchObject({ organizationName: "brandco.com", sharedReports: 0, sharedBoards: 1 });
    expect(await rights(`${p}-sara`, campaignBoard, r.consistencyToken)).toEqual(PARTNER_RIGHTS);
    expect(await lookup(`${p}-sara`, "report", r.consistencyToken)).toEqual([]);
    // Each partner has its own organization: Sara is not in ClientCo and does not see John's reports.
    expect(r.partner!.organizationId).not.toBe(clientCo);
    expect(await rights(`${p}-sara`, q3, r.consistencyToken, ["view"])).toEqual({ view: false });
  });

  it('R12: "Invite their own team members": ClientCo\'s admin adds amy@clientco.com, who then sees the shared reports too', async () => {
    const added = await wrote(
      c.directory.addOrganizationMember({ actor: `${p}-john`, organizationId: clientCo, email: "Amy@ClientCo.com", displayName: "Amy", userId: `${p}-amy` }),
    );
    expect(added.member?.user).toMatchObject({ id: `${p}-amy`, email: "amy@clientco.com" });
    expect(added.member?.admin).toBe(false);
    for (const item of [q3, q4]) expect(await rights(`${p}-amy`, item, added.consistencyToken), item.id).toEqual(PARTNER_RIGHTS);
    for (const item of [clientB, campaignBoard, internalBoard]) expect(await rights(`${p}-amy`, item, added.consistencyToken), item.id).toEqual(NO_RIGHTS);
    expect(await lookup(`${p}-amy`, "report", added.consistencyToken)).toEqual([q3.id, q4.id].sort());
  });

  it("R40: a partner's team member is added by the partner's admins only, not by the inviting organization's admin", async () => {
    const err = await codeOf(c.directory.addOrganizationMember({ actor: olivia.id, organizationId: clientCo, email: "spy@clientco.com" }));
    expect(err.code).toBe(Code.PermissionDenied);
  });

  it('Seed 000: "Affect your original reports or boards in any way": partners cannot share, move or delete them', async () => {
    expect((await codeOf(c.content.share({ actor: `${p}-john`, resource: q3, subject: user(`${p}-amy`), role: Role.VIEWER }))).code).toBe(Code.PermissionDenied);
    expect((await codeOf(c.content.delete({ actor: `${p}-john`, item: q3 }))).code).toBe(Code.PermissionDenied);
    expect((await codeOf(c.content.move({ actor: `${p}-john`, item: q3, destinationFolderId: "" }))).code).toBe(Code.PermissionDenied);
    // Nor manage what is shared with them.
    const err = await codeOf(c.partner.setPartnerShares({ actor: `${p}-john`, ownerOrganizationId: owner, partnerOrganizationId: clientCo, items: everything }));
    expect(err.code).toBe(Code.PermissionDenied);
  });

  it('R10: "Choose an existing partner": sharing more with ClientCo is effective at once for all its members', async () => {
    const r = await shareMore(olivia.id, owner, clientCo, [campaignBoard, q3]);
    expect(r.invitation).toBeUndefined();
    expect(r.invitationToken).toBe("");
    expect(r.partner).toMatchObject({ organizationId: clientCo, sharedReports: 2, sharedBoards: 1 });
    for (const u of [`${p}-john`, `${p}-amy`]) {
      expect(await rights(u, campaignBoard, r.consistencyToken), u).toEqual(PARTNER_RIGHTS);
      expect(await lookup(u, "board", r.consistencyToken), u).toEqual([campaignBoard.id]);
    }
    expect(await counts(owner, clientCo)).toEqual({ reports: 2, boards: 1 });
  });

  it("ListShares: a report shared with a partner lists the partner organization as a viewer, with source PARTNER", async () => {
    const shares = (await c.content.listShares({ resource: q3 })).shares;
    const partnerShares = shares
      .filter((s) => s.source === ShareSource.PARTNER)
      .map((s) => ({ subject: `${s.subject?.type}:${s.subject?.id}`, role: s.role, name: s.sourceName }))
      .sort((a, b) => a.subject.localeCompare(b.subject));
    expect(partnerShares).toEqual([{ subject: `organization:${clientCo}`, role: Role.VIEWER, name: "ClientCo" }]);
    expect((await c.content.listShares({ resource: clientB })).shares.filter((s) => s.source === ShareSource.PARTNER)).toEqual([]);
  });

  it("R4: ListPrivateContent does not list content shared with a partner (the rest stays private to its creator)", async () => {
    const mine = (await c.content.listPrivateContent({ userId: olivia.id })).items.map((i) => i.ref?.id).sort();
    expect(mine).toEqual([clientB.id, internalBoard.id].sort());
  });

  it("R40: a member of the inviting organization who is not its admin cannot invite partners", async () => {
    const err = await codeOf(invite(mark, owner, "someone@other-co.com", [q3]));
    expect(err.code).toBe(Code.PermissionDenied);
    expect((await codeOf(shareMore(mark, owner, clientCo, [q4]))).code).toBe(Code.PermissionDenied);
    expect((await codeOf(c.partner.revokeInvitation({ actor: mark, invitationId: leeInvite.invitation!.id }))).code).toBe(Code.PermissionDenied);
    expect((await codeOf(c.partner.removePartner({ actor: mark, ownerOrganizationId: owner, partnerOrganizationId: clientCo }))).code).toBe(
      Code.PermissionDenied,
    );
    expect(
      (await codeOf(c.partner.setPartnerShares({ actor: mark, ownerOrganizationId: owner, partnerOrganizationId: clientCo, items: [] }))).code,
    ).toBe(Code.PermissionDenied);
    // Nothing changed.
    expect(await counts(owner, clientCo)).toEqual({ reports: 2, boards: 1 });
  });
});

// ---- R12: partners who already have an account ---------------------------------------

describe('Seed 000: "Partners who already have an existing account get added to their partner organization automatically"', () => {
  const p = "pb";
  const olga = { id: `${p}-olga`, email: "olga@pb-owner.com" };
  const forecast = report(`${p}-forecast`);
  const kpis = board(`${p}-kpis`);
  let owner = "";
  let patToken = "";

  beforeAll(async () => {
    ({ orgId: owner } = await ownerWithContent(p, "Owner B", olga, [
      { ref: forecast, name: "Forecast" },
      { ref: kpis, name: "KPIs" },
    ]));
    await person(`${p}-pat`, "pat@partnerco.com");
    await person(`${p}-paul`, "paul@partnerco.com");
    await organization(`${p}-partnerco`, "PartnerCo", `${p}-pat`, [`${p}-paul`]);
    await person(`${p}-sam`, "sam@multico.com");
    await person(`${p}-other-admin`, "admin@pb-elsewhere.com");
    await organization(`${p}-m1`, "Multi One", `${p}-sam`);
    await organization(`${p}-m2`, "Multi Two", `${p}-other-admin`, [`${p}-sam`]);
    await organization(`${p}-m3`, "Not Sam's", `${p}-other-admin`);
  });

  it("R10: a pending invitation grants nothing, even to a person who already has an account", async () => {
    const r = await invite(olga.id, owner, "Pat@PartnerCo.com", [forecast]);
    patToken = r.invitationToken;
    expect(await rights(`${p}-pat`, forecast, r.consistencyToken)).toEqual(NO_RIGHTS);
    expect(await rights(`${p}-paul`, forecast, r.consistencyToken)).toEqual(NO_RIGHTS);
  });

  it("R12: Pat, a member of exactly one organization, accepts: PartnerCo becomes the partner (no new organization)", async () => {
    const pending = (await listPartners(owner)).pending;
    expect(pending.map((i) => i.email)).toEqual(["pat@partnerco.com"]);
    // The token is only returned by InvitePartner (and mailed), never listed.
    const r = await accept(patToken, { displayName: "ignored for existing users" });
    expect(r.organizationCreated).toBe(false);
    expect(r.userId).toBe(`${p}-pat`);
    expect(r.partner).toMatchObject({ organizationId: `${p}-partnerco`, organizationName: "PartnerCo", sharedReports: 1, sharedBoards: 0 });
    // Every member of PartnerCo, not only Pat, can view the shared report at once.
    for (const u of [`${p}-pat`, `${p}-paul`]) {
      expect(await rights(u, forecast, r.consistencyToken), u).toEqual(PARTNER_RIGHTS);
      expect(await rights(u, kpis, r.consistencyToken), u).toEqual(NO_RIGHTS);
    }
    expect(await members(`${p}-partnerco`)).toEqual([
      { id: `${p}-pat`, email: "pat@partnerco.com", admin: true },
      { id: `${p}-paul`, email: "paul@partnerco.com", admin: false },
    ]);
  });

  it("R12: a user in several organizations must say which one becomes the partner (FAILED_PRECONDITION naming them)", async () => {
    const inv = await invite(olga.id, owner, "sam@multico.com", [kpis]);
    const err = await codeOf(accept(inv.invitationToken));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toContain(`${p}-m1`);
    expect(err.message).toContain(`${p}-m2`);
    expect(err.message).toContain("organization_id");

    const notHis = await codeOf(accept(inv.invitationToken, { organizationId: `${p}-m3` }));
    expect(notHis.code).toBe(Code.FailedPrecondition);
    expect(notHis.message).toContain(`${p}-m3`);

    // The refusals changed nothing: the invitation is still pending and can be accepted for Multi Two.
    expect((await listPartners(owner)).pending.map((i) => i.email)).toEqual(["sam@multico.com"]);
    const r = await accept(inv.invitationToken, { organizationId: `${p}-m2` });
    expect(r.organizationCreated).toBe(false);
    expect(r.partner).toMatchObject({ organizationId: `${p}-m2`, organizationName: "Multi Two", sharedReports: 0, sharedBoards: 1 });
    // Multi Two's other member (its admin) views the board; Multi One's members do not.
    expect(await rights(`${p}-other-admin`, kpis, r.consistencyToken)).toEqual(PARTNER_RIGHTS);
    expect((await listPartners(owner)).partners.map((x) => x.id).sort()).toEqual([`${p}-m2`, `${p}-partnerco`]);
  });

  it("R12: accepting for an existing account with another user_id is refused", async () => {
    await person(`${p}-zoe`, "zoe@zoe-co.com");
    const inv = await invite(olga.id, owner, "zoe@zoe-co.com", [forecast]);
    const err = await codeOf(accept(inv.invitationToken, { userId: `${p}-not-zoe` }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toContain(`${p}-zoe`);
    // Zoe has no organization: accepting creates one, with her as admin.
    const r = await accept(inv.invitationToken, { userId: `${p}-zoe` });
    expect(r.organizationCreated).toBe(true);
    expect(await members(r.partner!.organizationId)).toEqual([{ id: `${p}-zoe`, email: "zoe@zoe-co.com", admin: true }]);
  });
});

// ---- R11: one person per private email domain -------------------------------------------

describe('R11: "You can only invite one person per private email domain"', () => {
  const p = "pc";
  const admin = { id: `${p}-admin`, email: "admin@pc-owner.com" };
  const item = report(`${p}-results`);
  let owner = "";
  let john: InvitePartnerResponse;
  let companyOrg = "";

  beforeAll(async () => {
    ({ orgId: owner } = await ownerWithContent(p, "Owner C", admin, [{ ref: item, name: "Campaign results" }]));
  });

  it("R11: john@company.com is invited (case and whitespace normalized: '  JOHN@Company.COM ' is john@company.com)", async () => {
    john = await invite(admin.id, owner, "  JOHN@Company.COM ", [item]);
    expect(john.invitation?.email).toBe("john@company.com");
  });

  it("R11: then jane@company.com is refused with ALREADY_EXISTS naming John's pending invitation", async () => {
    const err = await codeOf(invite(admin.id, owner, "jane@company.com", [item]));
    expect(err.code).toBe(Code.AlreadyExists);
    expect(err.message).toContain("john@company.com");
    expect(err.message).toContain(john.invitation!.id);
    expect(err.message).toContain("company.com");
  });

  it("R11: john@company.com again, in any case, is refused too", async () => {
    expect((await codeOf(invite(admin.id, owner, "John@COMPANY.com", [item]))).code).toBe(Code.AlreadyExists);
  });

  it("R11: eu.company.com is the same organization as company.com (public-suffix list)", async () => {
    const err = await codeOf(invite(admin.id, owner, "kurt@eu.company.com", [item]));
    expect(err.code).toBe(Code.AlreadyExists);
    expect(err.message).toContain("john@company.com");
  });

  it("R11: another inviting organization may invite jane@company.com: the rule is per inviting organization", async () => {
    const other = await ownerWithContent(`${p}x`, "Owner C'", { id: `${p}x-admin`, email: "admin@pcx-owner.com" }, [
      { ref: report(`${p}x-r`), name: "Other results" },
    ]);
    const r = await invite(`${p}x-admin`, other.orgId, "jane@company.com", [report(`${p}x-r`)]);
    expect(r.invitation?.status).toBe("pending");
  });

  it("R11: after John accepted, jane@company.com is still refused, naming the existing partner", async () => {
    const accepted = await accept(john.invitationToken, { userId: `${p}-john`, organizationName: "Company Inc" });
    companyOrg = accepted.partner!.organizationId;
    const err = await codeOf(invite(admin.id, owner, "jane@company.com", [item]));
    expect(err.code).toBe(Code.AlreadyExists);
    expect(err.message).toContain(companyOrg);
    expect(err.message).toContain("Company Inc");
    expect(err.message).toContain("john@company.com");
    expect(err.message).toContain("partner_organization_id");
    expect((await codeOf(invite(admin.id, owner, "kurt@eu.company.com", [item]))).code).toBe(Code.AlreadyExists);
  });

  it('R11: "You can invite multiple addresses from public domains like @gmail.com" (and outlook.com, hotmail.com, yahoo.com)', async () => {
    const emails = ["a@gmail.com", "b@gmail.com", "c@outlook.com", "d@outlook.com", "e@hotmail.com", "f@yahoo.com", "g@yahoo.com"];
    for (const email of emails) expect((await invite(admin.id, owner, email, [item])).invitation?.email, email).toBe(email);
    const pending = (await listPartners(owner)).pending.map((i) => i.email);
    expect(pending).toEqual(expect.arrayContaining(emails));
  });

  it("R11: on a public domain the address itself is claimed: a@gmail.com cannot be invited twice", async () => {
    const err = await codeOf(invite(admin.id, owner, " A@Gmail.com", [item]));
    expect(err.code).toBe(Code.AlreadyExists);
    expect(err.message).toContain("a@gmail.com");
  });

  it("R11: revoking an invitation frees its domain: jane@widgets.com can be invited after bob@widgets.com's is revoked", async () => {
    const bob = await invite(admin.id, owner, "bob@widgets.com", [item]);
    expect((await codeOf(invite(admin.id, owner, "jane@widgets.com", [item]))).code).toBe(Code.AlreadyExists);
    await wrote(c.partner.revokeInvitation({ actor: admin.id, invitationId: bob.invitation!.id }));
    expect((await listPartners(owner)).pending.map((i) => i.email)).not.toContain("bob@widgets.com");
    const jane = await invite(admin.id, owner, "jane@widgets.com", [item]);
    expect(jane.invitation?.email).toBe("jane@widgets.com");
    // Revoking again is refused: it is no longer pending.
    const again = await codeOf(c.partner.revokeInvitation({ actor: admin.id, invitationId: bob.invitation!.id }));
    expect(again.code).toBe(Code.FailedPrecondition);
    expect(again.message).toContain("revoked");
    expect((await codeOf(c.partner.revokeInvitation({ actor: admin.id, invitationId: "00000000-0000-0000-0000-000000000000" }))).code).toBe(
      Code.NotFound,
    );
  });

  it("R11/R13: removing a partner frees its domain: jane@company.com can then be invited", async () => {
    await wrote(c.partner.removePartner({ actor: admin.id, ownerOrganizationId: owner, partnerOrganizationId: companyOrg }));
    const jane = await invite(admin.id, owner, "jane@company.com", [item]);
    expect(jane.invitation?.status).toBe("pending");
  });

  it("R11: an internationalized domain is compared in its ASCII form: info@Bücher.de is info@xn--bcher-kva.de", async () => {
    const r = await invite(admin.id, owner, "info@Bücher.de", [item]);
    expect(r.invitation?.email).toBe("info@xn--bcher-kva.de");
    const err = await codeOf(invite(admin.id, owner, "anna@xn--bcher-kva.de", [item]));
    expect(err.code).toBe(Code.AlreadyExists);
    expect(err.message).toContain("info@xn--bcher-kva.de");
    expect((await codeOf(invite(admin.id, owner, "shop@shop.BÜCHER.de", [item]))).code).toBe(Code.AlreadyExists);
  });

  it("R42: an address with a display name, or not an address at all, is INVALID_ARGUMENT naming email", async () => {
    for (const email of ["John Doe <john@x.com>", "not-an-email", "john@", "@x.com", "john@localhost", "a@b@c.com"]) {
      const err = await codeOf(invite(admin.id, owner, email, [item]));
      expect(err.code, email).toBe(Code.InvalidArgument);
      expect(err.message, email).toMatch(/^email: /);
    }
  });
});

describe("R11: FREE_EMAIL_DOMAINS extends the public list (and INVITATION_TTL_DAYS sets the expiry)", () => {
  let other: TestServer;
  let oc: Clients;

  beforeAll(async () => {
    other = await startTestServer({ env: { FREE_EMAIL_DOMAINS: "company.example, Mail.Example.org", INVITATION_TTL_DAYS: "1" } });
    oc = other.clients();
    await oc.directory.createUser({ actor: PLATFORM_ADMIN, userId: "fe-admin", email: "admin@fe-owner.com" });
    await oc.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: "fe-org", name: "FE", adminUserIds: ["fe-admin"] });
    await oc.directory.createWorkspace({ actor: "fe-admin", organizationId: "fe-org", workspaceId: "fe-ws", name: "FE" });
    await oc.content.createContent({ actor: "fe-admin", kind: "report", contentId: "fe-r", name: "R", workspaceId: "fe-ws" });
  });

  afterAll(async () => {
    await other?.stop();
  });

  const inviteThere = (email: string) => oc.partner.invitePartner({ actor: "fe-admin", ownerOrganizationId: "fe-org", email, items: [report("fe-r")] });

  it("R11: two addresses of a configured free-mail domain are both allowed", async () => {
    for (const email of ["a@company.example", "b@company.example", "x@mail.example.org", "y@mail.example.org"]) {
      expect((await inviteThere(email)).invitation?.email).toBe(email);
    }
    // The same address twice is still refused.
    expect((await codeOf(inviteThere("a@company.example"))).code).toBe(Code.AlreadyExists);
  });

  it("R11: without that configuration, company.example is a private domain (the file's main server)", async () => {
    const admin = { id: "pf-admin", email: "admin@pf-owner.com" };
    const { orgId } = await ownerWithContent("pf", "Owner F", admin, [{ ref: report("pf-r"), name: "R" }]);
    await invite(admin.id, orgId, "a@company.example", [report("pf-r")]);
    const err = await codeOf(invite(admin.id, orgId, "b@company.example", [report("pf-r")]));
    expect(err.code).toBe(Code.AlreadyExists);
    expect(err.message).toContain("a@company.example");
  });

  it("INVITATION_TTL_DAYS=1: the invitation expires one day after it was created", async () => {
    const inv = (await inviteThere("ttl@ttl-co.com")).invitation!;
    expect(Date.parse(inv.expiresAt) - Date.parse(inv.createdAt)).toBeGreaterThanOrEqual(86_400_000 - 5_000);
    expect(Date.parse(inv.expiresAt) - Date.parse(inv.createdAt)).toBeLessThanOrEqual(86_400_000 + 5_000);
  });
});

// ---- invitation tokens --------------------------------------------------------------------

describe("R12: invitation tokens", () => {
  const p = "pt";
  const admin = { id: `${p}-admin`, email: "admin@pt-owner.com" };
  const item = board(`${p}-board`);
  let owner = "";

  beforeAll(async () => {
    ({ orgId: owner } = await ownerWithContent(p, "Owner T", admin, [{ ref: item, name: "Board" }]));
  });

  /**
   * Moves an invitation's expiry into the past. The API offers no clock to
   * turn, and the TTL is at least a day; the test reaches below the store's
   * repositories (as the store tests do) and changes the one column.
   */
  async function expire(invitationId: string): Promise<void> {
    await sql`update partner_invitations set expires_at = now() - interval '1 minute' where id = ${invitationId}`.execute(kyselyOf(server.app.domain.store));
  }

  it("accepting twice is FAILED_PRECONDITION", async () => {
    const inv = await invite(admin.id, owner, "once@token-one.com", [item]);
    await accept(inv.invitationToken, { userId: `${p}-once` });
    const err = await codeOf(accept(inv.invitationToken));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toContain("accepted");
  });

  it("accepting a revoked invitation is FAILED_PRECONDITION, and grants nothing", async () => {
    const inv = await invite(admin.id, owner, "late@token-two.com", [item]);
    await wrote(c.partner.revokeInvitation({ actor: admin.id, invitationId: inv.invitation!.id }));
    const err = await codeOf(accept(inv.invitationToken, { userId: `${p}-late` }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toContain("revoked");
    expect((await c.directory.listUsers({ query: "late@token-two.com" })).users).toEqual([]);
  });

  it("an unknown token is NOT_FOUND; a malformed one is INVALID_ARGUMENT naming invitation_token", async () => {
    expect((await codeOf(accept("A".repeat(43)))).code).toBe(Code.NotFound);
    const bad = await codeOf(accept("not a token!"));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(bad.message).toContain("invitation_token");
  });

  it("an expired invitation is FAILED_PRECONDITION, leaves the pending list, and grants nothing", async () => {
    const inv = await invite(admin.id, owner, "slow@token-three.com", [item]);
    await expire(inv.invitation!.id);
    expect((await listPartners(owner)).pending.map((i) => i.email)).not.toContain("slow@token-three.com");
    const err = await codeOf(accept(inv.invitationToken, { userId: `${p}-slow` }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toContain("expired");
    // Still refused the second time (now marked expired).
    expect((await codeOf(accept(inv.invitationToken, { userId: `${p}-slow` }))).code).toBe(Code.FailedPrecondition);
    expect((await listPartners(owner)).partners).toHaveLength(1); // only token-one's
  });

  it("R11: an expired invitation no longer holds its domain", async () => {
    const inv = await invite(admin.id, owner, "first@token-four.com", [item]);
    expect((await codeOf(invite(admin.id, owner, "second@token-four.com", [item]))).code).toBe(Code.AlreadyExists);
    await expire(inv.invitation!.id);
    const second = await invite(admin.id, owner, "second@token-four.com", [item]);
    expect(second.invitation?.status).toBe("pending");
    expect((await codeOf(accept(inv.invitationToken))).code).toBe(Code.FailedPrecondition);
  });
});

// ---- R13: manage partners --------------------------------------------------------------

describe('R13: "Manage Partner Share Access"', () => {
  const p = "pd";
  const ada = { id: `${p}-ada`, email: "ada@pd-owner.com" };
  const r1 = report(`${p}-r1`);
  const r2 = report(`${p}-r2`);
  const r3 = report(`${p}-r3`);
  const b1 = board(`${p}-b1`);
  const b2 = board(`${p}-b2`);
  const all = [r1, r2, r3, b1, b2];
  const eve = `${p}-eve`;
  const max = `${p}-max`;
  let owner = "";
  let northwind = "";

  beforeAll(async () => {
    ({ orgId: owner } = await ownerWithContent(p, "Owner D", ada, [
      { ref: r1, name: "Report 1" },
      { ref: r2, name: "Report 2" },
      { ref: r3, name: "Report 3" },
      { ref: b1, name: "Board 1" },
      { ref: b2, name: "Board 2" },
    ]));
  });

  /** Exactly these items are viewable by these users at `token`; the rest are not. */
  async function expectShared(users: string[], shared: Ref[], token: string): Promise<void> {
    for (const u of users) {
      for (const item of all) {
        const expected = shared.some((s) => s.id === item.id) ? PARTNER_RIGHTS : NO_RIGHTS;
        expect(await rights(u, item, token), `${u} on ${item.type} ${item.id}`).toEqual(expected);
      }
      expect(await lookup(u, "report", token), u).toEqual(shared.filter((s) => s.type === "report").map((s) => s.id).sort());
      expect(await lookup(u, "board", token), u).toEqual(shared.filter((s) => s.type === "board").map((s) => s.id).sort());
    }
  }

  it("R13: after invite and acceptance the partner shows 1 report and 1 board", async () => {
    const inv = await invite(ada.id, owner, "eve@northwind.com", [r1, b1]);
    const r = await accept(inv.invitationToken, { userId: eve, organizationName: "Northwind" });
    northwind = r.partner!.organizationId;
    expect(await counts(owner, northwind)).toEqual({ reports: 1, boards: 1 });
    await wrote(c.directory.addOrganizationMember({ actor: eve, organizationId: northwind, email: "max@northwind.com", userId: max }));
    await expectShared([eve, max], [r1, b1], tokens.last);
  });

  it("R13: sharing more (and an item already shared) counts each item once: 2 reports, 2 boards", async () => {
    const r = await shareMore(ada.id, owner, northwind, [r2, b2, r1]);
    expect(r.partner).toMatchObject({ sharedReports: 2, sharedBoards: 2 });
    expect(await counts(owner, northwind)).toEqual({ reports: 2, boards: 2 });
    await expectShared([eve, max], [r1, r2, b1, b2], r.consistencyToken);
  });

  it("R13: SetPartnerShares without kinds replaces the whole set: only Report 3 remains", async () => {
    const r = await wrote(c.partner.setPartnerShares({ actor: ada.id, ownerOrganizationId: owner, partnerOrganizationId: northwind, items: [r3] }));
    expect(r.partner).toMatchObject({ organizationId: northwind, sharedReports: 1, sharedBoards: 0 });
    expect(await counts(owner, northwind)).toEqual({ reports: 1, boards: 0 });
    await expectShared([eve, max], [r3], r.consistencyToken);
  });

  it('R13: "Manage shared boards" (kinds ["board"]) sets the boards and leaves reports alone', async () => {
    const r = await wrote(
      c.partner.setPartnerShares({ actor: ada.id, ownerOrganizationId: owner, partnerOrganizationId: northwind, items: [b1, b2], kinds: ["board"] }),
    );
    expect(r.partner).toMatchObject({ sharedReports: 1, sharedBoards: 2 });
    expect(await counts(owner, northwind)).toEqual({ reports: 1, boards: 2 });
    await expectShared([eve, max], [r3, b1, b2], r.consistencyToken);
  });

  it('R13: "Manage shared reports": toggling Report 1 on, then Report 3 off, leaves the boards alone', async () => {
    const on = await wrote(
      c.partner.setPartnerShares({ actor: ada.id, ownerOrganizationId: owner, partnerOrganizationId: northwind, items: [r3, r1], kinds: ["report"] }),
    );
    expect(on.partner).toMatchObject({ sharedReports: 2, sharedBoards: 2 });
    expect(await counts(owner, northwind)).toEqual({ reports: 2, boards: 2 });
    await expectShared([eve], [r1, r3, b1, b2], on.consistencyToken);

    const off = await wrote(
      c.partner.setPartnerShares({ actor: ada.id, ownerOrganizationId: owner, partnerOrganizationId: northwind, items: [r1], kinds: ["report"] }),
    );
    expect(off.partner).toMatchObject({ sharedReports: 1, sharedBoards: 2 });
    expect(await counts(owner, northwind)).toEqual({ reports: 1, boards: 2 });
    await expectShared([eve, max], [r1, b1, b2], off.consistencyToken);
  });

  it("R42: SetPartnerShares refuses an item outside the given kinds, and an unknown kind, naming the field", async () => {
    const stray = await codeOf(
      c.partner.setPartnerShares({ actor: ada.id, ownerOrganizationId: owner, partnerOrganizationId: northwind, items: [r1, b1], kinds: ["report"] }),
    );
    expect(stray.code).toBe(Code.InvalidArgument);
    expect(stray.message).toMatch(/^items\[1\]/);
    const kind = await codeOf(
      c.partner.setPartnerShares({ actor: ada.id, ownerOrganizationId: owner, partnerOrganizationId: northwind, items: [], kinds: ["dashboard"] }),
    );
    expect(kind.code).toBe(Code.InvalidArgument);
    expect(kind.message).toMatch(/^kinds\[0\]/);
    expect(await counts(owner, northwind)).toEqual({ reports: 1, boards: 2 });
  });

  it('R13: "Remove partner — revoke all access immediately": with the removal\'s token no member views anything', async () => {
    const removed = await wrote(c.partner.removePartner({ actor: ada.id, ownerOrganizationId: owner, partnerOrganizationId: northwind }));
    await expectShared([eve, max], [], removed.consistencyToken);
    const list = await listPartners(owner);
    expect(list.partners).toEqual([]);
    expect(list.pending).toEqual([]);
    // The partner's own organization stays (it is theirs); only the access is gone.
    expect(await members(northwind)).toEqual([
      { id: eve, email: "eve@northwind.com", admin: true },
      { id: max, email: "max@northwind.com", admin: false },
    ]);
    expect((await c.content.listShares({ resource: r1 })).shares.filter((s) => s.source === ShareSource.PARTNER)).toEqual([]);
  });

  it("R13: after the removal SpiceDB holds exactly what Postgres implies (Reconcile dry_run: nothing missing, nothing extra)", async () => {
    const r = await c.admin.reconcile({ dryRun: true });
    expect({ missing: r.missing, extra: r.extra, missingExamples: r.missingExamples, extraExamples: r.extraExamples }).toEqual({
      missing: 0,
      extra: 0,
      missingExamples: [],
      extraExamples: [],
    });
    expect(r.actualRelationships).toBe(r.expectedRelationships);
  });

  it("R13: a removed partner is NOT_FOUND for SetPartnerShares, sharing more and removing again", async () => {
    expect(
      (await codeOf(c.partner.setPartnerShares({ actor: ada.id, ownerOrganizationId: owner, partnerOrganizationId: northwind, items: [r1] }))).code,
    ).toBe(Code.NotFound);
    expect((await codeOf(shareMore(ada.id, owner, northwind, [r1]))).code).toBe(Code.NotFound);
    expect((await codeOf(c.partner.removePartner({ actor: ada.id, ownerOrganizationId: owner, partnerOrganizationId: northwind }))).code).toBe(
      Code.NotFound,
    );
  });
});

// ---- refusals --------------------------------------------------------------------------

describe("R40/R42: refused invitations", () => {
  const p = "pe";
  const admin = { id: `${p}-admin`, email: "admin@pe-owner.com" };
  const member = `${p}-member`;
  const item = report(`${p}-report`);
  const dash = `${p}-dash`;
  const book = `${p}-book`;
  let owner = "";
  let foreign: Ref;

  beforeAll(async () => {
    ({ orgId: owner } = await ownerWithContent(p, "Owner E", admin, [
      { ref: item, name: "Report" },
      { ref: { type: "dashboard", id: dash }, name: "Dashboard" },
      { ref: { type: "workbook", id: book }, name: "Workbook" },
    ]));
    await person(member, "Member@PE-Owner.com");
    await wrote(c.directory.addOrganizationMember({ actor: admin.id, organizationId: owner, userId: member }));
    const other = await ownerWithContent(`${p}y`, "Someone else", { id: `${p}y-admin`, email: "admin@pey-owner.com" }, [
      { ref: report(`${p}y-report`), name: "Not yours" },
    ]);
    expect(other.orgId).not.toBe(owner);
    foreign = report(`${p}y-report`);
  });

  it("R40: a member who is not an admin of the inviting organization gets PERMISSION_DENIED", async () => {
    const err = await codeOf(invite(member, owner, "x@refused-one.com", [item]));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.message).toContain(member);
  });

  it("R10: items of another organization are FAILED_PRECONDITION, naming the item", async () => {
    const err = await codeOf(invite(admin.id, owner, "x@refused-two.com", [item, foreign]));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toContain(foreign.id);
  });

  it("R42: a dashboard or workbook is INVALID_ARGUMENT naming items[i].type", async () => {
    const d = await codeOf(invite(admin.id, owner, "x@refused-three.com", [{ type: "dashboard", id: dash }]));
    expect(d.code).toBe(Code.InvalidArgument);
    expect(d.message).toMatch(/^items\[0\]\.type/);
    const w = await codeOf(invite(admin.id, owner, "x@refused-three.com", [item, { type: "workbook", id: book }]));
    expect(w.code).toBe(Code.InvalidArgument);
    expect(w.message).toMatch(/^items\[1\]\.type/);
    const none = await codeOf(invite(admin.id, owner, "x@refused-three.com", [{ type: "", id: item.id }]));
    expect(none.code).toBe(Code.InvalidArgument);
    expect(none.message).toMatch(/^items\[0\]\.type/);
  });

  it("R42: an invitation without items is INVALID_ARGUMENT naming items", async () => {
    const err = await codeOf(invite(admin.id, owner, "x@refused-four.com", []));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toMatch(/^items/);
  });

  it("R42: both email and partner_organization_id, or neither, is INVALID_ARGUMENT", async () => {
    const both = await codeOf(c.partner.invitePartner({ actor: admin.id, ownerOrganizationId: owner, email: "x@refused-five.com", partnerOrganizationId: `${p}y-org`, items: [item] }));
    expect(both.code).toBe(Code.InvalidArgument);
    expect(both.message).toContain("partner_organization_id");
    const neither = await codeOf(c.partner.invitePartner({ actor: admin.id, ownerOrganizationId: owner, items: [item] }));
    expect(neither.code).toBe(Code.InvalidArgument);
  });

  it("R10: inviting a member of the inviting organization is FAILED_PRECONDITION (partners are people outside it)", async () => {
    const err = await codeOf(invite(admin.id, owner, "member@pe-owner.com", [item]));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toContain("member@pe-owner.com");
    expect((await codeOf(invite(admin.id, owner, admin.email, [item]))).code).toBe(Code.FailedPrecondition);
  });

  it("R12: an invitee who joined the inviting organization meanwhile cannot accept (FAILED_PRECONDITION)", async () => {
    const inv = await invite(admin.id, owner, "newhire@refused-seven.com", [item]);
    await wrote(c.directory.addOrganizationMember({ actor: admin.id, organizationId: owner, email: "newhire@refused-seven.com", userId: `${p}-newhire` }));
    const err = await codeOf(accept(inv.invitationToken));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toContain(owner);
    await wrote(c.partner.revokeInvitation({ actor: admin.id, invitationId: inv.invitation!.id }));
  });

  it("R42: unknown objects are NOT_FOUND: an item, an item of the wrong type, the owner organization, a partner that is none", async () => {
    expect((await codeOf(invite(admin.id, owner, "x@refused-six.com", [report(`${p}-nope`)]))).code).toBe(Code.NotFound);
    expect((await codeOf(invite(admin.id, owner, "x@refused-six.com", [board(item.id)]))).code).toBe(Code.NotFound);
    expect((await codeOf(invite(admin.id, `${p}-no-such-org`, "x@refused-six.com", [item]))).code).toBe(Code.NotFound);
    expect((await codeOf(shareMore(admin.id, owner, `${p}y-org`, [item]))).code).toBe(Code.NotFound);
    expect((await codeOf(c.partner.listPartners({ ownerOrganizationId: `${p}-no-such-org` }))).code).toBe(Code.NotFound);
  });

  it("R10: none of the refusals left an invitation behind", async () => {
    const list = await listPartners(owner);
    expect(list).toEqual({ partners: [], pending: [] });
    expect(await notificationsTo("x@refused-one.com")).toEqual([]);
  });
});

// ---- R43: notifications ------------------------------------------------------------------

describe("R43: partner notifications are recorded and listable without SMTP", () => {
  const p = "pn";
  const nora = { id: `${p}-nora`, email: "nora@pn-owner.com" };
  const item = report(`${p}-report`);
  let owner = "";
  let token = "";
  let partnerOrg = "";

  beforeAll(async () => {
    ({ orgId: owner } = await ownerWithContent(p, "Notify Owner", nora, [{ ref: item, name: "Quarterly numbers" }]));
  });

  it('R43: "The partner will receive an email invitation": recorded for the invitee, status "recorded" (no SMTP: issue 10, not "pending" forever); issue 7.8: the listing withholds the token', async () => {
    const inv = await invite(nora.id, owner, "Nina@NotifyCo.com", [item]);
    token = inv.invitationToken;
    const mails = await notificationsTo("nina@notifyco.com");
    expect(mails).toHaveLength(1);
    const mail = mails[0]!;
    expect(mail).toMatchObject({ kind: "partner_invitation", recipient: "nina@notifyco.com", status: "recorded", attempts: 0, lastError: "", sentAt: "" });
    // "recorded" filters (and "pending", the stored state, still does).
    expect((await c.admin.listNotifications({ recipient: "nina@notifyco.com", status: "recorded" })).notifications.map((n) => n.id)).toEqual([mail.id]);
    expect((await c.admin.listNotifications({ recipient: "nina@notifyco.com", status: "pending" })).notifications.map((n) => n.id)).toEqual([mail.id]);
    expect(mail.subject).toContain("Notify Owner");
    expect(mail.body).not.toContain(token);
    expect(mail.body).toContain("(invitation token: [invitation token: sent by mail only])");
    expect(mail.body).toContain("Quarterly numbers");
    expect(mail.createdAt).not.toBe("");
    // The recipient filter is case-insensitive.
    expect((await notificationsTo("NINA@notifyco.com")).map((n) => n.id)).toEqual([mail.id]);
  });

  it("R43: the acceptance is recorded for the inviter", async () => {
    const r = await accept(token, { userId: `${p}-nina` });
    partnerOrg = r.partner!.organizationId;
    const mails = (await notificationsTo(nora.email)).filter((n) => n.kind === "partner_invitation_accepted");
    expect(mails).toHaveLength(1);
    expect(mails[0]).toMatchObject({ recipient: nora.email, status: "recorded", attempts: 0 });
    expect(mails[0]!.subject + mails[0]!.body).toContain("nina@notifyco.com");
  });

  it("R43: the removal is recorded for the partner organization's admins", async () => {
    await wrote(c.directory.addOrganizationMember({ actor: `${p}-nina`, organizationId: partnerOrg, email: "ned@notifyco.com", admin: true }));
    await wrote(c.directory.addOrganizationMember({ actor: `${p}-nina`, organizationId: partnerOrg, email: "nobody@notifyco.com" }));
    await wrote(c.partner.removePartner({ actor: nora.id, ownerOrganizationId: owner, partnerOrganizationId: partnerOrg }));
    for (const to of ["nina@notifyco.com", "ned@notifyco.com"]) {
      const removed = (await notificationsTo(to)).filter((n) => n.kind === "partner_removed");
      expect(removed, to).toHaveLength(1);
      expect(removed[0]).toMatchObject({ status: "recorded", attempts: 0 });
      expect(removed[0]!.subject + removed[0]!.body).toContain("Notify Owner");
    }
    expect((await notificationsTo("nobody@notifyco.com")).filter((n) => n.kind === "partner_removed")).toEqual([]);
  });

  it("R43: the list is newest first and filters by status", async () => {
    const all = (await c.admin.listNotifications({})).notifications;
    const ids = all.map((n) => Number(n.id));
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    expect(all.every((n) => n.status === "recorded")).toBe(true);
    expect((await c.admin.listNotifications({ status: "recorded" })).notifications.length).toBe(all.length);
    expect((await c.admin.listNotifications({ status: "pending" })).notifications.length).toBe(all.length);
    expect((await c.admin.listNotifications({ status: "sent" })).notifications).toEqual([]);
    expect((await codeOf(c.admin.listNotifications({ status: "bogus" }))).code).toBe(Code.InvalidArgument);
  });
});
