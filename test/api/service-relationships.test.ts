/**
 * Partner accounts through service relationships over a real server: seed
 * 002, rules R30–R33 (with R40, R41, R42) of DESIGN.md.
 *
 * One server for the file; each scenario builds its own provider (finco:
 * pete admin, pam member) and consumer organization (shopco: eve admin; its
 * entity retail_emea with uma, una, ulf; entity retail_us with vera) under
 * its own id prefix. Access is asked of the permission index
 * (account#access) at the token of the change it follows.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AssignmentMode } from "../../src/gen/sharegraph/v1/service_relationship_service_pb.js";
import { kyselyOf } from "../store/helpers.js";
import { CHECK_KEY, PLATFORM_ADMIN, startTestServer, type Clients, type TestServer } from "../support/server.js";
import { fresh, refusal, user, writeTokens } from "../support/rpc.js";

const exec = promisify(execFile);

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

async function person(id: string, displayName = id): Promise<void> {
  await wrote(c.directory.createUser({ actor: PLATFORM_ADMIN, userId: id, email: `${id}@example.com`, displayName }));
}

async function organization(id: string, admin: string, members: string[]): Promise<void> {
  await wrote(c.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: id, name: `Org ${id}`, adminUserIds: [admin] }));
  for (const m of members) await wrote(c.directory.addOrganizationMember({ actor: admin, organizationId: id, userId: m }));
}

async function entity(id: string, organizationId: string, admin: string, members: string[]): Promise<void> {
  await wrote(c.directory.createEntity({ actor: admin, organizationId, entityId: id, name: `Entity ${id}` }));
  for (const m of members) await wrote(c.directory.addEntityMember({ actor: admin, entityId: id, userId: m }));
}

async function world(p: string) {
  const w = {
    finco: `${p}-finco`,
    shopco: `${p}-shopco`,
    emea: `${p}-emea`,
    us: `${p}-us`,
    pete: `${p}-pete`,
    pam: `${p}-pam`,
    eve: `${p}-eve`,
    uma: `${p}-uma`,
    una: `${p}-una`,
    ulf: `${p}-ulf`,
    vera: `${p}-vera`,
    svc: `${p}-svc`,
    a1: `${p}-acct1`,
    a2: `${p}-acct2`,
    a3: `${p}-acct3`,
  };
  await person(w.pete);
  await person(w.pam);
  await person(w.eve);
  await person(w.uma, "Uma Umber");
  await person(w.una, "Una Ung");
  await person(w.ulf, "Ulf Ulrich");
  await person(w.vera);
  await organization(w.finco, w.pete, [w.pam]);
  await organization(w.shopco, w.eve, [w.uma, w.una, w.ulf, w.vera]);
  await entity(w.emea, w.shopco, w.eve, [w.uma, w.una, w.ulf]);
  await entity(w.us, w.shopco, w.eve, [w.vera]);
  await wrote(
    c.serviceRelationship.createService({
      actor: w.pete,
      serviceId: w.svc,
      name: `Card processing ${p}`,
      providerOrganizationId: w.finco,
      consumerEntityId: w.emea,
      accounts: [
        { accountId: w.a1, name: "Operating" },
        { accountId: w.a2, name: "Payroll" },
        { accountId: w.a3, name: "" },
      ],
    }),
  );
  return w;
}

/** Whether the user reaches the account, at `token`. */
async function reaches(userId: string, account: string, token = tokens.last): Promise<boolean> {
  const r = await c.permission.checkPermission({ resource: { type: "account", id: account }, permission: "access", subject: user(userId), consistency: fresh(token) });
  return r.allowed;
}

async function assignable(serviceId: string, accountIds: string[], mode: AssignmentMode, query = "") {
  const r = await c.serviceRelationship.listAssignableUsers({ serviceId, accountIds, mode, query });
  return r.users.map((u) => [u.userId, u.currentAccess]);
}

async function detail(serviceId: string) {
  const r = await c.serviceRelationship.getService({ serviceId });
  return Object.fromEntries(r.accounts.map((a) => [a.account!.accountId, a.assignedUsers.map((u) => u.userId)]));
}

describe("R30: services and their accounts", () => {
  it("R30: the provider creates a service; the Partner Accounts table shows the partner organization and the number of accounts", async () => {
    const w = await world("lst");
    const consumerSide = await c.serviceRelationship.listServices({ consumerOrganizationId: w.shopco });
    expect(consumerSide.services.map((s) => ({ id: s.serviceId, provider: s.providerOrganizationId, name: s.providerOrganizationName, accounts: s.accountCount, entity: s.consumerEntityId }))).toEqual([
      { id: w.svc, provider: w.finco, name: `Org ${w.finco}`, accounts: 3, entity: w.emea },
    ]);
    const providerSide = await c.serviceRelationship.listServices({ providerOrganizationId: w.finco });
    expect(providerSide.services.map((s) => s.serviceId)).toEqual([w.svc]);
    expect((await c.serviceRelationship.listServices({ consumerOrganizationId: w.finco })).services).toEqual([]);
    expect((await c.serviceRelationship.listServices({ consumerOrganizationId: w.shopco, query: "card PROC" })).services).toHaveLength(1);
    expect((await c.serviceRelationship.listServices({ consumerOrganizationId: w.shopco, query: "nothing" })).services).toHaveLength(0);
    const got = await c.serviceRelationship.getService({ serviceId: w.svc });
    expect(got.accounts.map((a) => [a.account?.accountId, a.account?.name, a.assignedUserCount])).toEqual([
      [w.a1, "Operating", 0],
      [w.a2, "Payroll", 0],
      [w.a3, w.a3, 0],
    ]);
    // The provider's own members reach their accounts; the consumer's users do not, unassigned.
    expect(await reaches(w.pam, w.a1)).toBe(true);
    expect(await reaches(w.uma, w.a1)).toBe(false);
  });

  it("R30: refuses a consumer entity of the provider itself, and accounts of another organization", async () => {
    const w = await world("own");
    await wrote(c.directory.createEntity({ actor: w.pete, organizationId: w.finco, entityId: "own-finco-unit", name: "Finco unit" }));
    await refusal(
      c.serviceRelationship.createService({ actor: w.pete, name: "Self", providerOrganizationId: w.finco, consumerEntityId: "own-finco-unit", accounts: [] }),
      Code.FailedPrecondition,
      /entity own-finco-unit belongs to organization own-finco itself/,
    );
    await person("own-olga");
    await organization("own-other", "own-olga", []);
    await wrote(c.directory.createEntity({ actor: "own-olga", organizationId: "own-other", entityId: "own-other-unit", name: "Other unit" }));
    await refusal(
      c.serviceRelationship.createService({ actor: "own-olga", name: "Theft", providerOrganizationId: "own-other", consumerEntityId: w.emea, accounts: [{ accountId: w.a1, name: "" }] }),
      Code.FailedPrecondition,
      new RegExp(`account ${w.a1} belongs to organization ${w.finco}, not own-other`),
    );
    await refusal(
      c.serviceRelationship.createService({ actor: w.pete, serviceId: w.svc, name: "Again", providerOrganizationId: w.finco, consumerEntityId: w.emea, accounts: [] }),
      Code.AlreadyExists,
      new RegExp(`service ${w.svc} already exists`),
    );
  });
});

describe("R31: granting and revoking many users on many accounts", () => {
  it("R31: grants users × accounts in one call and one token; revokes likewise; GetService shows who is assigned", async () => {
    const w = await world("grt");
    const g = await wrote(c.serviceRelationship.grantAccountAccess({ actor: w.eve, serviceId: w.svc, accountIds: [w.a1, w.a2], userIds: [w.uma, w.una] }));
    expect(g.granted).toBe(4);
    for (const u of [w.uma, w.una]) {
      expect(await reaches(u, w.a1, g.consistencyToken)).toBe(true);
      expect(await reaches(u, w.a2, g.consistencyToken)).toBe(true);
      expect(await reaches(u, w.a3, g.consistencyToken)).toBe(false);
    }
    expect(await reaches(w.ulf, w.a1, g.consistencyToken)).toBe(false);
    expect(await detail(w.svc)).toEqual({ [w.a1]: [w.uma, w.una], [w.a2]: [w.uma, w.una], [w.a3]: [] });
    // Granting again what is already held creates nothing.
    expect((await wrote(c.serviceRelationship.grantAccountAccess({ actor: w.eve, serviceId: w.svc, accountIds: [w.a1], userIds: [w.uma] }))).granted).toBe(0);

    const r = await wrote(c.serviceRelationship.revokeAccountAccess({ actor: w.eve, serviceId: w.svc, accountIds: [w.a2], userIds: [w.una, w.ulf] }));
    expect(r.revoked).toBe(1);
    expect(await reaches(w.una, w.a2, r.consistencyToken)).toBe(false);
    expect(await reaches(w.una, w.a1, r.consistencyToken)).toBe(true);
    expect(await reaches(w.uma, w.a2, r.consistencyToken)).toBe(true);
  });

  it("R31: only users of the consumer entity can be assigned: FAILED_PRECONDITION naming the user, and nothing is assigned", async () => {
    const w = await world("ent");
    await refusal(
      c.serviceRelationship.grantAccountAccess({ actor: w.eve, serviceId: w.svc, accountIds: [w.a1, w.a2], userIds: [w.uma, w.vera] }),
      Code.FailedPrecondition,
      new RegExp(`user ${w.vera} is not a member of entity ${w.emea} \\("Entity ${w.emea}"\\), the service's consumer; only its users can be assigned`),
    );
    await refusal(
      c.serviceRelationship.grantAccountAccess({ actor: w.eve, serviceId: w.svc, accountIds: [w.a1], userIds: [w.pam] }),
      Code.FailedPrecondition,
      new RegExp(`user ${w.pam} is not a member of entity ${w.emea}`),
    );
    expect(await detail(w.svc)).toEqual({ [w.a1]: [], [w.a2]: [], [w.a3]: [] });
    await refusal(
      c.serviceRelationship.grantAccountAccess({ actor: w.eve, serviceId: w.svc, accountIds: ["ent-elsewhere"], userIds: [w.uma] }),
      Code.NotFound,
      new RegExp(`account ent-elsewhere in service ${w.svc} does not exist`),
    );
  });

  it("R31/R42: a documented maximum size per call; over it INVALID_ARGUMENT naming the field", async () => {
    const w = await world("max");
    const users = (n: number) => Array.from({ length: n }, (_, i) => `max-u${i}`);
    const accounts = (n: number) => Array.from({ length: n }, (_, i) => `max-a${i}`);
    const base = { actor: w.eve, serviceId: w.svc };
    await refusal(c.serviceRelationship.grantAccountAccess({ ...base, accountIds: [w.a1], userIds: users(1001) }), Code.InvalidArgument, /^user_ids: at most 1000 users per call, got 1001/);
    await refusal(c.serviceRelationship.grantAccountAccess({ ...base, accountIds: accounts(1001), userIds: [w.uma] }), Code.InvalidArgument, /^account_ids: at most 1000 accounts per call/);
    await refusal(
      c.serviceRelationship.revokeAccountAccess({ ...base, accountIds: accounts(11), userIds: users(1000) }),
      Code.InvalidArgument,
      /^user_ids: 1000 users × 11 accounts = 11000 assignments; at most 10000 per call: split the change/,
    );
    await refusal(c.serviceRelationship.grantAccountAccess({ ...base, accountIds: [], userIds: [w.uma] }), Code.InvalidArgument, /^account_ids: select at least one account/);
    await refusal(c.serviceRelationship.grantAccountAccess({ ...base, accountIds: [w.a1], userIds: [] }), Code.InvalidArgument, /^user_ids: select at least one user/);
    await refusal(c.serviceRelationship.grantAccountAccess({ ...base, accountIds: [w.a1], userIds: ["bad id"] }), Code.InvalidArgument, /^user_ids\[0\]: /);
    await refusal(c.serviceRelationship.listAssignableUsers({ serviceId: w.svc, accountIds: [w.a1] }), Code.InvalidArgument, /^mode: is required/);
    await refusal(c.serviceRelationship.listServices({}), Code.InvalidArgument, /^consumer_organization_id: give exactly one/);
    await refusal(c.serviceRelationship.createService({ actor: w.pete, name: "", providerOrganizationId: w.finco, consumerEntityId: w.emea }), Code.InvalidArgument, /^name: is required/);
    await refusal(c.serviceRelationship.getService({ serviceId: "max-nope" }), Code.NotFound, /service max-nope does not exist/);
    // At the limit it is accepted (the users must still be the entity's: refused on that, not on size).
    await refusal(c.serviceRelationship.grantAccountAccess({ ...base, accountIds: [w.a1], userIds: users(1000) }), Code.FailedPrecondition, /user max-u0 is not a member/);
  });
});

describe("the permission index follows Postgres", () => {
  // Before the 10,000-user scenario, whose users are generated in bulk below the API (no relationships).
  it("after the scenarios above, reconcile finds no drift: each change wrote exactly the relationships its rows imply", async () => {
    const w = await world("rec");
    await wrote(c.serviceRelationship.grantAccountAccess({ actor: w.eve, serviceId: w.svc, accountIds: [w.a1, w.a2], userIds: [w.uma, w.una] }));
    await wrote(c.serviceRelationship.setServiceAccounts({ actor: w.pete, serviceId: w.svc, accounts: [{ accountId: w.a1, name: "" }] }));
    await wrote(c.serviceRelationship.endService({ actor: w.pete, serviceId: w.svc }));
    const r = await c.admin.reconcile({ dryRun: true });
    expect({ missing: r.missing, extra: r.extra, examples: [...r.missingExamples, ...r.extraExamples] }).toEqual({ missing: 0, extra: 0, examples: [] });
  });
});

describe("R32: the assignable-users list", () => {
  it("R32: current access counts the selected accounts; GRANT leaves out users holding all, REVOKE users holding none; search by name or email", async () => {
    const w = await world("asg");
    await wrote(c.serviceRelationship.grantAccountAccess({ actor: w.eve, serviceId: w.svc, accountIds: [w.a1, w.a2], userIds: [w.uma] }));
    await wrote(c.serviceRelationship.grantAccountAccess({ actor: w.eve, serviceId: w.svc, accountIds: [w.a1], userIds: [w.una] }));
    const both = [w.a1, w.a2];
    expect(await assignable(w.svc, both, AssignmentMode.GRANT)).toEqual([[w.ulf, 0], [w.una, 1]]);
    expect(await assignable(w.svc, both, AssignmentMode.REVOKE)).toEqual([[w.uma, 2], [w.una, 1]]);
    expect(await assignable(w.svc, [w.a1], AssignmentMode.GRANT)).toEqual([[w.ulf, 0]]);
    expect(await assignable(w.svc, [w.a3], AssignmentMode.REVOKE)).toEqual([]);
    expect(await assignable(w.svc, [w.a3], AssignmentMode.GRANT)).toEqual([[w.ulf, 0], [w.uma, 0], [w.una, 0]]);
    // Search by name or email; vera (another entity) never appears.
    expect(await assignable(w.svc, both, AssignmentMode.GRANT, "ULRICH")).toEqual([[w.ulf, 0]]);
    expect(await assignable(w.svc, both, AssignmentMode.REVOKE, `${w.una}@example`)).toEqual([[w.una, 1]]);
    expect(await assignable(w.svc, [w.a3], AssignmentMode.GRANT, w.vera)).toEqual([]);
    await refusal(c.serviceRelationship.listAssignableUsers({ serviceId: w.svc, accountIds: ["asg-other"], mode: AssignmentMode.GRANT }), Code.NotFound, /account asg-other in service/);
  });

  it("R32: pages correctly over 10,000 users of the consumer entity", async () => {
    const w = await world("big");
    const db = kyselyOf(server.app.domain.store);
    const ids = Array.from({ length: 10_000 }, (_, i) => `big-user-${String(i).padStart(5, "0")}`);
    // Generated through the store in bulk: users, organization and entity membership.
    for (let i = 0; i < ids.length; i += 2_000) {
      const chunk = ids.slice(i, i + 2_000);
      await db.insertInto("users").values(chunk.map((id) => ({ id, email: `${id}@example.com`, display_name: `Big ${id}` }))).execute();
      await db.insertInto("organization_members").values(chunk.map((user_id) => ({ organization_id: w.shopco, user_id }))).execute();
      await db.insertInto("entity_members").values(chunk.map((user_id) => ({ entity_id: w.emea, user_id }))).execute();
    }
    // Every 10th user holds both accounts, every 10th + 1 only a1: through the API, 1000 users × 1-2 accounts a call.
    const full = ids.filter((_, i) => i % 10 === 0);
    const partial = ids.filter((_, i) => i % 10 === 1);
    await wrote(c.serviceRelationship.grantAccountAccess({ actor: w.eve, serviceId: w.svc, accountIds: [w.a1, w.a2], userIds: full }));
    const g = await wrote(c.serviceRelationship.grantAccountAccess({ actor: w.eve, serviceId: w.svc, accountIds: [w.a1], userIds: partial }));
    expect(g.granted).toBe(1000);

    async function all(mode: AssignmentMode, pageSize: number) {
      const rows: Array<[string, number]> = [];
      let pageToken = "";
      let pages = 0;
      do {
        const r = await c.serviceRelationship.listAssignableUsers({ serviceId: w.svc, accountIds: [w.a1, w.a2], mode, page: { pageSize, pageToken } });
        expect(r.selectedAccounts).toBe(2);
        rows.push(...r.users.map((u) => [u.userId, u.currentAccess] as [string, number]));
        pageToken = r.nextPageToken;
        pages++;
      } while (pageToken);
      return { rows, pages };
    }
    const grant = await all(AssignmentMode.GRANT, 1000);
    const big = grant.rows.filter(([id]) => id.startsWith("big-user-"));
    expect(big).toHaveLength(9_000);
    expect(new Set(big.map(([id]) => id)).size).toBe(9_000);
    expect(big.map(([id]) => id)).toEqual([...big.map(([id]) => id)].sort());
    expect(big.filter(([, n]) => n === 1).map(([id]) => id)).toEqual(partial);
    expect(big.some(([id]) => full.includes(id))).toBe(false);
    expect(grant.pages).toBe(10);

    const revoke = await all(AssignmentMode.REVOKE, 700);
    expect(revoke.rows).toEqual([...full.map((id) => [id, 2]), ...partial.map((id) => [id, 1])].sort((a, b) => (a[0]! < b[0]! ? -1 : 1)));
    expect(revoke.pages).toBe(3);
    // Search within the 10,000.
    const r = await c.serviceRelationship.listAssignableUsers({ serviceId: w.svc, accountIds: [w.a1, w.a2], mode: AssignmentMode.GRANT, query: "big-user-0999" });
    expect(r.users.map((u) => [u.userId, u.currentAccess])).toEqual([["big-user-09991", 1], ["big-user-09992", 0], ["big-user-09993", 0], ["big-user-09994", 0], ["big-user-09995", 0], ["big-user-09996", 0], ["big-user-09997", 0], ["big-user-09998", 0], ["big-user-09999", 0]]);
  }, 120_000);
});

describe("R33: access follows the service", () => {
  it("R33: removing an account from the service removes access at once and its assignments in the same change", async () => {
    const w = await world("rmv");
    await wrote(c.serviceRelationship.grantAccountAccess({ actor: w.eve, serviceId: w.svc, accountIds: [w.a1, w.a2], userIds: [w.uma, w.una] }));
    const s = await wrote(c.serviceRelationship.setServiceAccounts({ actor: w.pete, serviceId: w.svc, accounts: [{ accountId: w.a1, name: "" }, { accountId: w.a3, name: "" }, { accountId: `${w.a3}b`, name: "New" }] }));
    expect({ added: s.addedAccountIds, removed: s.removedAccountIds, assignments: s.removedAssignments, count: s.service?.accountCount }).toEqual({
      added: [`${w.a3}b`],
      removed: [w.a2],
      assignments: 2,
      count: 3,
    });
    expect(await reaches(w.uma, w.a2, s.consistencyToken)).toBe(false);
    expect(await reaches(w.uma, w.a1, s.consistencyToken)).toBe(true);
    expect(await detail(w.svc)).toEqual({ [w.a1]: [w.uma, w.una], [w.a3]: [], [`${w.a3}b`]: [] });
    // Put back, the account comes without its old assignments: they were cleaned up.
    const back = await wrote(c.serviceRelationship.setServiceAccounts({ actor: w.pete, serviceId: w.svc, accounts: [{ accountId: w.a1, name: "" }, { accountId: w.a2, name: "" }] }));
    expect(await reaches(w.uma, w.a2, back.consistencyToken)).toBe(false);
    expect((await detail(w.svc))[w.a2]).toEqual([]);
  });

  it("R33: ending the service removes every access through it at once; it stays listed as ended for its provider", async () => {
    const w = await world("end");
    await wrote(c.serviceRelationship.grantAccountAccess({ actor: w.eve, serviceId: w.svc, accountIds: [w.a1, w.a2, w.a3], userIds: [w.uma, w.una] }));
    const e = await wrote(c.serviceRelationship.endService({ actor: w.pete, serviceId: w.svc }));
    expect(e.removedAssignments).toBe(6);
    expect(e.service?.endedAt).not.toBe("");
    for (const u of [w.uma, w.una]) for (const a of [w.a1, w.a2, w.a3]) expect(await reaches(u, a, e.consistencyToken)).toBe(false);
    expect(await reaches(w.pam, w.a1, e.consistencyToken)).toBe(true);
    expect((await c.serviceRelationship.listServices({ consumerOrganizationId: w.shopco })).services).toEqual([]);
    expect((await c.serviceRelationship.listServices({ providerOrganizationId: w.finco, includeEnded: true })).services.map((s) => s.serviceId)).toEqual([w.svc]);
    await refusal(
      c.serviceRelationship.grantAccountAccess({ actor: w.eve, serviceId: w.svc, accountIds: [w.a1], userIds: [w.uma] }),
      Code.FailedPrecondition,
      new RegExp(`service ${w.svc} ended on .*; it can no longer change`),
    );
    await refusal(c.serviceRelationship.endService({ actor: w.pete, serviceId: w.svc }), Code.FailedPrecondition, /ended on/);
  });

  it("R31/R33: a user who leaves the consumer entity loses access at once, by the schema", async () => {
    const w = await world("lve");
    await wrote(c.serviceRelationship.grantAccountAccess({ actor: w.eve, serviceId: w.svc, accountIds: [w.a1], userIds: [w.uma] }));
    const left = await wrote(c.directory.removeEntityMember({ actor: w.eve, entityId: w.emea, userId: w.uma }));
    expect(await reaches(w.uma, w.a1, left.consistencyToken)).toBe(false);
    expect(await assignable(w.svc, [w.a1], AssignmentMode.REVOKE)).toEqual([]);
  });
});

describe("R40/R41: who may do what", () => {
  it("R40: the consumer's organization admins assign; the provider's admins create, change and end", async () => {
    const w = await world("who");
    for (const actor of [w.pete, w.uma, w.pam]) {
      await refusal(
        c.serviceRelationship.grantAccountAccess({ actor, serviceId: w.svc, accountIds: [w.a1], userIds: [w.uma] }),
        Code.PermissionDenied,
        new RegExp(`user ${actor} may not assign users to the accounts of service ${w.svc}: that needs manage on service ${w.svc}`),
      );
      await refusal(c.serviceRelationship.revokeAccountAccess({ actor, serviceId: w.svc, accountIds: [w.a1], userIds: [w.uma] }), Code.PermissionDenied, /may not remove users/);
    }
    for (const actor of [w.eve, w.pam, w.uma]) {
      await refusal(
        c.serviceRelationship.setServiceAccounts({ actor, serviceId: w.svc, accounts: [] }),
        Code.PermissionDenied,
        new RegExp(`user ${actor} may not change the accounts of service ${w.svc}: that needs configure on service ${w.svc}`),
      );
      await refusal(c.serviceRelationship.endService({ actor, serviceId: w.svc }), Code.PermissionDenied, /may not end service/);
      await refusal(
        c.serviceRelationship.createService({ actor, name: "X", providerOrganizationId: w.finco, consumerEntityId: w.emea }),
        Code.PermissionDenied,
        new RegExp(`user ${actor} may not create services of organization ${w.finco}`),
      );
    }
    expect(await detail(w.svc)).toEqual({ [w.a1]: [], [w.a2]: [], [w.a3]: [] });
  });

  it("R41: a check key reads services and assignable users but cannot change anything", async () => {
    const w = await world("key");
    const check = server.clients("connect", CHECK_KEY).serviceRelationship;
    expect((await check.listServices({ consumerOrganizationId: w.shopco })).services).toHaveLength(1);
    expect((await check.getService({ serviceId: w.svc })).accounts).toHaveLength(3);
    expect((await check.listAssignableUsers({ serviceId: w.svc, accountIds: [w.a1], mode: AssignmentMode.GRANT })).users).toHaveLength(3);
    await refusal(check.grantAccountAccess({ actor: w.eve, serviceId: w.svc, accountIds: [w.a1], userIds: [w.uma] }), Code.PermissionDenied, /needs an admin API key/);
    await refusal(check.revokeAccountAccess({ actor: w.eve, serviceId: w.svc, accountIds: [w.a1], userIds: [w.uma] }), Code.PermissionDenied, /needs an admin API key/);
    await refusal(check.createService({ actor: w.pete, name: "X", providerOrganizationId: w.finco, consumerEntityId: w.emea }), Code.PermissionDenied, /needs an admin API key/);
    await refusal(check.setServiceAccounts({ actor: w.pete, serviceId: w.svc }), Code.PermissionDenied, /needs an admin API key/);
    await refusal(check.endService({ actor: w.pete, serviceId: w.svc }), Code.PermissionDenied, /needs an admin API key/);
  });

  it("the service is in server reflection", async () => {
    const { stdout } = await exec("node_modules/.bin/buf", ["curl", "--http2-prior-knowledge", "--protocol", "grpc", "--list-methods", server.baseUrl]);
    expect(stdout).toContain("sharegraph.v1.ServiceRelationshipService/ListAssignableUsers");
    expect(stdout).toContain("sharegraph.v1.PartnerService/ListCustomers");
  });
});
