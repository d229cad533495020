import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DirectoryService, WorkspaceLevel } from "../../src/gen/sharegraph/v1/directory_service_pb.js";
import { CHECK_KEY, PLATFORM_ADMIN, startTestServer, type ClientKind, type Clients, type TestServer } from "../support/server.js";
import { codeOf, fresh, group, refusal, user } from "../support/rpc.js";

/*
 * DirectoryService over a real server, through the Connect client and the
 * grpc-js client. The platform admin ("admin") creates people and
 * organizations; an org admin runs what is inside the org; every write is
 * verified with PermissionService.CheckPermission at the write's token.
 */




let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.stop();
});

describe.each<ClientKind>(["connect", "grpc-js"])("DirectoryService over %s", (kind) => {
  let c: Clients;
  /** Ids are prefixed per client kind: both suites share one server. */
  const p = kind === "connect" ? "c" : "g";
  const id = (name: string) => `${p}-${name}`;
  const org = id("acme");
  const ann = id("ann"); // admin of acme
  const bob = id("bob"); // plain member of acme
  const carol = id("carol"); // plain member of acme
  const dave = id("dave"); // plain member of acme
  const outsider = id("olga"); // member of no organization

  /** Is `subject` allowed `permission` on `resource`, reading at least as fresh as `token`? */
  async function allowed(resource: { type: string; id: string }, permission: string, subject: { type: string; id: string; relation: string }, token: string) {
    const r = await c.permission.checkPermission({ resource, permission, subject, consistency: fresh(token) });
    return r.allowed;
  }
  const ws = (name: string) => ({ type: "workspace", id: name });

  /** Many questions at once (CheckBulkPermissions), answered in order. */
  async function allowedEach(items: Array<[{ type: string; id: string }, string, { type: string; id: string; relation: string }]>, token: string) {
    const r = await c.permission.checkBulkPermissions({
      items: items.map(([resource, permission, subject]) => ({ resource, permission, subject })),
      consistency: fresh(token),
    });
    return r.results.map((x) => x.allowed);
  }

  async function newUser(name: string, displayName = name): Promise<string> {
    await c.directory.createUser({ actor: PLATFORM_ADMIN, userId: name, email: `${name}@acme.example`, displayName });
    return name;
  }

  beforeAll(async () => {
    c = server.clients(kind);
    for (const u of [ann, bob, carol, dave, outsider]) await newUser(u);
    await c.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: org, name: `Acme ${p}`, adminUserIds: [ann] });
    for (const u of [bob, carol, dave]) await c.directory.addOrganizationMember({ actor: ann, organizationId: org, userId: u });
  });

  describe("users", () => {
    it("R40: the platform admin creates a user; the email is normalized and GetUser returns it", async () => {
      const created = await c.directory.createUser({
        actor: PLATFORM_ADMIN,
        userId: id("erin"),
        email: `  ${id("Erin")}.Example@ACME.Example `,
        displayName: "  Erin Example ",
      });
      expect(created.user).toMatchObject({ id: id("erin"), email: `${id("erin")}.example@acme.example`, displayName: "Erin Example" });
      expect(new Date(created.user?.createdAt ?? "").getTime()).not.toBeNaN();
      expect(created.consistencyToken).not.toBe("");
      const got = await c.directory.getUser({ userId: id("erin") });
      expect(got.user).toEqual(created.user);
    });

    it("generates an id when user_id is empty", async () => {
      const created = await c.directory.createUser({ actor: PLATFORM_ADMIN, email: `${id("anon")}@acme.example`, displayName: "Anon" });
      expect(created.user?.id).toMatch(/^[0-9a-f-]{36}$/);
      expect((await c.directory.getUser({ userId: created.user?.id ?? "" })).user?.email).toBe(`${id("anon")}@acme.example`);
    });

    it("ListUsers searches name or email case-insensitively, and pages with next_page_token", async () => {
      const names = ["pager-1", "pager-2", "pager-3", "pager-4", "pager-5"].map(id);
      for (const [i, name] of names.entries()) {
        await c.directory.createUser({ actor: PLATFORM_ADMIN, userId: name, email: `${name}@paging.example`, displayName: `Pat ${i}` });
      }
      await c.directory.createUser({ actor: PLATFORM_ADMIN, userId: id("quincy"), email: `${id("q")}@elsewhere.example`, displayName: `Quincy ${p.toUpperCase()}-Zebra` });

      const pages: string[][] = [];
      let pageToken = "";
      do {
        const r = await c.directory.listUsers({ query: `${id("PAGER")}`, page: { pageSize: 2, pageToken } });
        pages.push(r.users.map((u) => u.id));
        pageToken = r.nextPageToken;
      } while (pageToken && pages.length < 10);
      expect(pages).toEqual([names.slice(0, 2), names.slice(2, 4), names.slice(4)]);

      const byName = await c.directory.listUsers({ query: `quincy ${p}-zEBRA` });
      expect(byName.users.map((u) => u.id)).toEqual([id("quincy")]);
      expect(byName.nextPageToken).toBe("");
      const byEmail = await c.directory.listUsers({ query: `${id("q")}@ELSEWHERE` });
      expect(byEmail.users.map((u) => u.id)).toEqual([id("quincy")]);
      // LIKE wildcards in the query are literal text.
      expect((await c.directory.listUsers({ query: "%" })).users).toEqual([]);
    });

    it("ListUsers with an empty query lists everyone, the platform admin included", async () => {
      const ids: string[] = [];
      let pageToken = "";
      do {
        const r = await c.directory.listUsers({ page: { pageSize: 1000, pageToken } });
        ids.push(...r.users.map((u) => u.id));
        pageToken = r.nextPageToken;
      } while (pageToken);
      expect(ids).toEqual(expect.arrayContaining([PLATFORM_ADMIN, ann, bob, outsider]));
    });

    it("R42: paging parameters are checked and named", async () => {
      await refusal(c.directory.listUsers({ page: { pageSize: 1001 } }), Code.InvalidArgument, /^page\.page_size: at most 1000/);
      await refusal(c.directory.listUsers({ page: { pageToken: "!!not a token!!" } }), Code.InvalidArgument, /^page\.page_token:/);
    });

    it("R40/R42: refusals of CreateUser name the actor, the field or the object", async () => {
      const create = (init: { actor?: string; userId?: string; email?: string }) =>
        c.directory.createUser({ actor: PLATFORM_ADMIN, email: `${id("new")}@acme.example`, displayName: "New", ...init });
      await refusal(create({ actor: "" }), Code.InvalidArgument, /^actor: is required/);
      await refusal(create({ actor: "not an id!" }), Code.InvalidArgument, /^actor: "not an id!" is not a valid id/);
      await refusal(create({ actor: bob }), Code.PermissionDenied, new RegExp(`^user ${bob} may not create users: that needs manage on platform`));
      await refusal(create({ actor: ann }), Code.PermissionDenied, /may not create users/); // an org admin is not a platform admin
      await refusal(create({ actor: id("nobody") }), Code.PermissionDenied, new RegExp(`^user ${id("nobody")} may not create users`));
      await refusal(create({ userId: "bad id!" }), Code.InvalidArgument, /^user_id: "bad id!" is not a valid id/);
      await refusal(create({ userId: "x".repeat(129) }), Code.InvalidArgument, /^user_id: .* is not a valid id/);
      await refusal(create({ email: "" }), Code.InvalidArgument, /^email: an email address is required/);
      await refusal(create({ email: "not-an-email" }), Code.InvalidArgument, /^email: "not-an-email" is not a plain email address/);
      await refusal(create({ email: "Ann <ann@acme.example>" }), Code.InvalidArgument, /^email:/);
      await refusal(create({ userId: bob }), Code.AlreadyExists, new RegExp(`^user ${bob} already exists`));
      await refusal(
        create({ userId: id("bob2"), email: `${bob.toUpperCase()}@ACME.example` }),
        Code.AlreadyExists,
        new RegExp(`^email ${bob}@acme\\.example already belongs to user ${bob}`),
      );
    });

    it("R42: GetUser of an unknown user is NOT_FOUND, of no user INVALID_ARGUMENT", async () => {
      await refusal(c.directory.getUser({ userId: id("ghost") }), Code.NotFound, new RegExp(`^user ${id("ghost")} does not exist`));
      await refusal(c.directory.getUser({ userId: "" }), Code.InvalidArgument, /^user_id: is required/);
    });

    it("R41: a check key may read the directory but not change it", async () => {
      const checker = server.clients(kind, CHECK_KEY);
      expect((await checker.directory.getUser({ userId: ann })).user?.id).toBe(ann);
      expect((await checker.directory.listOrganizationMembers({ organizationId: org })).members.length).toBe(4);
      await refusal(
        checker.directory.createUser({ actor: PLATFORM_ADMIN, email: `${id("x")}@acme.example` }),
        Code.PermissionDenied,
        /DirectoryService\/CreateUser needs an admin API key/,
      );
    });
  });

  describe("organizations", () => {
    it("R40: the platform admin creates an organization whose first admins can manage it", async () => {
      const founder = await newUser(id("founder"));
      const created = await c.directory.createOrganization({
        actor: PLATFORM_ADMIN,
        organizationId: id("globex"),
        name: "  Globex  ",
        adminUserIds: [founder, founder],
      });
      expect(created.organization).toMatchObject({ id: id("globex"), name: "Globex", channelPartner: false, memberCount: 1 });
      const token = created.consistencyToken;
      const globex = { type: "organization", id: id("globex") };
      expect(await allowed(globex, "manage", user(founder), token)).toBe(true);
      expect(await allowed(globex, "manage", user(ann), token)).toBe(false);
      expect(await allowed(globex, "manage", user(PLATFORM_ADMIN), token)).toBe(true);
      expect((await c.directory.getOrganization({ organizationId: id("globex") })).organization).toEqual(created.organization);
      const members = await c.directory.listOrganizationMembers({ organizationId: id("globex") });
      expect(members.members.map((m) => ({ id: m.user?.id, admin: m.admin }))).toEqual([{ id: founder, admin: true }]);
    });

    it("ListOrganizations filters by name and channel-partner flag, and pages", async () => {
      for (const n of [1, 2, 3]) {
        await c.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: id(`lister-${n}`), name: `Lister ${p} Org ${n}`, channelPartner: n !== 2 });
      }
      const first = await c.directory.listOrganizations({ query: `lister ${p} org`, page: { pageSize: 2 } });
      expect(first.organizations.map((o) => o.id)).toEqual([id("lister-1"), id("lister-2")]);
      expect(first.nextPageToken).not.toBe("");
      const second = await c.directory.listOrganizations({ query: `LISTER ${p} ORG`, page: { pageSize: 2, pageToken: first.nextPageToken } });
      expect(second.organizations.map((o) => o.id)).toEqual([id("lister-3")]);
      expect(second.nextPageToken).toBe("");
      const partners = await c.directory.listOrganizations({ query: `lister ${p}`, channelPartnersOnly: true });
      expect(partners.organizations.map((o) => [o.id, o.channelPartner])).toEqual([
        [id("lister-1"), true],
        [id("lister-3"), true],
      ]);
    });

    it("R22: SetChannelPartner classifies and declassifies; the members' partner standing follows at once", async () => {
      const rep = await newUser(id("rep"));
      await c.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: id("resell"), name: "Resell", adminUserIds: [rep] });
      const resell = { type: "organization", id: id("resell") };
      const on = await c.directory.setChannelPartner({ actor: PLATFORM_ADMIN, organizationId: id("resell"), channelPartner: true });
      expect(on.organization).toMatchObject({ id: id("resell"), channelPartner: true, memberCount: 1 });
      expect(await allowed(resell, "channel_partner_member", user(rep), on.consistencyToken)).toBe(true);
      const off = await c.directory.setChannelPartner({ actor: PLATFORM_ADMIN, organizationId: id("resell"), channelPartner: false });
      expect(off.organization?.channelPartner).toBe(false);
      expect(await allowed(resell, "channel_partner_member", user(rep), off.consistencyToken)).toBe(false);
      expect((await c.directory.getOrganization({ organizationId: id("resell") })).organization).toMatchObject({ channelPartner: false, memberCount: 1 });
    });

    it("R40/R42: refusals of organization calls", async () => {
      await refusal(
        c.directory.createOrganization({ actor: ann, organizationId: id("nope"), name: "Nope" }),
        Code.PermissionDenied,
        new RegExp(`^user ${ann} may not create organizations`),
      );
      await refusal(c.directory.createOrganization({ actor: "", name: "Nope" }), Code.InvalidArgument, /^actor: is required/);
      await refusal(c.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: id("nope"), name: "   " }), Code.InvalidArgument, /^name: is required/);
      await refusal(
        c.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: "a/b", name: "Nope" }),
        Code.InvalidArgument,
        /^organization_id: "a\/b" is not a valid id/,
      );
      await refusal(
        c.directory.createOrganization({ actor: PLATFORM_ADMIN, name: "Nope", adminUserIds: [ann, "bad id"] }),
        Code.InvalidArgument,
        /^admin_user_ids\[1\]: "bad id" is not a valid id/,
      );
      await refusal(
        c.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: id("nope"), name: "Nope", adminUserIds: [ann, id("ghost")] }),
        Code.NotFound,
        new RegExp(`^user ${id("ghost")} does not exist`),
      );
      await refusal(c.directory.getOrganization({ organizationId: id("nope") }), Code.NotFound, new RegExp(`^organization ${id("nope")} does not exist`));
      await refusal(
        c.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: org, name: "Again" }),
        Code.AlreadyExists,
        new RegExp(`^organization ${org} already exists`),
      );
      await refusal(
        c.directory.setChannelPartner({ actor: PLATFORM_ADMIN, organizationId: id("nope"), channelPartner: true }),
        Code.NotFound,
        new RegExp(`^organization ${id("nope")} does not exist`),
      );
      await refusal(
        c.directory.setChannelPartner({ actor: ann, organizationId: org, channelPartner: true }),
        Code.PermissionDenied,
        /may not classify organizations as channel partners/,
      );
      await refusal(c.directory.deleteOrganization({ actor: ann, organizationId: org }), Code.PermissionDenied, /may not delete organizations/);
      await refusal(c.directory.deleteOrganization({ actor: PLATFORM_ADMIN, organizationId: id("nope") }), Code.NotFound, /does not exist/);
    });
  });

  describe("organization members", () => {
    it("R40: an org admin adds members and pages through them; members are not admins", async () => {
      const first = await c.directory.listOrganizationMembers({ organizationId: org, page: { pageSize: 3 } });
      const second = await c.directory.listOrganizationMembers({ organizationId: org, page: { pageSize: 3, pageToken: first.nextPageToken } });
      expect(second.nextPageToken).toBe("");
      expect([...first.members, ...second.members].map((m) => [m.user?.id, m.admin])).toEqual([
        [ann, true],
        [bob, false],
        [carol, false],
        [dave, false],
      ]);
      expect(first.members[0]?.user).toMatchObject({ email: `${ann}@acme.example`, displayName: ann });
      expect((await c.directory.getOrganization({ organizationId: org })).organization?.memberCount).toBe(4);
      // Plain members are members, not managers.
      const consistency = { requirement: { case: "fullyConsistent" as const, value: true } };
      const acme = { type: "organization", id: org };
      expect((await c.permission.checkPermission({ resource: acme, permission: "view_insights", subject: user(bob), consistency })).allowed).toBe(true);
      expect((await c.permission.checkPermission({ resource: acme, permission: "manage", subject: user(bob), consistency })).allowed).toBe(false);
    });

    it("R40: promoting a member makes them an admin; the last admin cannot leave or be demoted", async () => {
      const [boss, deputy, staff] = [id("boss"), id("deputy"), id("staff")];
      for (const u of [boss, deputy, staff]) await newUser(u);
      await c.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: id("initech"), name: "Initech", adminUserIds: [boss] });
      const initech = { type: "organization", id: id("initech") };

      const added = await c.directory.addOrganizationMember({ actor: boss, organizationId: id("initech"), userId: deputy });
      expect(added.member).toMatchObject({ user: { id: deputy, email: `${deputy}@acme.example` }, admin: false });
      expect(await allowed(initech, "manage", user(deputy), added.consistencyToken)).toBe(false);
      expect(await allowed(initech, "view_insights", user(deputy), added.consistencyToken)).toBe(true);
      await refusal(
        c.directory.addOrganizationMember({ actor: deputy, organizationId: id("initech"), userId: staff }),
        Code.PermissionDenied,
        new RegExp(`^user ${deputy} may not manage members of organization ${id("initech")}`),
      );

      const promoted = await c.directory.addOrganizationMember({ actor: boss, organizationId: id("initech"), userId: deputy, admin: true });
      expect(promoted.member?.admin).toBe(true);
      expect(await allowed(initech, "manage", user(deputy), promoted.consistencyToken)).toBe(true);

      // The deputy, now an admin, demotes the boss, then removes them.
      const demoted = await c.directory.addOrganizationMember({ actor: deputy, organizationId: id("initech"), userId: boss, admin: false });
      expect(await allowed(initech, "manage", user(boss), demoted.consistencyToken)).toBe(false);
      const removed = await c.directory.removeOrganizationMember({ actor: deputy, organizationId: id("initech"), userId: boss });
      expect(await allowed(initech, "view_insights", user(boss), removed.consistencyToken)).toBe(false);

      await refusal(
        c.directory.removeOrganizationMember({ actor: deputy, organizationId: id("initech"), userId: deputy }),
        Code.FailedPrecondition,
        new RegExp(`^user ${deputy} is the last admin of organization ${id("initech")}; make another member admin first`),
      );
      await refusal(
        c.directory.addOrganizationMember({ actor: deputy, organizationId: id("initech"), userId: deputy, admin: false }),
        Code.FailedPrecondition,
        /is the last admin of organization/,
      );
      // Refused changes left nothing behind.
      const members = await c.directory.listOrganizationMembers({ organizationId: id("initech") });
      expect(members.members.map((m) => [m.user?.id, m.admin])).toEqual([[deputy, true]]);
    });

    it("R42: unknown organizations, users and memberships are NOT_FOUND; bad ids name the field", async () => {
      await refusal(
        c.directory.addOrganizationMember({ actor: ann, organizationId: id("nowhere"), userId: bob }),
        Code.NotFound,
        new RegExp(`^organization ${id("nowhere")} does not exist`),
      );
      await refusal(c.directory.addOrganizationMember({ actor: ann, organizationId: org, userId: id("ghost") }), Code.NotFound, new RegExp(`^user ${id("ghost")} does not exist`));
      await refusal(
        c.directory.removeOrganizationMember({ actor: ann, organizationId: org, userId: outsider }),
        Code.NotFound,
        new RegExp(`^user ${outsider} as a member of organization ${org} does not exist`),
      );
      await refusal(c.directory.addOrganizationMember({ actor: ann, organizationId: org, userId: "" }), Code.InvalidArgument, /^user_id: give user_id, or email/);
      await refusal(c.directory.addOrganizationMember({ actor: ann, organizationId: org, email: "not an email" }), Code.InvalidArgument, /^email: /);
      await refusal(c.directory.addOrganizationMember({ actor: ann, organizationId: "", userId: bob }), Code.InvalidArgument, /^organization_id: is required/);
      await refusal(c.directory.listOrganizationMembers({ organizationId: id("nowhere") }), Code.NotFound, /does not exist/);
      await refusal(c.directory.addOrganizationMember({ actor: id("nobody"), organizationId: org, userId: outsider }), Code.PermissionDenied, /may not manage members/);
    });
  });

  describe("groups", () => {
    it("R40: an org admin creates groups; ListGroups pages; plain members may not", async () => {
      for (const g of ["g-alpha", "g-beta", "g-gamma"]) {
        const created = await c.directory.createGroup({ actor: ann, organizationId: org, groupId: id(g), name: g.toUpperCase() });
        expect(created.group).toEqual(expect.objectContaining({ id: id(g), organizationId: org, name: g.toUpperCase() }));
      }
      const first = await c.directory.listGroups({ organizationId: org, page: { pageSize: 2 } });
      const rest = await c.directory.listGroups({ organizationId: org, page: { pageSize: 100, pageToken: first.nextPageToken } });
      const all = [...first.groups, ...rest.groups].map((g) => g.id);
      expect(all).toEqual(expect.arrayContaining([id("g-alpha"), id("g-beta"), id("g-gamma")]));
      expect(new Set(all).size).toBe(all.length);
      expect(first.groups).toHaveLength(2);

      await refusal(
        c.directory.createGroup({ actor: bob, organizationId: org, groupId: id("g-bob"), name: "Bob's" }),
        Code.PermissionDenied,
        new RegExp(`^user ${bob} may not create groups in organization ${org}`),
      );
      await refusal(
        c.directory.createGroup({ actor: ann, organizationId: org, groupId: id("g-alpha"), name: "Again" }),
        Code.AlreadyExists,
        new RegExp(`^group ${id("g-alpha")} already exists`),
      );
      await refusal(c.directory.createGroup({ actor: ann, organizationId: id("nowhere"), name: "X" }), Code.NotFound, /organization .* does not exist/);
      await refusal(c.directory.createGroup({ actor: ann, organizationId: org, groupId: "x y", name: "X" }), Code.InvalidArgument, /^group_id: "x y" is not a valid id/);
      await refusal(c.directory.createGroup({ actor: ann, organizationId: org, name: "" }), Code.InvalidArgument, /^name: is required/);
    });

    it("groups nest: members of an inner group get what the outer group is granted", async () => {
      const [outer, inner] = [id("g-outer"), id("g-inner")];
      await c.directory.createGroup({ actor: ann, organizationId: org, groupId: outer, name: "Outer" });
      await c.directory.createGroup({ actor: ann, organizationId: org, groupId: inner, name: "Inner" });
      await c.directory.createWorkspace({ actor: ann, organizationId: org, workspaceId: id("ws-groups"), name: "Groups" });
      await c.directory.addGroupMember({ actor: ann, groupId: inner, member: user(carol) });
      await c.directory.addGroupMember({ actor: ann, groupId: outer, member: user(bob) });
      await c.directory.addGroupMember({ actor: ann, groupId: outer, member: group(inner) });
      // A repeated add is a no-op.
      await c.directory.addGroupMember({ actor: ann, groupId: outer, member: { type: "group", id: inner, relation: "" } });
      const granted = await c.directory.setWorkspacePermission({ actor: ann, workspaceId: id("ws-groups"), subject: group(outer), level: WorkspaceLevel.VIEW });
      expect(await allowed(ws(id("ws-groups")), "view", user(carol), granted.consistencyToken)).toBe(true);
      expect(await allowed(ws(id("ws-groups")), "view", user(bob), granted.consistencyToken)).toBe(true);
      expect(await allowed(ws(id("ws-groups")), "view", user(dave), granted.consistencyToken)).toBe(false);

      const members = await c.directory.listGroupMembers({ groupId: outer });
      expect(members.members.map((m) => ({ type: m.type, id: m.id, relation: m.relation }))).toEqual([user(bob), group(inner)]);

      const cut = await c.directory.removeGroupMember({ actor: ann, groupId: outer, member: group(inner) });
      expect(await allowed(ws(id("ws-groups")), "view", user(carol), cut.consistencyToken)).toBe(false);
      expect(await allowed(ws(id("ws-groups")), "view", user(bob), cut.consistencyToken)).toBe(true);
      await refusal(
        c.directory.removeGroupMember({ actor: ann, groupId: outer, member: group(inner) }),
        Code.NotFound,
        new RegExp(`^group ${inner} as a member of group ${outer} does not exist`),
      );
    });

    it("R1: groups nest at any depth (SpiceDB holds the closure): a member added three levels down, a diamond cut one side at a time, a nested group deleted; users and the group's members answer at each change's token", async () => {
      const [top, left, right, bottom] = [id("g-top"), id("g-left"), id("g-right"), id("g-bottom")];
      for (const g of [top, left, right, bottom]) await c.directory.createGroup({ actor: ann, organizationId: org, groupId: g, name: g });
      // top ⊇ left, right ⊇ bottom: bottom is reached two ways.
      await c.directory.addGroupMember({ actor: ann, groupId: top, member: group(left) });
      await c.directory.addGroupMember({ actor: ann, groupId: top, member: group(right) });
      await c.directory.addGroupMember({ actor: ann, groupId: left, member: group(bottom) });
      await c.directory.addGroupMember({ actor: ann, groupId: right, member: group(bottom) });
      const deep = ws(id("ws-deep"));
      await c.directory.createWorkspace({ actor: ann, organizationId: org, workspaceId: deep.id, name: "Deep" });
      await c.directory.setWorkspacePermission({ actor: ann, workspaceId: deep.id, subject: group(top), level: WorkspaceLevel.VIEW });
      const answers = (token: string) => allowedEach([[deep, "view", user(dave)], [deep, "view", group(bottom)], [deep, "view", group(left)]], token);

      expect(await answers((await c.directory.addGroupMember({ actor: ann, groupId: bottom, member: user(dave) })).consistencyToken)).toEqual([true, true, true]);
      expect(await answers((await c.directory.removeGroupMember({ actor: ann, groupId: left, member: group(bottom) })).consistencyToken)).toEqual([true, true, true]);
      expect(await answers((await c.directory.removeGroupMember({ actor: ann, groupId: right, member: group(bottom) })).consistencyToken)).toEqual([false, false, true]);
      expect(await answers((await c.directory.addGroupMember({ actor: ann, groupId: left, member: group(bottom) })).consistencyToken)).toEqual([true, true, true]);
      expect(await answers((await c.directory.deleteGroup({ actor: ann, groupId: bottom })).consistencyToken)).toEqual([false, false, true]);
      // A member of a group that stays, directly and through a nested group at once: cutting one way keeps them.
      await c.directory.addGroupMember({ actor: ann, groupId: left, member: user(dave) });
      expect(await answers((await c.directory.addGroupMember({ actor: ann, groupId: top, member: user(dave) })).consistencyToken)).toEqual([true, false, true]);
      expect(await answers((await c.directory.removeGroupMember({ actor: ann, groupId: top, member: user(dave) })).consistencyToken)).toEqual([true, false, true]);
      expect(await answers((await c.directory.removeGroupMember({ actor: ann, groupId: left, member: user(dave) })).consistencyToken)).toEqual([false, false, true]);
    });

    it("a cycle of groups is refused with FAILED_PRECONDITION", async () => {
      const [a, b, cc] = [id("g-cyc-a"), id("g-cyc-b"), id("g-cyc-c")];
      for (const g of [a, b, cc]) await c.directory.createGroup({ actor: ann, organizationId: org, groupId: g, name: g });
      await c.directory.addGroupMember({ actor: ann, groupId: a, member: group(b) });
      await c.directory.addGroupMember({ actor: ann, groupId: b, member: group(cc) });
      await refusal(
        c.directory.addGroupMember({ actor: ann, groupId: cc, member: group(a) }),
        Code.FailedPrecondition,
        new RegExp(`^adding group ${a} to group ${cc} would make groups contain themselves`),
      );
      await refusal(c.directory.addGroupMember({ actor: ann, groupId: a, member: group(a) }), Code.FailedPrecondition, /would make groups contain themselves/);
      expect((await c.directory.listGroupMembers({ groupId: cc })).members).toEqual([]);
    });

    it("R1: two opposite nestings at once: exactly one lands, the other is refused as a cycle (the check runs under the organization's membership lock)", async () => {
      for (let round = 0; round < 5; round++) {
        const [a, b] = [id(`g-race-a${round}`), id(`g-race-b${round}`)];
        for (const g of [a, b]) await c.directory.createGroup({ actor: ann, organizationId: org, groupId: g, name: g });
        const outcomes = await Promise.allSettled([
          c.directory.addGroupMember({ actor: ann, groupId: a, member: group(b) }),
          c.directory.addGroupMember({ actor: ann, groupId: b, member: group(a) }),
        ]);
        expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
        const refused = outcomes.find((o) => o.status === "rejected") as PromiseRejectedResult;
        expect(ConnectError.from(refused.reason).code).toBe(Code.FailedPrecondition);
        expect(ConnectError.from(refused.reason).rawMessage).toMatch(/would make groups contain themselves/);
      }
    });

    it("groups of another organization cannot be nested; refusals name the group, member or field", async () => {
      const founder = await newUser(id("umbrella-admin"));
      await c.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: id("umbrella"), name: "Umbrella", adminUserIds: [founder, ann] });
      await c.directory.createGroup({ actor: founder, organizationId: id("umbrella"), groupId: id("g-foreign"), name: "Foreign" });
      await refusal(
        c.directory.addGroupMember({ actor: ann, groupId: id("g-alpha"), member: group(id("g-foreign")) }),
        Code.FailedPrecondition,
        new RegExp(`^group ${id("g-foreign")} belongs to organization ${id("umbrella")}; only groups of ${org} can be nested`),
      );
      await refusal(
        c.directory.addGroupMember({ actor: founder, groupId: id("g-alpha"), member: user(bob) }),
        Code.PermissionDenied,
        new RegExp(`^user ${founder} may not change members of group ${id("g-alpha")}`),
      );
      await refusal(c.directory.addGroupMember({ actor: ann, groupId: id("g-none"), member: user(bob) }), Code.NotFound, new RegExp(`^group ${id("g-none")} does not exist`));
      await refusal(c.directory.addGroupMember({ actor: ann, groupId: id("g-alpha"), member: user(id("ghost")) }), Code.NotFound, new RegExp(`^user ${id("ghost")} does not exist`));
      await refusal(c.directory.addGroupMember({ actor: ann, groupId: id("g-alpha"), member: group(id("g-none")) }), Code.NotFound, new RegExp(`^group ${id("g-none")} does not exist`));
      await refusal(c.directory.addGroupMember({ actor: ann, groupId: id("g-alpha") }), Code.InvalidArgument, /^member: is required/);
      await refusal(
        c.directory.addGroupMember({ actor: ann, groupId: id("g-alpha"), member: { type: "organization", id: org, relation: "member" } }),
        Code.InvalidArgument,
        /^member\.type: expected "user" or "group"/,
      );
      await refusal(
        c.directory.addGroupMember({ actor: ann, groupId: id("g-alpha"), member: { type: "group", id: id("g-beta"), relation: "admin" } }),
        Code.InvalidArgument,
        /^member\.relation:/,
      );
      await refusal(c.directory.addGroupMember({ actor: ann, groupId: id("g-alpha"), member: user("bad id") }), Code.InvalidArgument, /^member\.id: "bad id" is not a valid id/);
      await refusal(c.directory.listGroupMembers({ groupId: id("g-none") }), Code.NotFound, /does not exist/);
      await refusal(c.directory.listGroups({ organizationId: id("nowhere") }), Code.NotFound, /does not exist/);
    });

    it("DeleteGroup removes the group, its memberships and its grants", async () => {
      const doomed = id("g-doomed");
      await c.directory.createGroup({ actor: ann, organizationId: org, groupId: doomed, name: "Doomed" });
      await c.directory.addGroupMember({ actor: ann, groupId: doomed, member: user(dave) });
      await c.directory.addGroupMember({ actor: ann, groupId: id("g-beta"), member: group(doomed) });
      await c.directory.createWorkspace({ actor: ann, organizationId: org, workspaceId: id("ws-doomed"), name: "Doomed" });
      const granted = await c.directory.setWorkspacePermission({ actor: ann, workspaceId: id("ws-doomed"), subject: group(doomed), level: WorkspaceLevel.ANALYZE });
      expect(await allowed(ws(id("ws-doomed")), "analyze", user(dave), granted.consistencyToken)).toBe(true);

      await refusal(c.directory.deleteGroup({ actor: dave, groupId: doomed }), Code.PermissionDenied, new RegExp(`may not delete group ${doomed}`));
      const deleted = await c.directory.deleteGroup({ actor: ann, groupId: doomed });
      expect(await allowed(ws(id("ws-doomed")), "analyze", user(dave), deleted.consistencyToken)).toBe(false);
      expect((await c.directory.listGroupMembers({ groupId: id("g-beta") })).members.map((m) => m.id)).not.toContain(doomed);
      expect((await c.directory.listWorkspacePermissions({ workspaceId: id("ws-doomed") })).permissions).toEqual([]);
      await refusal(c.directory.listGroupMembers({ groupId: doomed }), Code.NotFound, new RegExp(`^group ${doomed} does not exist`));
      await refusal(c.directory.deleteGroup({ actor: ann, groupId: doomed }), Code.NotFound, /does not exist/);
    });
  });

  describe("workspaces", () => {
    const [emea, sales] = [id("ws-emea"), id("ws-emea-sales")];

    beforeAll(async () => {
      await c.directory.createWorkspace({ actor: ann, organizationId: org, workspaceId: emea, name: "EMEA" });
      await c.directory.createWorkspace({ actor: ann, organizationId: org, workspaceId: sales, name: "EMEA Sales", parentWorkspaceId: emea });
    });

    it("R40: an org admin creates workspaces and child workspaces; Get and List return them", async () => {
      expect((await c.directory.getWorkspace({ workspaceId: sales })).workspace).toEqual(
        expect.objectContaining({ id: sales, organizationId: org, name: "EMEA Sales", parentWorkspaceId: emea }),
      );
      expect((await c.directory.getWorkspace({ workspaceId: emea })).workspace?.parentWorkspaceId).toBe("");
      const generated = await c.directory.createWorkspace({ actor: ann, organizationId: org, name: "Generated" });
      expect(generated.workspace?.id).toMatch(/^[0-9a-f-]{36}$/);
      // The org admin manages every workspace of the org, children included.
      expect(await allowed(ws(sales), "manage", user(ann), generated.consistencyToken)).toBe(true);

      const ids: string[] = [];
      let pageToken = "";
      let pages = 0;
      do {
        const r = await c.directory.listWorkspaces({ organizationId: org, page: { pageSize: 2, pageToken } });
        expect(r.workspaces.length).toBeLessThanOrEqual(2);
        ids.push(...r.workspaces.map((w) => w.id));
        pageToken = r.nextPageToken;
        pages++;
      } while (pageToken && pages < 50);
      expect(ids).toEqual(expect.arrayContaining([emea, sales, generated.workspace?.id]));
      expect(new Set(ids).size).toBe(ids.length);
      expect(pages).toBeGreaterThan(1);
    });

    it("R40/R42: workspace creation refusals", async () => {
      await refusal(
        c.directory.createWorkspace({ actor: bob, organizationId: org, workspaceId: id("ws-bob"), name: "Bob's" }),
        Code.PermissionDenied,
        new RegExp(`^user ${bob} may not create workspaces in organization ${org}: that needs manage on organization ${org}`),
      );
      await refusal(c.directory.createWorkspace({ actor: "", organizationId: org, name: "X" }), Code.InvalidArgument, /^actor: is required/);
      await refusal(c.directory.createWorkspace({ actor: id("nobody"), organizationId: org, name: "X" }), Code.PermissionDenied, /may not create workspaces/);
      await refusal(c.directory.createWorkspace({ actor: ann, organizationId: org, workspaceId: emea, name: "Again" }), Code.AlreadyExists, new RegExp(`^workspace ${emea} already exists`));
      await refusal(
        c.directory.createWorkspace({ actor: ann, organizationId: org, name: "Orphan", parentWorkspaceId: id("ws-none") }),
        Code.NotFound,
        new RegExp(`^parent workspace ${id("ws-none")} does not exist`),
      );
      await refusal(
        c.directory.createWorkspace({ actor: ann, organizationId: org, name: "X", parentWorkspaceId: "no way" }),
        Code.InvalidArgument,
        /^parent_workspace_id: "no way" is not a valid id/,
      );
      await refusal(c.directory.createWorkspace({ actor: ann, organizationId: id("nowhere"), name: "X" }), Code.NotFound, new RegExp(`^organization ${id("nowhere")} does not exist`));
      await refusal(c.directory.getWorkspace({ workspaceId: id("ws-none") }), Code.NotFound, new RegExp(`^workspace ${id("ws-none")} does not exist`));
      await refusal(c.directory.listWorkspaces({ organizationId: id("nowhere") }), Code.NotFound, /does not exist/);
    });

    it("a parent workspace of another organization is refused", async () => {
      const founder = await newUser(id("hooli-admin"));
      await c.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: id("hooli"), name: "Hooli", adminUserIds: [founder] });
      await refusal(
        c.directory.createWorkspace({ actor: founder, organizationId: id("hooli"), workspaceId: id("ws-hooli"), name: "Hooli", parentWorkspaceId: emea }),
        Code.FailedPrecondition,
        new RegExp(`^parent workspace ${emea} belongs to organization ${org}, not ${id("hooli")}`),
      );
      await refusal(c.directory.getWorkspace({ workspaceId: id("ws-hooli") }), Code.NotFound, /does not exist/);
    });

    it("VIEW < ANALYZE < MANAGE: each level includes the ones before and reaches child workspaces", async () => {
      const set = (subject: string, level: WorkspaceLevel) =>
        c.directory.setWorkspacePermission({ actor: ann, workspaceId: emea, subject: user(subject), level });
      await set(bob, WorkspaceLevel.VIEW);
      await set(carol, WorkspaceLevel.ANALYZE);
      const { consistencyToken: token } = await set(dave, WorkspaceLevel.MANAGE);
      const permissions = ["view", "analyze", "manage"];
      const levels = async (subject: string, workspace: string) => {
        const answers = await allowedEach(permissions.map((permission) => [ws(workspace), permission, user(subject)]), token);
        return permissions.filter((_, i) => answers[i]);
      };
      for (const workspace of [emea, sales]) {
        expect(await levels(bob, workspace)).toEqual(["view"]);
        expect(await levels(carol, workspace)).toEqual(["view", "analyze"]);
        expect(await levels(dave, workspace)).toEqual(["view", "analyze", "manage"]);
        expect(await levels(outsider, workspace)).toEqual([]);
      }
      const listed = await c.directory.listWorkspacePermissions({ workspaceId: emea });
      expect(listed.permissions.map((x) => [x.subject?.id, x.level])).toEqual([
        [bob, WorkspaceLevel.VIEW],
        [carol, WorkspaceLevel.ANALYZE],
        [dave, WorkspaceLevel.MANAGE],
      ]);
      // Direct grants only: the child lists none of its parent's.
      expect((await c.directory.listWorkspacePermissions({ workspaceId: sales })).permissions).toEqual([]);

      // Setting a level again replaces it.
      const raised = await set(bob, WorkspaceLevel.ANALYZE);
      expect(await allowed(ws(emea), "analyze", user(bob), raised.consistencyToken)).toBe(true);
      const lowered = await set(bob, WorkspaceLevel.VIEW);
      expect(await allowed(ws(emea), "analyze", user(bob), lowered.consistencyToken)).toBe(false);
      const again = await c.directory.listWorkspacePermissions({ workspaceId: emea });
      expect(again.permissions.filter((x) => x.subject?.id === bob).map((x) => x.level)).toEqual([WorkspaceLevel.VIEW]);
    });

    it("a MANAGE holder manages permissions; VIEW and ANALYZE holders may not", async () => {
      // dave holds MANAGE on emea (previous test); grants on the child work through the hierarchy.
      const granted = await c.directory.setWorkspacePermission({ actor: dave, workspaceId: sales, subject: user(outsider), level: WorkspaceLevel.VIEW });
      expect(await allowed(ws(sales), "view", user(outsider), granted.consistencyToken)).toBe(true);
      expect(await allowed(ws(emea), "view", user(outsider), granted.consistencyToken)).toBe(false);
      for (const actor of [bob, carol, outsider]) {
        await refusal(
          c.directory.setWorkspacePermission({ actor, workspaceId: sales, subject: user(actor), level: WorkspaceLevel.MANAGE }),
          Code.PermissionDenied,
          new RegExp(`^user ${actor} may not change who may use workspace ${sales}: that needs change_permissions on workspace ${sales}`),
        );
      }
      const removed = await c.directory.removeWorkspacePermission({ actor: dave, workspaceId: sales, subject: user(outsider) });
      expect(await allowed(ws(sales), "view", user(outsider), removed.consistencyToken)).toBe(false);
      await refusal(
        c.directory.removeWorkspacePermission({ actor: dave, workspaceId: sales, subject: user(outsider) }),
        Code.NotFound,
        new RegExp(`^a permission of user ${outsider} on workspace ${sales} does not exist`),
      );
    });

    it("R42: a workspace level must be given; subjects and workspaces are checked", async () => {
      await refusal(
        c.directory.setWorkspacePermission({ actor: ann, workspaceId: emea, subject: user(bob), level: WorkspaceLevel.UNSPECIFIED }),
        Code.InvalidArgument,
        /^level: one of WORKSPACE_LEVEL_VIEW, WORKSPACE_LEVEL_ANALYZE, WORKSPACE_LEVEL_MANAGE is required/,
      );
      await refusal(
        c.directory.setWorkspacePermission({ actor: ann, workspaceId: emea, subject: user(bob), level: 7 as WorkspaceLevel }),
        Code.InvalidArgument,
        /^level:/,
      );
      await refusal(c.directory.setWorkspacePermission({ actor: ann, workspaceId: emea, level: WorkspaceLevel.VIEW }), Code.InvalidArgument, /^subject: is required/);
      await refusal(
        c.directory.setWorkspacePermission({ actor: ann, workspaceId: emea, subject: { type: "organization", id: org, relation: "member" }, level: WorkspaceLevel.VIEW }),
        Code.InvalidArgument,
        /^subject\.type:/,
      );
      await refusal(
        c.directory.setWorkspacePermission({ actor: ann, workspaceId: emea, subject: user(id("ghost")), level: WorkspaceLevel.VIEW }),
        Code.NotFound,
        new RegExp(`^user ${id("ghost")} does not exist`),
      );
      await refusal(
        c.directory.setWorkspacePermission({ actor: ann, workspaceId: emea, subject: group(id("g-none")), level: WorkspaceLevel.VIEW }),
        Code.NotFound,
        new RegExp(`^group ${id("g-none")} does not exist`),
      );
      await refusal(
        c.directory.setWorkspacePermission({ actor: ann, workspaceId: id("ws-none"), subject: user(bob), level: WorkspaceLevel.VIEW }),
        Code.NotFound,
        new RegExp(`^workspace ${id("ws-none")} does not exist`),
      );
      await refusal(
        c.directory.setWorkspacePermission({ actor: ann, workspaceId: "", subject: user(bob), level: WorkspaceLevel.VIEW }),
        Code.InvalidArgument,
        /^workspace_id: is required/,
      );
      await refusal(c.directory.listWorkspacePermissions({ workspaceId: id("ws-none") }), Code.NotFound, /does not exist/);
    });

    it("R7: guests view the workspace and all its content, and lose it when removed", async () => {
      const guest = await newUser(id("guest"));
      const added = await c.directory.addWorkspaceGuest({ actor: ann, workspaceId: emea, subject: user(guest) });
      expect(await allowed(ws(emea), "view", user(guest), added.consistencyToken)).toBe(true);
      expect(await allowed(ws(emea), "view_all_content", user(guest), added.consistencyToken)).toBe(true);
      expect(await allowed(ws(emea), "analyze", user(guest), added.consistencyToken)).toBe(false);
      expect((await c.directory.listWorkspacePermissions({ workspaceId: emea })).guests).toEqual([expect.objectContaining(user(guest))]);

      await refusal(c.directory.addWorkspaceGuest({ actor: carol, workspaceId: emea, subject: user(outsider) }), Code.PermissionDenied, /may not change who may use workspace/);
      const removed = await c.directory.removeWorkspaceGuest({ actor: ann, workspaceId: emea, subject: user(guest) });
      expect(await allowed(ws(emea), "view", user(guest), removed.consistencyToken)).toBe(false);
      expect((await c.directory.listWorkspacePermissions({ workspaceId: emea })).guests).toEqual([]);
      await refusal(
        c.directory.removeWorkspaceGuest({ actor: ann, workspaceId: emea, subject: user(guest) }),
        Code.NotFound,
        new RegExp(`^guest access of user ${guest} on workspace ${emea} does not exist`),
      );
    });

    it("R6: SEE makes a user or group eligible without giving access", async () => {
      const seer = await newUser(id("seer"));
      await c.directory.createGroup({ actor: ann, organizationId: org, groupId: id("g-seers"), name: "Seers" });
      await c.directory.addGroupMember({ actor: ann, groupId: id("g-seers"), member: user(carol) });
      await c.directory.grantWorkspaceSee({ actor: ann, workspaceId: sales, subject: user(seer) });
      const granted = await c.directory.grantWorkspaceSee({ actor: ann, workspaceId: sales, subject: group(id("g-seers")) });
      const token = granted.consistencyToken;
      expect(await allowed(ws(sales), "eligible", user(seer), token)).toBe(true);
      expect(await allowed(ws(sales), "eligible_native", user(seer), token)).toBe(true);
      expect(await allowed(ws(sales), "view", user(seer), token)).toBe(false);
      expect(await allowed(ws(emea), "eligible", user(seer), token)).toBe(false);
      const listed = await c.directory.listWorkspacePermissions({ workspaceId: sales });
      expect(listed.see.map((s) => ({ type: s.type, id: s.id, relation: s.relation }))).toEqual([user(seer), group(id("g-seers"))]);

      await refusal(c.directory.grantWorkspaceSee({ actor: bob, workspaceId: sales, subject: user(seer) }), Code.PermissionDenied, /may not change who may use workspace/);
      const revoked = await c.directory.revokeWorkspaceSee({ actor: ann, workspaceId: sales, subject: user(seer) });
      expect(await allowed(ws(sales), "eligible", user(seer), revoked.consistencyToken)).toBe(false);
      await refusal(
        c.directory.revokeWorkspaceSee({ actor: ann, workspaceId: sales, subject: user(seer) }),
        Code.NotFound,
        new RegExp(`^SEE of user ${seer} on workspace ${sales} does not exist`),
      );
    });

    it("DeleteWorkspace removes the workspace, its child workspaces and their grants", async () => {
      const [top, child] = [id("ws-top"), id("ws-top-child")];
      await c.directory.createWorkspace({ actor: ann, organizationId: org, workspaceId: top, name: "Top" });
      await c.directory.createWorkspace({ actor: ann, organizationId: org, workspaceId: child, name: "Child", parentWorkspaceId: top });
      await c.directory.setWorkspacePermission({ actor: ann, workspaceId: child, subject: user(bob), level: WorkspaceLevel.ANALYZE });
      const granted = await c.directory.addWorkspaceGuest({ actor: ann, workspaceId: top, subject: user(outsider) });
      expect(await allowed(ws(child), "view", user(outsider), granted.consistencyToken)).toBe(true);

      await refusal(c.directory.deleteWorkspace({ actor: bob, workspaceId: top }), Code.PermissionDenied, new RegExp(`may not delete workspace ${top}`));
      const deleted = await c.directory.deleteWorkspace({ actor: ann, workspaceId: top });
      for (const [workspace, subject] of [
        [top, outsider],
        [child, outsider],
        [child, bob],
        [child, ann],
      ] as const) {
        expect(await allowed(ws(workspace), "view", user(subject), deleted.consistencyToken)).toBe(false);
      }
      await refusal(c.directory.getWorkspace({ workspaceId: child }), Code.NotFound, new RegExp(`^workspace ${child} does not exist`));
      await refusal(c.directory.deleteWorkspace({ actor: ann, workspaceId: top }), Code.NotFound, /does not exist/);
    });
  });

  describe("entities", () => {
    const unit = id("ent-emea");

    it("R40: an org admin creates entities and manages their members; ListEntities counts them", async () => {
      const created = await c.directory.createEntity({ actor: ann, organizationId: org, entityId: unit, name: " EMEA unit " });
      expect(created.entity).toEqual(expect.objectContaining({ id: unit, organizationId: org, name: "EMEA unit", memberCount: 0 }));
      await c.directory.createEntity({ actor: ann, organizationId: org, entityId: id("ent-apac"), name: "APAC unit" });
      for (const u of [bob, carol, dave]) await c.directory.addEntityMember({ actor: ann, entityId: unit, userId: u });
      // Adding again is a no-op.
      const again = await c.directory.addEntityMember({ actor: ann, entityId: unit, userId: bob });
      expect(again.consistencyToken).not.toBe("");

      const first = await c.directory.listEntityMembers({ entityId: unit, page: { pageSize: 2 } });
      const second = await c.directory.listEntityMembers({ entityId: unit, page: { pageSize: 2, pageToken: first.nextPageToken } });
      expect([...first.users, ...second.users].map((u) => u.id)).toEqual([bob, carol, dave]);
      expect(second.nextPageToken).toBe("");

      const entities = await c.directory.listEntities({ organizationId: org, page: { pageSize: 1 } });
      expect(entities.entities.map((e) => [e.id, e.memberCount])).toEqual([[id("ent-apac"), 0]]);
      const more = await c.directory.listEntities({ organizationId: org, page: { pageSize: 1, pageToken: entities.nextPageToken } });
      expect(more.entities.map((e) => [e.id, e.memberCount])).toEqual([[unit, 3]]);

      const removed = await c.directory.removeEntityMember({ actor: ann, entityId: unit, userId: dave });
      expect(removed.consistencyToken).not.toBe("");
      expect((await c.directory.listEntityMembers({ entityId: unit })).users.map((u) => u.id)).toEqual([bob, carol]);
      // The entity's admins are the org's: checked in the graph.
      expect(await allowed({ type: "entity", id: unit }, "manage", user(ann), removed.consistencyToken)).toBe(true);
      expect(await allowed({ type: "entity", id: unit }, "manage", user(bob), removed.consistencyToken)).toBe(false);
    });

    it("refuses members from outside the organization, and actors without the right", async () => {
      await refusal(
        c.directory.addEntityMember({ actor: ann, entityId: unit, userId: outsider }),
        Code.FailedPrecondition,
        new RegExp(`^user ${outsider} is not a member of organization ${org}, which entity ${unit} belongs to`),
      );
      await refusal(c.directory.addEntityMember({ actor: bob, entityId: unit, userId: dave }), Code.PermissionDenied, new RegExp(`^user ${bob} may not change members of entity ${unit}`));
      await refusal(c.directory.createEntity({ actor: bob, organizationId: org, name: "Bob's" }), Code.PermissionDenied, /may not create entities/);
      await refusal(c.directory.createEntity({ actor: ann, organizationId: org, entityId: unit, name: "Again" }), Code.AlreadyExists, new RegExp(`^entity ${unit} already exists`));
      await refusal(c.directory.addEntityMember({ actor: ann, entityId: id("ent-none"), userId: bob }), Code.NotFound, new RegExp(`^entity ${id("ent-none")} does not exist`));
      await refusal(c.directory.addEntityMember({ actor: ann, entityId: unit, userId: id("ghost") }), Code.NotFound, new RegExp(`^user ${id("ghost")} does not exist`));
      await refusal(c.directory.removeEntityMember({ actor: ann, entityId: unit, userId: outsider }), Code.NotFound, new RegExp(`^user ${outsider} as a member of entity ${unit} does not exist`));
      await refusal(c.directory.addEntityMember({ actor: ann, entityId: "bad id", userId: bob }), Code.InvalidArgument, /^entity_id: "bad id" is not a valid id/);
      await refusal(c.directory.listEntityMembers({ entityId: id("ent-none") }), Code.NotFound, /does not exist/);
      await refusal(c.directory.listEntities({ organizationId: id("nowhere") }), Code.NotFound, /does not exist/);
    });

    it("DeleteEntity removes it and its memberships", async () => {
      const temp = id("ent-temp");
      await c.directory.createEntity({ actor: ann, organizationId: org, entityId: temp, name: "Temp" });
      await c.directory.addEntityMember({ actor: ann, entityId: temp, userId: carol });
      await refusal(c.directory.deleteEntity({ actor: carol, entityId: temp }), Code.PermissionDenied, new RegExp(`may not delete entity ${temp}`));
      const deleted = await c.directory.deleteEntity({ actor: ann, entityId: temp });
      expect(await allowed({ type: "entity", id: temp }, "manage", user(ann), deleted.consistencyToken)).toBe(false);
      await refusal(c.directory.listEntityMembers({ entityId: temp }), Code.NotFound, new RegExp(`^entity ${temp} does not exist`));
      expect((await c.directory.listEntities({ organizationId: org })).entities.map((e) => e.id)).not.toContain(temp);
    });
  });

  describe("deletion cascades", () => {
    it("DeleteUser refuses to delete a platform admin, or an organization's last admin", async () => {
      await refusal(c.directory.deleteUser({ actor: PLATFORM_ADMIN, userId: PLATFORM_ADMIN }), Code.FailedPrecondition, /is a platform admin \(SHAREGRAPH_PLATFORM_ADMINS\)/);
      const solo = await newUser(id("solo-admin"));
      const soloOrg = id("solo-org");
      await c.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: soloOrg, name: "Solo", adminUserIds: [solo] });
      await refusal(c.directory.deleteUser({ actor: PLATFORM_ADMIN, userId: solo }), Code.FailedPrecondition, new RegExp(`^user ${solo} is the last admin of organization ${soloOrg}`));
      await c.directory.addOrganizationMember({ actor: solo, organizationId: soloOrg, userId: bob, admin: true });
      await c.directory.deleteUser({ actor: PLATFORM_ADMIN, userId: solo });
      await refusal(c.directory.getUser({ userId: solo }), Code.NotFound, new RegExp(`^user ${solo} does not exist`));
    });

    it("CreateUser refuses a display name over 200 characters", async () => {
      await refusal(
        c.directory.createUser({ actor: PLATFORM_ADMIN, userId: id("longname"), email: `${id("longname")}@acme.example`, displayName: "x".repeat(201) }),
        Code.InvalidArgument,
        /^display_name: at most 200 characters/,
      );
    });

    it("DeleteUser removes every membership and grant that names the user", async () => {
      const gone = await newUser(id("leaver"));
      const [team, wsA, wsB, wsC, ent] = [id("g-leaver"), id("ws-leaver-a"), id("ws-leaver-b"), id("ws-leaver-c"), id("ent-leaver")];
      await c.directory.addOrganizationMember({ actor: ann, organizationId: org, userId: gone });
      await c.directory.createGroup({ actor: ann, organizationId: org, groupId: team, name: "Leaver's team" });
      await c.directory.addGroupMember({ actor: ann, groupId: team, member: user(gone) });
      await c.directory.addGroupMember({ actor: ann, groupId: team, member: user(bob) });
      for (const w of [wsA, wsB, wsC]) await c.directory.createWorkspace({ actor: ann, organizationId: org, workspaceId: w, name: w });
      await c.directory.setWorkspacePermission({ actor: ann, workspaceId: wsA, subject: user(gone), level: WorkspaceLevel.MANAGE });
      await c.directory.setWorkspacePermission({ actor: ann, workspaceId: wsC, subject: group(team), level: WorkspaceLevel.VIEW });
      await c.directory.addWorkspaceGuest({ actor: ann, workspaceId: wsB, subject: user(gone) });
      await c.directory.grantWorkspaceSee({ actor: ann, workspaceId: wsC, subject: user(gone) });
      await c.directory.createEntity({ actor: ann, organizationId: org, entityId: ent, name: "Leaver unit" });
      const before = await c.directory.addEntityMember({ actor: ann, entityId: ent, userId: gone });
      const acme = { type: "organization", id: org };
      const questions: Array<[{ type: string; id: string }, string]> = [
        [ws(wsA), "manage"],
        [ws(wsB), "view"],
        [ws(wsC), "view"],
        [ws(wsC), "eligible"],
        [acme, "view_insights"],
      ];
      const ask = (token: string) => allowedEach(questions.map(([resource, permission]) => [resource, permission, user(gone)]), token);
      expect(await ask(before.consistencyToken)).toEqual(questions.map(() => true));

      await refusal(c.directory.deleteUser({ actor: ann, userId: gone }), Code.PermissionDenied, new RegExp(`^user ${ann} may not delete users`));
      const deleted = await c.directory.deleteUser({ actor: PLATFORM_ADMIN, userId: gone });
      expect(await ask(deleted.consistencyToken)).toEqual(questions.map(() => false));
      // Others keep what they had through the same group.
      expect(await allowed(ws(wsC), "view", user(bob), deleted.consistencyToken)).toBe(true);

      expect((await c.directory.listGroupMembers({ groupId: team })).members.map((m) => m.id)).toEqual([bob]);
      const members = await c.directory.listOrganizationMembers({ organizationId: org, page: { pageSize: 1000 } });
      expect(members.members.map((m) => m.user?.id)).not.toContain(gone);
      for (const w of [wsA, wsB, wsC]) {
        const access = await c.directory.listWorkspacePermissions({ workspaceId: w });
        expect([...access.permissions.map((x) => x.subject?.id), ...access.guests.map((s) => s.id), ...access.see.map((s) => s.id)]).not.toContain(gone);
      }
      expect((await c.directory.listEntityMembers({ entityId: ent })).users).toEqual([]);
      await refusal(c.directory.getUser({ userId: gone }), Code.NotFound, new RegExp(`^user ${gone} does not exist`));
      await refusal(c.directory.deleteUser({ actor: PLATFORM_ADMIN, userId: gone }), Code.NotFound, new RegExp(`^user ${gone} does not exist`));
      // The email is free again.
      const back = await c.directory.createUser({ actor: PLATFORM_ADMIN, userId: id("returner"), email: `${gone}@acme.example` });
      expect(back.user?.email).toBe(`${gone}@acme.example`);
    });

    it("DeleteOrganization removes everything it owns, leaving no relationship behind", async () => {
      const [boss, staff] = [await newUser(id("wayne-boss")), await newUser(id("wayne-staff"))];
      const wayne = id("wayne");
      await c.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: wayne, name: "Wayne", channelPartner: true, adminUserIds: [boss] });
      await c.directory.addOrganizationMember({ actor: boss, organizationId: wayne, userId: staff });
      await c.directory.createGroup({ actor: boss, organizationId: wayne, groupId: id("g-wayne-outer"), name: "Outer" });
      await c.directory.createGroup({ actor: boss, organizationId: wayne, groupId: id("g-wayne-inner"), name: "Inner" });
      await c.directory.addGroupMember({ actor: boss, groupId: id("g-wayne-outer"), member: group(id("g-wayne-inner")) });
      await c.directory.addGroupMember({ actor: boss, groupId: id("g-wayne-inner"), member: user(staff) });
      await c.directory.createWorkspace({ actor: boss, organizationId: wayne, workspaceId: id("ws-wayne"), name: "Gotham" });
      await c.directory.createWorkspace({ actor: boss, organizationId: wayne, workspaceId: id("ws-wayne-kid"), name: "Kid", parentWorkspaceId: id("ws-wayne") });
      await c.directory.setWorkspacePermission({ actor: boss, workspaceId: id("ws-wayne"), subject: group(id("g-wayne-outer")), level: WorkspaceLevel.ANALYZE });
      await c.directory.addWorkspaceGuest({ actor: boss, workspaceId: id("ws-wayne-kid"), subject: user(outsider) });
      await c.directory.grantWorkspaceSee({ actor: boss, workspaceId: id("ws-wayne"), subject: user(outsider) });
      await c.directory.createEntity({ actor: boss, organizationId: wayne, entityId: id("ent-wayne"), name: "Unit" });
      const before = await c.directory.addEntityMember({ actor: boss, entityId: id("ent-wayne"), userId: staff });
      expect(await allowed(ws(id("ws-wayne-kid")), "analyze", user(staff), before.consistencyToken)).toBe(true);

      await refusal(c.directory.deleteOrganization({ actor: boss, organizationId: wayne }), Code.PermissionDenied, /may not delete organizations/);
      const deleted = await c.directory.deleteOrganization({ actor: PLATFORM_ADMIN, organizationId: wayne });
      const after = await allowedEach(
        [
          [ws(id("ws-wayne-kid")), "view", user(staff)],
          [ws(id("ws-wayne-kid")), "view", user(outsider)],
          [ws(id("ws-wayne")), "eligible", user(outsider)],
          [ws(id("ws-wayne")), "manage", user(boss)],
          [{ type: "organization", id: wayne }, "channel_partner_member", user(staff)],
          [{ type: "organization", id: wayne }, "manage", user(PLATFORM_ADMIN)],
        ],
        deleted.consistencyToken,
      );
      expect(after).toEqual([false, false, false, false, false, false]);

      await refusal(c.directory.getOrganization({ organizationId: wayne }), Code.NotFound, new RegExp(`^organization ${wayne} does not exist`));
      await refusal(c.directory.getWorkspace({ workspaceId: id("ws-wayne-kid") }), Code.NotFound, /does not exist/);
      await refusal(c.directory.listGroupMembers({ groupId: id("g-wayne-inner") }), Code.NotFound, /does not exist/);
      await refusal(c.directory.listEntityMembers({ entityId: id("ent-wayne") }), Code.NotFound, /does not exist/);
      // People are not owned by organizations.
      expect((await c.directory.getUser({ userId: staff })).user?.id).toBe(staff);

      const drift = await c.admin.reconcile({ dryRun: true });
      expect({ missing: drift.missing, extra: drift.extra, missingExamples: drift.missingExamples, extraExamples: drift.extraExamples }).toEqual({
        missing: 0,
        extra: 0,
        missingExamples: [],
        extraExamples: [],
      });
      expect(drift.actualRelationships).toBe(drift.expectedRelationships);
      expect(drift.expectedRelationships).toBeGreaterThan(0);
    });
  });

  describe("R40 on every mutating call", () => {
    /** Each mutating RPC with valid arguments, given an actor. */
    const calls = (actor: string): Array<[string, () => Promise<unknown>]> => [
      ["CreateUser", () => c.directory.createUser({ actor, email: `${id("r40")}@acme.example` })],
      ["DeleteUser", () => c.directory.deleteUser({ actor, userId: bob })],
      ["CreateOrganization", () => c.directory.createOrganization({ actor, name: "R40" })],
      ["SetChannelPartner", () => c.directory.setChannelPartner({ actor, organizationId: org, channelPartner: true })],
      ["DeleteOrganization", () => c.directory.deleteOrganization({ actor, organizationId: org })],
      ["AddOrganizationMember", () => c.directory.addOrganizationMember({ actor, organizationId: org, userId: outsider })],
      ["RemoveOrganizationMember", () => c.directory.removeOrganizationMember({ actor, organizationId: org, userId: bob })],
      ["CreateGroup", () => c.directory.createGroup({ actor, organizationId: org, name: "R40" })],
      ["DeleteGroup", () => c.directory.deleteGroup({ actor, groupId: id("g-alpha") })],
      ["AddGroupMember", () => c.directory.addGroupMember({ actor, groupId: id("g-alpha"), member: user(outsider) })],
      ["RemoveGroupMember", () => c.directory.removeGroupMember({ actor, groupId: id("g-outer"), member: user(bob) })],
      ["CreateWorkspace", () => c.directory.createWorkspace({ actor, organizationId: org, name: "R40" })],
      ["DeleteWorkspace", () => c.directory.deleteWorkspace({ actor, workspaceId: id("ws-emea") })],
      ["SetWorkspacePermission", () => c.directory.setWorkspacePermission({ actor, workspaceId: id("ws-emea"), subject: user(outsider), level: WorkspaceLevel.MANAGE })],
      ["RemoveWorkspacePermission", () => c.directory.removeWorkspacePermission({ actor, workspaceId: id("ws-emea"), subject: user(dave) })],
      ["AddWorkspaceGuest", () => c.directory.addWorkspaceGuest({ actor, workspaceId: id("ws-emea"), subject: user(outsider) })],
      ["RemoveWorkspaceGuest", () => c.directory.removeWorkspaceGuest({ actor, workspaceId: id("ws-emea"), subject: user(outsider) })],
      ["GrantWorkspaceSee", () => c.directory.grantWorkspaceSee({ actor, workspaceId: id("ws-emea"), subject: user(outsider) })],
      ["RevokeWorkspaceSee", () => c.directory.revokeWorkspaceSee({ actor, workspaceId: id("ws-emea-sales"), subject: group(id("g-seers")) })],
      ["CreateEntity", () => c.directory.createEntity({ actor, organizationId: org, name: "R40" })],
      ["DeleteEntity", () => c.directory.deleteEntity({ actor, entityId: id("ent-emea") })],
      ["AddEntityMember", () => c.directory.addEntityMember({ actor, entityId: id("ent-emea"), userId: dave })],
      ["RemoveEntityMember", () => c.directory.removeEntityMember({ actor, entityId: id("ent-emea"), userId: bob })],
    ];

    it("every mutating RPC of the service is covered here", () => {
      const mutating = DirectoryService.methods.map((m) => m.name).filter((name) => !/^(Get|List)[A-Z]/.test(name));
      expect(calls("x").map(([name]) => name).sort()).toEqual(mutating.sort());
    });

    it("a missing actor is INVALID_ARGUMENT naming actor", async () => {
      for (const [name, call] of calls("")) {
        const err = await codeOf(call());
        expect([name, Code[err.code], err.message]).toEqual([name, "InvalidArgument", "actor: is required"]);
      }
    });

    it("an unknown actor, or a plain member, is PERMISSION_DENIED and changes nothing", async () => {
      for (const actor of [id("nobody"), bob]) {
        for (const [name, call] of calls(actor)) {
          const err = await codeOf(call());
          expect([name, Code[err.code], err.message]).toEqual([name, "PermissionDenied", expect.stringMatching(new RegExp(`^user ${actor} may not `))]);
        }
      }
      // Everything named above is still there.
      expect((await c.directory.getOrganization({ organizationId: org })).organization?.channelPartner).toBe(false);
      expect((await c.directory.getWorkspace({ workspaceId: id("ws-emea") })).workspace?.id).toBe(id("ws-emea"));
      expect((await c.directory.listEntityMembers({ entityId: id("ent-emea") })).users.map((u) => u.id)).toEqual([bob, carol]);
    });
  });
});
