/**
 * Issue 8 (a write's authorization where a new revision does not empty the
 * cache): WRITE_CHECKS_FROM=postgres. A Share's own questions — what the
 * actor may do on the item (R5, R7), whether the grantee is eligible (R6),
 * what it inherits and from which folder (R2) — are answered by one
 * Postgres statement (src/store/sharing-questions.ts) on every committed
 * change, and SpiceDB is asked none of them; so are the directory's rights
 * (src/store/directory-rights.ts), such as who may change a group's
 * members. The answers are held equal to SpiceDB's by
 * test/store/write-checks.property.test.ts; .ci/run also runs the whole
 * suite with it on real Postgres (TEST_WRITE_CHECKS_FROM).
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Role } from "../../src/gen/sharegraph/v1/common_pb.js";
import { startAcmeSharingTenant } from "../support/acme-sharing-tenant.js";
import type { FaultyEngine } from "../support/faulty-engine.js";
import { user } from "../support/rpc.js";
import type { Clients, TestServer } from "../support/server.js";

let server: TestServer;
let c: Clients;
let engine: FaultyEngine;
const dashboard = (id: string) => ({ type: "dashboard", id });

beforeAll(async () => {
  ({ server, clients: c, engine } = await startAcmeSharingTenant({
    env: { WRITE_CHECKS_FROM: "postgres", OUTBOX_APPLY_TIMEOUT_MS: "300" },
    viewers: ["bob", "carol", "dave", "erin"],
    outsiders: ["gus"],
  }));
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

/** The call's outcome and how many bulk checks it asked the engine. */
async function engineChecksOf(call: () => Promise<unknown>): Promise<{ checks: number; error: ConnectError | undefined }> {
  const from = engine.bulkChecks.length;
  let error: ConnectError | undefined;
  await call().catch((err: unknown) => (error = ConnectError.from(err)));
  return { checks: engine.bulkChecks.length - from, error };
}

describe("issue 8: WRITE_CHECKS_FROM=postgres answers a Share's questions without SpiceDB", () => {
  it("R1, R6: a manager's Share asks the engine nothing and is granted", async () => {
    const { checks, error } = await engineChecksOf(() => c.content.share({ actor: "ann", resource: dashboard("pipeline"), subject: user("carol"), role: Role.VIEWER }));
    expect(error).toBeUndefined();
    expect(checks).toBe(0);
    const shares = await c.content.listShares({ resource: dashboard("pipeline") });
    expect(shares.shares.some((s) => s.subject?.id === "carol" && s.role === Role.VIEWER)).toBe(true);
  });

  it("R5: a sharer may not share above their own level", async () => {
    const { checks, error } = await engineChecksOf(() => c.content.share({ actor: "bob", resource: dashboard("pipeline"), subject: user("erin"), role: Role.EDITOR }));
    expect(checks).toBe(0);
    expect(error?.code).toBe(Code.PermissionDenied);
    expect(error?.rawMessage).toMatch(/up to sharer, not editor/);
  });

  it("R6: a grantee with nothing on the workspace is refused", async () => {
    const { checks, error } = await engineChecksOf(() => c.content.share({ actor: "ann", resource: dashboard("pipeline"), subject: user("gus"), role: Role.VIEWER }));
    expect(checks).toBe(0);
    expect(error?.code).toBe(Code.FailedPrecondition);
    expect(error?.rawMessage).toMatch(/user gus has no permission on workspace sales/);
  });

  it("R2: a direct grant below the inherited role is refused, naming the folder it comes from", async () => {
    const { checks, error } = await engineChecksOf(() => c.content.share({ actor: "ann", resource: dashboard("pipeline"), subject: user("dave"), role: Role.SHARER }));
    expect(checks).toBe(0);
    expect(error?.code).toBe(Code.FailedPrecondition);
    expect(error?.rawMessage).toMatch(/user dave inherits editor on dashboard pipeline .* from folder q3 \("Q3"\)/);
  });

  it("R40: a right revoked a moment ago is not used, even while SpiceDB has not received the revocation", async () => {
    await c.content.share({ actor: "ann", resource: dashboard("pipeline"), subject: user("erin"), role: Role.SHARER });
    engine.breakWrites();
    try {
      // Committed in Postgres; SpiceDB still holds erin's sharer role.
      await c.content.unshare({ actor: "ann", resource: dashboard("pipeline"), subject: user("erin") });
      const { error } = await engineChecksOf(() => c.content.share({ actor: "erin", resource: dashboard("pipeline"), subject: user("carol"), role: Role.SHARER }));
      expect(error?.code).toBe(Code.PermissionDenied);
      expect(error?.rawMessage).toMatch(/user erin may not share dashboard pipeline/);
    } finally {
      engine.heal();
    }
  });

  it("R40: changing a group's members asks the engine nothing; an organization admin just demoted may no longer", async () => {
    await c.directory.createGroup({ actor: "ann", organizationId: "acme", groupId: "team", name: "Team" });
    await c.directory.addOrganizationMember({ actor: "ann", organizationId: "acme", userId: "carol", admin: true });
    const added = await engineChecksOf(() => c.directory.addGroupMember({ actor: "carol", groupId: "team", member: user("bob") }));
    expect(added).toEqual({ checks: 0, error: undefined });
    engine.breakWrites();
    try {
      // Committed in Postgres; SpiceDB still holds carol's admin role.
      await c.directory.addOrganizationMember({ actor: "ann", organizationId: "acme", userId: "carol", admin: false });
      const { checks, error } = await engineChecksOf(() => c.directory.addGroupMember({ actor: "carol", groupId: "team", member: user("dave") }));
      expect(checks).toBe(0);
      expect(error?.code).toBe(Code.PermissionDenied);
      expect(error?.rawMessage).toMatch(/user carol may not change members of group team: that needs manage on group team/);
    } finally {
      engine.heal();
    }
  });
});
