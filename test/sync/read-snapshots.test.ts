/**
 * Pinned read snapshots and the decision cache, through a real server:
 * minimize_latency reads are at most READ_MAX_STALENESS_MS stale, a read with
 * a token always sees that token's write, fully_consistent reads SpiceDB's
 * head, and repeated questions at one snapshot are answered from the cache.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DecisionCachingEngine } from "../../src/engine/decision-cache.js";
import { SNAPSHOT_REFRESH_MS } from "../../src/sync/consistency.js";
import { WorkspaceLevel } from "../../src/gen/sharegraph/v1/directory_service_pb.js";
import { fresh, user } from "../support/rpc.js";
import { PLATFORM_ADMIN, startTestServer, type Clients, type TestServer } from "../support/server.js";

const STALENESS_MS = 1_500;
let server: TestServer;
let c: Clients;

const minimize = { requirement: { case: "minimizeLatency" as const, value: true } };
const fullyConsistent = { requirement: { case: "fullyConsistent" as const, value: true } };
const ws = { type: "workspace", id: "snap-ws" };

beforeAll(async () => {
  server = await startTestServer({ env: { READ_MAX_STALENESS_MS: String(STALENESS_MS) } });
  c = server.clients();
  for (const id of ["snap-admin", "snap-ann", "snap-bob"]) {
    await c.directory.createUser({ actor: PLATFORM_ADMIN, userId: id, email: `${id}@snap.example`, displayName: id });
  }
  await c.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: "snap", name: "Snap", adminUserIds: ["snap-admin"] });
  await c.directory.createWorkspace({ actor: "snap-admin", organizationId: "snap", workspaceId: "snap-ws", name: "Snap" });
});

afterAll(async () => {
  await server?.stop();
});

function cache(): DecisionCachingEngine {
  const engine = server.app.decisionCache;
  if (!engine) throw new Error("the decision cache is on by default");
  return engine;
}

async function setView(userId: string): Promise<string> {
  return (await c.directory.setWorkspacePermission({ actor: "snap-admin", workspaceId: "snap-ws", subject: user(userId), level: WorkspaceLevel.VIEW }))
    .consistencyToken;
}

async function removeView(userId: string): Promise<string> {
  return (await c.directory.removeWorkspacePermission({ actor: "snap-admin", workspaceId: "snap-ws", subject: user(userId) })).consistencyToken;
}

const view = (userId: string, consistency: object) => c.permission.checkPermission({ resource: ws, permission: "view", subject: user(userId), consistency });

describe("pinned read snapshots", () => {
  it("a read with a write's token sees that write, and a revoke's token never sees the old access", async () => {
    for (let round = 0; round < 5; round++) {
      const granted = await setView("snap-ann");
      expect((await view("snap-ann", fresh(granted))).allowed).toBe(true);
      const revoked = await removeView("snap-ann");
      expect((await view("snap-ann", fresh(revoked))).allowed).toBe(false);
      expect((await view("snap-ann", fullyConsistent)).allowed).toBe(false);
    }
  });

  it("minimize_latency reads stay on their snapshot for at most READ_MAX_STALENESS_MS, then see the newest write", async () => {
    const first = await view("snap-bob", minimize); // pins the newest snapshot
    expect(first.allowed).toBe(false);
    const granted = await setView("snap-bob");
    const stale = await view("snap-bob", minimize);
    // Either still the pinned snapshot (not yet stale), never anything in between.
    if (!stale.allowed) expect(stale.consistencyToken).toBe(first.consistencyToken);
    expect((await view("snap-bob", fresh(granted))).allowed).toBe(true);
    await sleep(STALENESS_MS + 200);
    expect((await view("snap-bob", minimize)).allowed).toBe(true);
    await removeView("snap-bob");
  });
});

describe("decision cache", () => {
  it("answers the same question at the same snapshot once from SpiceDB, then from memory", async () => {
    const token = await setView("snap-ann");
    const before = { ...cache().stats };
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push((await view("snap-ann", fresh(token))).allowed);
    expect(answers).toEqual([true, true, true, true, true]);
    expect(cache().stats.misses - before.misses).toBe(1);
    expect(cache().stats.hits - before.hits).toBe(4);
    const metrics = await (await fetch(`${server.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`^sharegraph_decision_cache_hits_total ${cache().stats.hits}$`, "m"));
  });

  it("a write moves reads to a new snapshot: the cached answer of the old one is not used for the write's token", async () => {
    const granted = await setView("snap-bob");
    expect((await view("snap-bob", fresh(granted))).allowed).toBe(true);
    const revoked = await removeView("snap-bob");
    const misses = cache().stats.misses;
    expect((await view("snap-bob", fresh(revoked))).allowed).toBe(false);
    expect(cache().stats.misses).toBe(misses + 1);
  });
});

describe("a deployment with no write since start (SNAPSHOT_REFRESH_MS)", () => {
  it("pins a snapshot taken from SpiceDB's head at start-up: repeated minimize_latency checks are answered from the cache", async () => {
    const quiet = await startTestServer();
    try {
      const engine = quiet.app.decisionCache;
      if (!engine) throw new Error("the decision cache is on by default");
      const ask = () =>
        quiet.clients().permission.checkPermission({ resource: { type: "platform", id: "sharegraph" }, permission: "manage", subject: user(PLATFORM_ADMIN), consistency: minimize });
      expect((await ask()).allowed).toBe(true);
      const before = { ...engine.stats };
      for (let i = 0; i < 3; i++) expect((await ask()).allowed).toBe(true);
      expect(engine.stats.hits - before.hits).toBe(3);
      expect(engine.stats.misses - before.misses).toBe(0);
    } finally {
      await quiet.stop();
    }
  });

  it("takes a new one only when the newest is older than SNAPSHOT_REFRESH_MS, and reads move to it", async () => {
    const { tokens, applier } = server.app.domain;
    await setView("snap-bob");
    const written = applier.latestSnapshot()!;
    let probes = 0;
    const probe = async () => {
      probes++;
      return (await server.app.domain.engine.check({ resource: ws, permission: "view", subject: { type: "user", id: "snap-bob" } }, { kind: "fully_consistent" })).token;
    };
    expect(await tokens.refreshSnapshot(probe)).toBe(false);
    expect(probes).toBe(0);
    // Nothing happened in SpiceDB since the write: its head is that revision, which keeps its age.
    expect(await tokens.refreshSnapshot(probe, Date.now() + SNAPSHOT_REFRESH_MS + 1)).toBe(false);
    expect(probes).toBe(1);
    expect(applier.latestSnapshot()).toMatchObject({ batch: written.batch, zed: written.zed });
    // SpiceDB's head moves (here: a relationship written and deleted again, leaving the data as it was).
    const inner = server.app.domain.engine;
    await inner.write([{ op: "touch", relationship: { resource: ws, relation: "viewer", subject: { type: "user", id: "snap-head" } } }]);
    await inner.write([{ op: "delete", relationship: { resource: ws, relation: "viewer", subject: { type: "user", id: "snap-head" } } }]);
    expect(await tokens.refreshSnapshot(probe, Date.now() + SNAPSHOT_REFRESH_MS + 1)).toBe(true);
    expect(probes).toBe(2);
    const refreshed = applier.latestSnapshot()!;
    expect(refreshed.batch).toBe(written.batch);
    expect(refreshed.zed).not.toBe(written.zed);
    // Once the pin in use may no longer be kept (READ_MAX_STALENESS_MS), reads move to the new snapshot and see the write.
    await sleep(STALENESS_MS + 100);
    expect((await view("snap-bob", minimize)).allowed).toBe(true);
  });
});
