import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app.js";
import { PLATFORM_ADMIN, startTestServer, type Clients, type TestServer } from "../support/server.js";
import { collect, fresh, user } from "../support/rpc.js";
import { parseRelationship } from "../../src/sync/relationship-text.js";

/*
 * VIEW_CHECKS_FROM=postgres: CheckPermission and CheckBulkPermissions of
 * `view` on content for users are answered from Postgres; everything else
 * still by SpiceDB. To tell who answered, one relationship is taken out of
 * SpiceDB behind sharegraph's back (as Reconcile would find it): SpiceDB then
 * says no where Postgres, the system of record, says yes.
 */

let server: TestServer;
let app: App;
let c: Clients;
let token: string;

const report = { type: "report", id: "vp-q3" };
const view = (userId: string, resource = report) => ({ resource, permission: "view", subject: user(userId) });

beforeAll(async () => {
  // A long staleness bound: remembered answers must give way to a write at once, not after a second.
  server = await startTestServer({ env: { VIEW_CHECKS_FROM: "postgres", READ_MAX_STALENESS_MS: "60000" } });
  app = server.app;
  c = server.clients();
  const { directory, catalog, sharing } = app.domain;
  for (const u of ["vp-ann", "vp-bob", "vp-cid"]) await directory.createUser(PLATFORM_ADMIN, { id: u, email: `${u}@vp.example`, displayName: u });
  await directory.createOrganization(PLATFORM_ADMIN, { id: "vp-org", name: "VP", channelPartner: false, adminUserIds: ["vp-ann"] });
  for (const u of ["vp-bob", "vp-cid"]) await directory.addOrganizationMember("vp-ann", "vp-org", { userId: u }, false);
  await directory.createGroup("vp-ann", "vp-org", { id: "vp-readers", name: "Readers" });
  await directory.addGroupMember("vp-ann", "vp-readers", { kind: "user", id: "vp-cid" });
  await directory.createWorkspace("vp-ann", "vp-org", { id: "vp-w", name: "W" });
  await directory.setWorkspacePermission("vp-ann", "vp-w", { kind: "user", id: "vp-bob" }, "view");
  await directory.setWorkspacePermission("vp-ann", "vp-w", { kind: "group", id: "vp-readers" }, "view");
  await catalog.createFolder("vp-ann", { workspaceId: "vp-w", id: "vp-f", name: "F" });
  await catalog.createContent("vp-ann", { kind: "report", workspaceId: "vp-w", id: "vp-q3", name: "Q3", folderId: "vp-f" });
  await catalog.createContent("vp-ann", { kind: "report", workspaceId: "vp-w", id: "vp-q4", name: "Q4", folderId: "vp-f" });
  await sharing.share("vp-ann", { type: "report", id: "vp-q4" }, { kind: "user", id: "vp-bob" }, "viewer");
  await sharing.share("vp-ann", { type: "folder", id: "vp-f" }, { kind: "group", id: "vp-readers" }, "viewer");
  token = (await sharing.share("vp-ann", report, { kind: "user", id: "vp-bob" }, "viewer")).token;
});

afterAll(async () => {
  await server?.stop();
});

describe("VIEW_CHECKS_FROM=postgres", () => {
  it("R1: CheckPermission(view) on content answers from Postgres: allowed through a grant or a group's folder grant, denied without, false for an unknown item", async () => {
    const ask = async (userId: string, resource = report) => (await c.permission.checkPermission({ ...view(userId, resource), consistency: fresh(token) })).allowed;
    expect([await ask("vp-bob"), await ask("vp-cid"), await ask("vp-ann"), await ask("vp-bob", { type: "report", id: "vp-nothing" })]).toEqual([true, true, true, false]);
    const outsider = await ask("vp-nobody");
    expect(outsider).toBe(false);
  });

  it("R1: Postgres answers view (checks and lookups) while SpiceDB answers every other permission and every group question", async () => {
    // bob's grant taken out of SpiceDB only: SpiceDB now denies him, Postgres (the record) still allows.
    for (const relation of ["viewer", "view_role"]) {
      await app.domain.engine.write([{ op: "delete", relationship: parseRelationship(`report:vp-q3#${relation}@user:vp-bob`) }]);
    }
    const consistency = { requirement: { case: "fullyConsistent" as const, value: true } };
    const one = await c.permission.checkPermission({ ...view("vp-bob"), consistency });
    expect(one.allowed).toBe(true);
    const bulk = await c.permission.checkBulkPermissions({ items: [view("vp-bob"), view("vp-cid")], consistency });
    expect(bulk.results.map((r) => r.allowed)).toEqual([true, true]);
    // A bulk that also asks something else goes to SpiceDB whole: one snapshot for all its answers.
    const mixed = await c.permission.checkBulkPermissions({ items: [view("vp-bob"), { ...view("vp-bob"), permission: "edit" }], consistency });
    expect(mixed.results.map((r) => r.allowed)).toEqual([false, false]);
    // interact is view on content (the schema says so): Postgres answers it too.
    const interact = await c.permission.checkPermission({ ...view("vp-bob"), permission: "interact", consistency });
    expect(interact.allowed).toBe(true);
    const members = await c.permission.checkPermission({
      resource: report,
      permission: "view",
      subject: { type: "group", id: "vp-readers", relation: "member" },
      consistency,
    });
    expect(members.allowed).toBe(true);
    // LookupResources too: both of bob's reports are listed (SpiceDB would list only vp-q4), whole or a page at a time.
    const lookup = (pageSize: number, cursor = "") =>
      collect(c.permission.lookupResources({ resourceType: "report", permission: "view", subject: user("vp-bob"), consistency, pageSize, cursor }));
    expect((await lookup(0)).map((r) => r.resourceId)).toEqual(["vp-q3", "vp-q4"]);
    const first = await lookup(1);
    expect(first.map((r) => r.resourceId)).toEqual(["vp-q3"]);
    const second = await lookup(1, first[0]!.cursor);
    expect(second.map((r) => r.resourceId)).toEqual(["vp-q4"]);
    expect(await lookup(1, second[0]!.cursor)).toEqual([]);
    // …while a group's members are looked up in SpiceDB.
    const forGroup = await collect(
      c.permission.lookupResources({ resourceType: "report", permission: "view", subject: { type: "group", id: "vp-readers", relation: "member" }, consistency }),
    );
    expect(forGroup.map((r) => r.resourceId).sort()).toEqual(["vp-q3", "vp-q4"]);
    await app.domain.index.reconcile(false);
  });

  it("consistency (the new enemy): a revoke followed by a check with the revoke's token never sees the old access, and the answer's token is accepted back", async () => {
    const revoked = await app.domain.sharing.unshare("vp-ann", report, { kind: "user", id: "vp-bob" });
    const after = await c.permission.checkPermission({ ...view("vp-bob"), consistency: fresh(revoked.token) });
    expect(after.allowed).toBe(false);
    expect(after.consistencyToken).not.toBe("");
    const again = await c.permission.checkPermission({ ...view("vp-bob"), consistency: fresh(after.consistencyToken) });
    expect(again.allowed).toBe(false);
    const bulk = await c.permission.checkBulkPermissions({ items: [view("vp-bob"), view("vp-cid")], consistency: fresh(revoked.token) });
    expect(bulk.results.map((r) => r.allowed)).toEqual([false, true]);
  });

  it("R1, issue 8: a repeated view question is answered from memory, a fully consistent one never, and a revoke through the gateway is seen by the next minimize_latency check", async () => {
    const stats = app.viewDecisions!.stats;
    const q4 = { type: "report", id: "vp-q4" };
    const ask = async (consistency?: { requirement: { case: "fullyConsistent"; value: true } }) =>
      (await c.permission.checkPermission({ ...view("vp-bob", q4), ...(consistency ? { consistency } : {}) })).allowed;
    expect(await ask()).toBe(true);
    const hits = stats.hits;
    expect(await ask()).toBe(true);
    expect(stats.hits).toBe(hits + 1);
    const before = { ...stats };
    expect(await ask({ requirement: { case: "fullyConsistent", value: true } })).toBe(true);
    expect(stats).toEqual(before);
    await app.domain.sharing.unshare("vp-ann", q4, { kind: "user", id: "vp-bob" });
    expect(await ask()).toBe(false);
    expect(await ask({ requirement: { case: "fullyConsistent", value: true } })).toBe(false);
  });
});
