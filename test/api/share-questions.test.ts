/**
 * Issue 8 (fewer cold questions per write): what a Share asks the engine.
 * SpiceDB computes the questions of one request side by side and shares
 * nothing between them; a later request at the same snapshot finds the
 * first one's steps in its cache. So Share asks in two rounds: first the
 * actor's manage, the grantee's eligibility and whether the grantee
 * inherits at least viewer; then, at the first round's exact snapshot,
 * edit and share only for an actor who does not manage, the higher levels
 * only for a grantee who inherits viewer. The rules' answers (R2, R5, R6)
 * are the ones test/api/content-sharing.test.ts and the sharing property
 * test hold; this file holds the questions.
 */
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
  ({ server, clients: c, engine } = await startAcmeSharingTenant({ env: { WRITE_CHECKS_FROM: "spicedb" }, viewers: ["bob", "carol", "dave", "erin", "fay"] }));
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

/** The engine's bulk checks made by one call, as "permission on type:id for subject" lines per round. */
async function asked(call: () => Promise<unknown>) {
  const from = engine.bulkChecks.length;
  await call();
  const rounds = engine.bulkChecks.slice(from);
  return {
    questions: rounds.map((r) => r.items.map((i) => `${i.permission} on ${i.resource.type}:${i.resource.id} for ${i.subject.type}:${i.subject.id}`)),
    rounds,
  };
}

describe("issue 8: a Share asks in two rounds, the second only when needed", () => {
  it("R2, R6: a manager sharing with someone who inherits nothing: one round of three questions", async () => {
    const { questions } = await asked(() => c.content.share({ actor: "ann", resource: dashboard("pipeline"), subject: user("carol"), role: Role.VIEWER }));
    expect(questions).toEqual([["manage on dashboard:pipeline for user:ann", "eligible on workspace:sales for user:carol", "granted_view on folder:q3 for user:carol"]]);
  });

  it("R6: eligibility on the native workspace is asked only for editor and manager", async () => {
    const { questions } = await asked(() => c.content.share({ actor: "ann", resource: dashboard("pipeline"), subject: user("erin"), role: Role.EDITOR }));
    expect(questions[0]).toContain("eligible_native on workspace:sales for user:erin");
  });

  it("R5: an actor who does not manage is asked edit and share in a second round, at the first round's snapshot", async () => {
    const { questions, rounds } = await asked(() => c.content.share({ actor: "bob", resource: dashboard("pipeline"), subject: user("fay"), role: Role.SHARER }));
    expect(questions).toEqual([
      ["manage on dashboard:pipeline for user:bob", "eligible on workspace:sales for user:fay", "granted_view on folder:q3 for user:fay"],
      ["edit on dashboard:pipeline for user:bob", "share on dashboard:pipeline for user:bob"],
    ]);
    expect(rounds[1]!.consistency).toEqual({ kind: "at_exact_snapshot", token: await rounds[0]!.token });
  });

  it("R2: a grantee who inherits viewer is asked the higher levels, and the refusal names what is inherited", async () => {
    let refusal: unknown;
    const { questions } = await asked(() =>
      c.content.share({ actor: "ann", resource: dashboard("pipeline"), subject: user("dave"), role: Role.SHARER }).catch((err: unknown) => (refusal = err)),
    );
    expect(questions[1]).toEqual(["granted_manage on folder:q3 for user:dave", "granted_edit on folder:q3 for user:dave", "granted_share on folder:q3 for user:dave"]);
    expect(String(refusal)).toMatch(/user dave inherits editor on dashboard pipeline .* from folder q3/);
  });
});
