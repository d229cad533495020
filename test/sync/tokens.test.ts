/**
 * Issue 7, item 1: consistency tokens cannot be forged. A token this
 * deployment did not sign, or a signed one naming an outbox batch beyond
 * the newest (a database restored from an older backup), is refused with
 * INVALID_ARGUMENT and never recorded as applied — before the fix, one
 * forged token naming a far-away batch made every later wait return at
 * once: a check at a revoke's token answered from before the revoke, and
 * mutating calls were authorized against stale membership.
 *
 * SpiceDB sits behind a fault switch so that a revoke can be committed and
 * still be on its way: exactly when a wrongly "applied" batch shows.
 * (Tokens surviving a restart: test/app.test.ts.)
 */
import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WorkspaceLevel } from "../../src/gen/sharegraph/v1/directory_service_pb.js";
import { ServerKey } from "../../src/secrets.js";
import { TOKEN_MAC_PURPOSE, TokenCodec } from "../../src/sync/tokens.js";
import { FaultyEngine } from "../support/faulty-engine.js";
import { codeOf, fresh, refusal, user } from "../support/rpc.js";
import { PLATFORM_ADMIN, startTestServer, type Clients, type TestServer } from "../support/server.js";

const ORG = "acme";
const emea = { type: "workspace", id: "emea" };
const fullyConsistent = { requirement: { case: "fullyConsistent" as const, value: true } };

let server: TestServer;
let c: Clients;
let spicedb: FaultyEngine;
/** Changes of the current test that are still on their way to SpiceDB are let through after it. */
afterEach(async () => {
  spicedb.heal();
  const deadline = Date.now() + 20_000;
  while ((await server.app.domain.store.read.outbox.status()).pending > 0) {
    if (Date.now() > deadline) throw new Error("the outbox did not drain");
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
});

beforeAll(async () => {
  spicedb = await FaultyEngine.create();
  server = await startTestServer({
    // Writes authorized by SpiceDB (waiting for the outbox first); WRITE_CHECKS_FROM=postgres has its own R40 tests (test/api/write-checks-from-postgres.test.ts).
    env: { OUTBOX_APPLY_TIMEOUT_MS: "300", OUTBOX_POLL_MS: "50", OUTBOX_MAX_BACKOFF_MS: "200", WRITE_CHECKS_FROM: "spicedb" },
    overrides: { engine: async () => spicedb },
  });
  c = server.clients();
  for (const id of ["alice", "bob", "carol", "mallory"]) {
    await c.directory.createUser({ actor: PLATFORM_ADMIN, userId: id, email: `${id}@acme.example`, displayName: id });
  }
  await c.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: ORG, name: "Acme", adminUserIds: ["alice", "mallory"] });
  await c.directory.createWorkspace({ actor: "alice", organizationId: ORG, workspaceId: "emea", name: "EMEA" });
});

afterAll(async () => {
  await server?.stop();
});

/** The pre-fix token format: base64url("sg1|epoch|batch|zed"), which anyone could write. */
function unsignedToken(batch: number): string {
  return Buffer.from(`sg1|${server.app.domain.tokens.epoch}|${batch}|`, "utf8").toString("base64url");
}

/** A well-formed v2 token whose MAC was computed with a key that is not this deployment's. */
function tokenOfAnotherDeployment(batch: number): string {
  return new TokenCodec(new ServerKey(randomBytes(32)).mac(TOKEN_MAC_PURPOSE)).encode({ epoch: server.app.domain.tokens.epoch, batch, zed: "" });
}

const checkAt = (subject: string, token: string) =>
  c.permission.checkPermission({ resource: emea, permission: "view", subject: user(subject), consistency: fresh(token) });

describe("issue 7.1: a forged consistency token", () => {
  it("naming a batch never issued (old unsigned format) is INVALID_ARGUMENT and recorded nowhere: a check at a later revoke's token still never answers the old access", async () => {
    const granted = await c.directory.setWorkspacePermission({ actor: "alice", workspaceId: "emea", subject: user("bob"), level: WorkspaceLevel.VIEW });
    expect((await checkAt("bob", granted.consistencyToken)).allowed).toBe(true);

    // The attack: with nothing pending, a token naming a far-away batch.
    await refusal(checkAt("carol", unsignedToken(2 ** 40)), Code.InvalidArgument, /consistency\.at_least_as_fresh: .*unsigned format of earlier sharegraph versions/);
    expect(server.app.domain.applier.appliedThrough).toBeLessThan(2 ** 40);

    spicedb.breakWrites();
    const revoked = await c.directory.removeWorkspacePermission({ actor: "alice", workspaceId: "emea", subject: user("bob") });
    // The revoke is still on its way: answering would mean answering from before it.
    expect((await codeOf(checkAt("bob", revoked.consistencyToken))).code).toBe(Code.Unavailable);
    expect(
      (await codeOf(c.permission.checkPermission({ resource: emea, permission: "view", subject: user("bob"), consistency: fullyConsistent }))).code,
    ).toBe(Code.Unavailable);

    spicedb.heal();
    expect((await checkAt("bob", revoked.consistencyToken)).allowed).toBe(false);
  });

  it("R40: after forged tokens, an org admin removed while the change is on its way still cannot create groups", async () => {
    await refusal(checkAt("mallory", unsignedToken(10 ** 12)), Code.InvalidArgument, /unsigned format/);
    await refusal(checkAt("mallory", tokenOfAnotherDeployment(10 ** 12)), Code.InvalidArgument, /not a consistency token issued by this sharegraph deployment/);

    spicedb.breakWrites();
    await c.directory.removeOrganizationMember({ actor: "alice", organizationId: ORG, userId: "mallory" });
    const attempt = await codeOf(c.directory.createGroup({ actor: "mallory", organizationId: ORG, groupId: "mallorys", name: "Mallory's" }));
    expect(attempt.code).toBe(Code.Unavailable);
    spicedb.heal();
    await refusal(c.directory.createGroup({ actor: "mallory", organizationId: ORG, groupId: "mallorys", name: "Mallory's" }), Code.PermissionDenied, /mallory/);
  });

  it("signed by another deployment (another server key), or with its MAC or batch altered, is INVALID_ARGUMENT", async () => {
    const genuine = (await c.directory.setWorkspacePermission({ actor: "alice", workspaceId: "emea", subject: user("carol"), level: WorkspaceLevel.VIEW })).consistencyToken;
    expect((await checkAt("carol", genuine)).allowed).toBe(true);
    const [prefix, payload, tag] = genuine.split(".") as [string, string, string];
    expect(prefix).toBe("sg2");

    const [epoch, batch, ...zed] = Buffer.from(payload, "base64url").toString("utf8").split("|");
    const later = Buffer.from(`${epoch}|${Number(batch) + 1_000_000}|${zed.join("|")}`, "utf8").toString("base64url");
    const flipped = `${tag[0] === "A" ? "B" : "A"}${tag.slice(1)}`;
    for (const forged of [`sg2.${later}.${tag}`, `sg2.${payload}.${flipped}`, `sg2.${payload}`, tokenOfAnotherDeployment(Number(batch))]) {
      await refusal(checkAt("carol", forged), Code.InvalidArgument, /^consistency\.at_least_as_fresh: not a consistency token issued by this sharegraph deployment$/);
    }
  });

  it("signed by this deployment but naming a batch beyond the newest (a restored older backup) is INVALID_ARGUMENT and never recorded", async () => {
    const newest = await server.app.domain.store.read.outbox.maxId();
    const before = server.app.domain.applier.appliedThrough;
    const beyond = server.app.domain.tokens.forWrite(newest + 1_000, "");

    await refusal(checkAt("carol", beyond), Code.InvalidArgument, new RegExp(`names change ${newest + 1_000}, but the newest change in this deployment's database is ${newest}`));

    expect(server.app.domain.applier.appliedThrough).toBe(before);
    expect(await server.app.domain.store.read.outbox.appliedThrough(newest + 1_000)).toBe(false);
    // Consistency still holds: a revoke on its way is not skipped.
    spicedb.breakWrites();
    const revoked = await c.directory.removeWorkspacePermission({ actor: "alice", workspaceId: "emea", subject: user("carol") });
    expect((await codeOf(checkAt("carol", revoked.consistencyToken))).code).toBe(Code.Unavailable);
  });

  it("a genuine token is accepted and issued in the signed format", async () => {
    const r = await c.directory.setWorkspacePermission({ actor: "alice", workspaceId: "emea", subject: user("bob"), level: WorkspaceLevel.ANALYZE });
    expect(r.consistencyToken).toMatch(/^sg2\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    const read = await c.permission.checkPermission({ resource: emea, permission: "analyze", subject: user("bob"), consistency: fresh(r.consistencyToken) });
    expect(read).toMatchObject({ allowed: true, consistencyToken: expect.stringMatching(/^sg2\./) });
    expect((await checkAt("bob", read.consistencyToken)).allowed).toBe(true);
  });
});

describe("issue 7.1: the outbox never counts a batch it does not have as applied", () => {
  it("appliedThrough is false beyond the newest batch, true up to it once applied", async () => {
    const outbox = server.app.domain.store.read.outbox;
    const newest = await outbox.maxId();
    expect(await outbox.appliedThrough(newest)).toBe(true);
    expect(await outbox.appliedThrough(newest + 1)).toBe(false);
    expect(await outbox.progress(newest + 1)).toEqual({ newest, applied: true });
  });
});

describe("issue 8: the token codec remembers what it made and verified, and nothing else", () => {
  const ours = new TokenCodec(new ServerKey(randomBytes(32)).mac(TOKEN_MAC_PURPOSE));
  const theirs = new TokenCodec(new ServerKey(randomBytes(32)).mac(TOKEN_MAC_PURPOSE));

  it("makes the same token for the same batch and a different one for any other part", () => {
    const parts = { epoch: "e1", batch: 7, zed: "zed-7" };
    const token = ours.encode(parts);
    expect(ours.encode({ ...parts })).toBe(token);
    expect(new Set([ours.encode({ ...parts, batch: 8 }), ours.encode({ ...parts, epoch: "e2" }), ours.encode({ ...parts, zed: "zed-8" }), token]).size).toBe(4);
    expect(ours.encode(parts)).toBe(token);
    expect(ours.decode(token)).toEqual(parts);
  });

  it("still refuses another deployment's token for the same payload after verifying its own, and verifies again after forgetting", () => {
    const parts = { epoch: "e1", batch: 9, zed: "" };
    const own = ours.encode(parts);
    expect(ours.decode(own)).toEqual(parts);
    const foreign = theirs.encode(parts);
    expect(foreign.split(".")[1]).toBe(own.split(".")[1]);
    expect(() => ours.decode(foreign)).toThrow(/not a consistency token issued by this sharegraph deployment/);
    // More distinct tokens than it keeps: the first is forgotten and verified afresh.
    for (let batch = 100; batch < 300; batch++) expect(ours.decode(ours.encode({ epoch: "e1", batch, zed: "" })).batch).toBe(batch);
    expect(ours.decode(own)).toEqual(parts);
    expect(() => ours.decode(foreign)).toThrow(/not a consistency token/);
  });
});
