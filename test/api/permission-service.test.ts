import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Role } from "../../src/gen/sharegraph/v1/common_pb.js";
import { WorkspaceLevel } from "../../src/gen/sharegraph/v1/directory_service_pb.js";
import { Decision } from "../../src/gen/sharegraph/v1/permission_service_pb.js";
import { CHECK_KEY, PLATFORM_ADMIN, startTestServer, type ClientKind, type Clients, type TestServer } from "../support/server.js";
import { codeOf, collect, fresh, user } from "../support/rpc.js";

const ws = (id: string) => ({ type: "workspace", id });



let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.stop();
});

describe.each<ClientKind>(["connect", "grpc-js"])("PermissionService over %s", (kind) => {
  let c: Clients;
  let p: string;
  let token: string;

  beforeAll(async () => {
    c = server.clients(kind);
    p = kind === "connect" ? "c" : "g";
    const d = c.directory;
    for (const id of ["alice", "bob", "carol", "dave"]) {
      await d.createUser({ actor: PLATFORM_ADMIN, userId: `${p}-${id}`, email: `${p}-${id}@acme.example`, displayName: id });
    }
    await d.createOrganization({ actor: PLATFORM_ADMIN, organizationId: `${p}-acme`, name: "Acme", adminUserIds: [`${p}-alice`] });
    await d.createGroup({ actor: `${p}-alice`, organizationId: `${p}-acme`, groupId: `${p}-analysts`, name: "Analysts" });
    await d.addGroupMember({ actor: `${p}-alice`, groupId: `${p}-analysts`, member: user(`${p}-carol`) });
    await d.createWorkspace({ actor: `${p}-alice`, organizationId: `${p}-acme`, workspaceId: `${p}-emea`, name: "EMEA" });
    await d.createWorkspace({
      actor: `${p}-alice`,
      organizationId: `${p}-acme`,
      workspaceId: `${p}-emea-sales`,
      name: "EMEA Sales",
      parentWorkspaceId: `${p}-emea`,
    });
    await d.setWorkspacePermission({ actor: `${p}-alice`, workspaceId: `${p}-emea`, subject: user(`${p}-bob`), level: WorkspaceLevel.VIEW });
    const last = await d.setWorkspacePermission({
      actor: `${p}-alice`,
      workspaceId: `${p}-emea`,
      subject: { type: "group", id: `${p}-analysts`, relation: "member" },
      level: WorkspaceLevel.ANALYZE,
    });
    token = last.consistencyToken;
  });

  it("CheckPermission answers allowed and denied, with the token it was evaluated at", async () => {
    const yes = await c.permission.checkPermission({
      resource: ws(`${p}-emea-sales`),
      permission: "analyze",
      subject: user(`${p}-carol`),
      consistency: fresh(token),
    });
    expect(yes.allowed).toBe(true);
    expect(yes.consistencyToken).not.toBe("");
    const no = await c.permission.checkPermission({ resource: ws(`${p}-emea`), permission: "analyze", subject: user(`${p}-bob`), consistency: fresh(token) });
    expect(no.allowed).toBe(false);
  });

  it("issue 10: every answer carries an explicit decision, so a denial is visible in any client's JSON", async () => {
    const yes = await c.permission.checkPermission({ resource: ws(`${p}-emea-sales`), permission: "analyze", subject: user(`${p}-carol`), consistency: fresh(token) });
    const no = await c.permission.checkPermission({ resource: ws(`${p}-emea`), permission: "analyze", subject: user(`${p}-bob`), consistency: fresh(token) });
    expect([yes.decision, no.decision]).toEqual([Decision.ALLOWED, Decision.DENIED]);
    const bulk = await c.permission.checkBulkPermissions({
      items: [
        { resource: ws(`${p}-emea`), permission: "view", subject: user(`${p}-bob`) },
        { resource: ws(`${p}-emea`), permission: "manage", subject: user(`${p}-bob`) },
      ],
      consistency: fresh(token),
    });
    expect(bulk.results.map((r) => r.decision)).toEqual([Decision.ALLOWED, Decision.DENIED]);
    const explained = await c.permission.explainPermission({ resource: ws(`${p}-emea`), permission: "manage", subject: user(`${p}-bob`), consistency: fresh(token) });
    expect([explained.allowed, explained.decision]).toEqual([false, Decision.DENIED]);
  });

  it("R8: ExplainPermission names the workspace above that grants a permission held below it (one object per step, also when SpiceDB checked the workspaces above together)", async () => {
    const down = await c.permission.explainPermission({ resource: ws(`${p}-emea-sales`), permission: "analyze", subject: user(`${p}-carol`), consistency: fresh(token) });
    expect(down.allowed).toBe(true);
    expect(down.explanation).toContain(`workspace ${p}-emea is an ancestor workspace of workspace ${p}-emea-sales`);
    expect(down.explanation).toContain(`group ${p}-analysts has ANALYZE on workspace ${p}-emea`);
    const onItself = await c.permission.explainPermission({ resource: ws(`${p}-emea`), permission: "analyze", subject: user(`${p}-carol`), consistency: fresh(token) });
    expect(onItself.explanation).not.toContain("ancestor workspace");
  });

  it("R8: ExplainPermission names the role actually granted (editor to a group on the folder above), not the cumulative relation SpiceDB read", async () => {
    await c.content.createFolder({ actor: `${p}-alice`, workspaceId: `${p}-emea`, folderId: `${p}-plans`, name: "Plans" });
    await c.content.createContent({ actor: `${p}-alice`, kind: "dashboard", contentId: `${p}-budget`, name: "Budget", workspaceId: `${p}-emea`, folderId: `${p}-plans` });
    const shared = await c.content.share({ actor: `${p}-alice`, resource: { type: "folder", id: `${p}-plans` }, subject: { type: "group", id: `${p}-analysts`, relation: "member" }, role: Role.EDITOR });
    const viewing = await c.permission.explainPermission({ resource: { type: "dashboard", id: `${p}-budget` }, permission: "view", subject: user(`${p}-carol`), consistency: fresh(shared.consistencyToken) });
    expect(viewing.allowed).toBe(true);
    expect(viewing.explanation).toContain(`group ${p}-analysts is editor on folder ${p}-plans, and folder ${p}-plans contains dashboard ${p}-budget`);
    expect(viewing.explanation).toContain(`group ${p}-analysts has ANALYZE on workspace ${p}-emea`);
    expect(viewing.explanation).not.toMatch(/or more|_role|_level/);
  });

  it("R8: ExplainPermission names each nested group between a user and the grant, though SpiceDB holds only the closure; and explains a group's members as a subject", async () => {
    const erin = `${p}-erin`;
    const team = `${p}-emea-team`;
    await c.directory.createUser({ actor: PLATFORM_ADMIN, userId: erin, email: `${erin}@acme.example`, displayName: "Erin" });
    await c.directory.createGroup({ actor: `${p}-alice`, organizationId: `${p}-acme`, groupId: team, name: "EMEA team" });
    await c.directory.addGroupMember({ actor: `${p}-alice`, groupId: team, member: user(erin) });
    const nested = await c.directory.addGroupMember({ actor: `${p}-alice`, groupId: `${p}-analysts`, member: { type: "group", id: team, relation: "" } });
    const asUser = await c.permission.explainPermission({ resource: ws(`${p}-emea`), permission: "analyze", subject: user(erin), consistency: fresh(nested.consistencyToken) });
    expect(asUser.allowed).toBe(true);
    expect(asUser.explanation).toContain(`user ${erin} is a member of group ${team}, and group ${team} is a member of group ${p}-analysts, and group ${p}-analysts has ANALYZE on workspace ${p}-emea`);
    const asGroup = await c.permission.explainPermission({ resource: ws(`${p}-emea`), permission: "analyze", subject: { type: "group", id: team, relation: "member" }, consistency: fresh(nested.consistencyToken) });
    expect(asGroup.allowed).toBe(true);
    expect(asGroup.explanation).toContain(`group ${team} is a member of group ${p}-analysts, and group ${p}-analysts has ANALYZE on workspace ${p}-emea`);
    expect(asGroup.explanation).not.toContain("group|");
    const direct = await c.permission.explainPermission({ resource: ws(`${p}-emea`), permission: "analyze", subject: { type: "group", id: `${p}-analysts`, relation: "member" }, consistency: fresh(nested.consistencyToken) });
    expect(direct.explanation).toContain(`group ${p}-analysts has ANALYZE on workspace ${p}-emea`);
    expect(direct.explanation).not.toMatch(/is a member of group/);

    // The group's members as a subject, in checks and lookups, hold what a group containing it holds.
    const team$ = { type: "group", id: team, relation: "member" };
    const checked = await c.permission.checkPermission({ resource: ws(`${p}-emea-sales`), permission: "analyze", subject: team$, consistency: fresh(nested.consistencyToken) });
    expect(checked.allowed).toBe(true);
    const resources = await collect(c.permission.lookupResources({ resourceType: "workspace", permission: "analyze", subject: team$, consistency: fresh(nested.consistencyToken) }));
    expect(resources.map((r) => r.resourceId).sort()).toEqual([`${p}-emea`, `${p}-emea-sales`]);
    const groups = await collect(c.permission.lookupSubjects({ resource: ws(`${p}-emea`), permission: "analyze", subjectType: "group", consistency: fresh(nested.consistencyToken) }));
    expect(groups.map((g) => g.subjectId).sort()).toEqual([`${p}-analysts`, team].sort());
    const users = await collect(c.permission.lookupSubjects({ resource: ws(`${p}-emea`), permission: "analyze", subjectType: "user", consistency: fresh(nested.consistencyToken) }));
    expect(users.map((u) => u.subjectId).sort()).toEqual([`${p}-alice`, `${p}-carol`, erin].sort());

    // Un-nested: neither erin nor the team has it any more (and the tests below see the tenant as before).
    const cut = await c.directory.removeGroupMember({ actor: `${p}-alice`, groupId: `${p}-analysts`, member: { type: "group", id: team, relation: "" } });
    const after = await c.permission.checkBulkPermissions({ items: [user(erin), team$].map((subject) => ({ resource: ws(`${p}-emea`), permission: "analyze", subject })), consistency: fresh(cut.consistencyToken) });
    expect(after.results.map((r) => r.allowed)).toEqual([false, false]);
  });

  it("issue 10: ExplainPermission on an object that does not exist says so", async () => {
    const ghost = await c.permission.explainPermission({ resource: { type: "dashboard", id: `${p}-ghost` }, permission: "view", subject: user(`${p}-bob`), consistency: fresh(token) });
    expect([ghost.allowed, ghost.decision]).toEqual([false, Decision.DENIED]);
    expect(ghost.explanation).toBe(`User ${p}-bob cannot view dashboard ${p}-ghost: dashboard ${p}-ghost does not exist (check its type and id).`);
    const nobody = await c.permission.explainPermission({ resource: ws(`${p}-emea`), permission: "view", subject: user(`${p}-nobody`), consistency: fresh(token) });
    expect(nobody.explanation).toMatch(new RegExp(`user ${p}-nobody does not exist`));
  });

  it("issue 10: refusals list only the documented permissions and types", async () => {
    const permission = await codeOf(c.permission.checkPermission({ resource: { type: "dashboard", id: "x" }, permission: "fly", subject: user("x") }));
    expect(permission.message).toBe('permission: "fly" is not a permission of dashboard; known: manage, edit, explore, delete, share, view, interact');
    const type = await codeOf(c.permission.checkPermission({ resource: { type: "dashbord", id: "x" }, permission: "view", subject: user("x") }));
    expect(type.message).not.toMatch(/platform|partnership|service_account/);
    expect(type.message).toMatch(/known: user, organization, group, workspace, folder, report, board, dashboard, workbook/);
  });

  it("CheckPermission accepts group#member subjects", async () => {
    const r = await c.permission.checkPermission({
      resource: ws(`${p}-emea`),
      permission: "analyze",
      subject: { type: "group", id: `${p}-analysts`, relation: "member" },
      consistency: fresh(token),
    });
    expect(r.allowed).toBe(true);
  });

  it("a revoke followed by a check with the revoke's token never sees the old access", async () => {
    const granted = await c.directory.setWorkspacePermission({
      actor: `${p}-alice`,
      workspaceId: `${p}-emea`,
      subject: user(`${p}-dave`),
      level: WorkspaceLevel.MANAGE,
    });
    const before = await c.permission.checkPermission({ resource: ws(`${p}-emea`), permission: "manage", subject: user(`${p}-dave`), consistency: fresh(granted.consistencyToken) });
    expect(before.allowed).toBe(true);
    const revoked = await c.directory.removeWorkspacePermission({ actor: `${p}-alice`, workspaceId: `${p}-emea`, subject: user(`${p}-dave`) });
    // Later reads ask for at least this state: an older token would allow a snapshot from between the grant and the revoke.
    token = revoked.consistencyToken;
    const after = await c.permission.checkPermission({ resource: ws(`${p}-emea`), permission: "manage", subject: user(`${p}-dave`), consistency: fresh(revoked.consistencyToken) });
    expect(after.allowed).toBe(false);
  });

  it("CheckBulkPermissions answers every item in request order", async () => {
    const items = [
      { resource: ws(`${p}-emea`), permission: "view", subject: user(`${p}-bob`) },
      { resource: ws(`${p}-emea`), permission: "manage", subject: user(`${p}-bob`) },
      { resource: ws(`${p}-emea-sales`), permission: "view", subject: user(`${p}-carol`) },
      { resource: ws(`${p}-emea`), permission: "view", subject: user(`${p}-dave`) },
    ];
    const r = await c.permission.checkBulkPermissions({ items, consistency: fresh(token) });
    expect(r.results.map((x) => x.allowed)).toEqual([true, false, true, false]);
    expect(r.results.map((x) => x.item?.resource?.id)).toEqual(items.map((i) => i.resource.id));
    expect(r.consistencyToken).not.toBe("");
  });

  it("CheckBulkPermissions refuses more than 1,000 items and names the field", async () => {
    const item = { resource: ws(`${p}-emea`), permission: "view", subject: user(`${p}-bob`) };
    const err = await codeOf(c.permission.checkBulkPermissions({ items: Array.from({ length: 1001 }, () => item) }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toMatch(/^items: at most 1000/);
  });

  it("CheckBulkPermissions names the bad item's field", async () => {
    const err = await codeOf(
      c.permission.checkBulkPermissions({
        items: [
          { resource: ws(`${p}-emea`), permission: "view", subject: user(`${p}-bob`) },
          { resource: ws(`${p}-emea`), permission: "fly", subject: user(`${p}-bob`) },
        ],
      }),
    );
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toMatch(/^items\[1\]\.permission: "fly" is not a permission of workspace/);
  });

  it("LookupResources streams every workspace a user can view, and pages with the cursor", async () => {
    const all = await collect(
      c.permission.lookupResources({ resourceType: "workspace", permission: "view", subject: user(`${p}-carol`), consistency: fresh(token) }),
    );
    expect(all.map((r) => r.resourceId).sort()).toEqual([`${p}-emea`, `${p}-emea-sales`]);
    // A page resumes with the same request, plus the cursor of the last result.
    const request = { resourceType: "workspace", permission: "view", subject: user(`${p}-carol`), consistency: fresh(token), pageSize: 1 };
    const first = await collect(c.permission.lookupResources(request));
    expect(first).toHaveLength(1);
    const rest = await collect(c.permission.lookupResources({ ...request, cursor: first[0]!.cursor }));
    expect([...first, ...rest].map((r) => r.resourceId).sort()).toEqual([`${p}-emea`, `${p}-emea-sales`]);
  });

  it("LookupSubjects streams the users who can act, through groups", async () => {
    const subjects = await collect(
      c.permission.lookupSubjects({ resource: ws(`${p}-emea`), permission: "analyze", subjectType: "user", consistency: fresh(token) }),
    );
    expect(subjects.map((s) => s.subjectId).sort()).toEqual([`${p}-alice`, `${p}-carol`]);
  });

  it("R42: bad input is INVALID_ARGUMENT naming the field", async () => {
    const cases: Array<[() => Promise<unknown>, RegExp]> = [
      [() => c.permission.checkPermission({ permission: "view", subject: user("x") }), /^resource: is required/],
      [() => c.permission.checkPermission({ resource: { type: "dashbord", id: "q3" }, permission: "view", subject: user("x") }), /^resource\.type: unknown type "dashbord"/],
      [() => c.permission.checkPermission({ resource: ws("emea"), permission: "view", subject: user("bad id!") }), /^subject\.id: "bad id!" is not a valid id/],
      [() => c.permission.checkPermission({ resource: ws("emea"), permission: "view", subject: { type: "workspace", id: "x", relation: "" } }), /^subject\.type:/],
      [() => c.permission.checkPermission({ resource: ws("emea"), permission: "view", subject: user("group|analysts") }), /^subject\.id: user ids starting "group\|" are sharegraph's stand-ins for a group's members; ask about subject group "analysts" instead/],
      [() => c.permission.checkPermission({ resource: ws("emea"), permission: "parent", subject: user("x") }), /^permission: "parent" is not a permission of workspace/],
      [
        () => c.permission.checkPermission({ resource: ws("emea"), permission: "view", subject: user("x"), consistency: fresh("garbage!") }),
        /^consistency\.at_least_as_fresh:/,
      ],
      [() => collect(c.permission.lookupResources({ resourceType: "", permission: "view", subject: user("x") })), /^resource_type: is required/],
    ];
    for (const [call, message] of cases) {
      const err = await codeOf(call());
      expect(err.code, message.source).toBe(Code.InvalidArgument);
      expect(err.message).toMatch(message);
    }
  });

  it("R41: check-scoped keys may ask, but not change the directory", async () => {
    const checker = server.clients(kind, CHECK_KEY);
    const r = await checker.permission.checkPermission({ resource: ws(`${p}-emea`), permission: "view", subject: user(`${p}-bob`), consistency: fresh(token) });
    expect(r.allowed).toBe(true);
    const err = await codeOf(checker.directory.createUser({ actor: PLATFORM_ADMIN, email: `${p}-x@acme.example` }));
    expect(err.code).toBe(Code.PermissionDenied);
  });

  it("R41: no key or an unknown key is UNAUTHENTICATED", async () => {
    for (const key of [null, "not-a-key-at-all-xxxxxxxx"]) {
      const anonymous = server.clients(kind, key);
      const err = await codeOf(anonymous.permission.checkPermission({ resource: ws(`${p}-emea`), permission: "view", subject: user(`${p}-bob`) }));
      expect(err.code).toBe(Code.Unauthenticated);
    }
  });
});

describe("issue 10: Connect JSON over HTTP/1.1 (curl)", () => {
  it("prints a denial: {allowed: false, decision: DECISION_DENIED, …}, every field present", async () => {
    const res = await fetch(`${server.baseUrl}/sharegraph.v1.PermissionService/CheckPermission`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${CHECK_KEY}` },
      body: JSON.stringify({ resource: ws("nowhere"), permission: "view", subject: user("nobody"), consistency: { fullyConsistent: true } }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ allowed: false, decision: "DECISION_DENIED", consistencyToken: expect.any(String) });
  });
});
