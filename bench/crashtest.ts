/**
 * `npm run crashtest` (issue 7): mixed writes against a real server process
 * (`node --import tsx src/main.ts`, embedded SpiceDB) on a real Postgres,
 * SIGKILLed at random moments and restarted, at least CRASH_KILLS times
 * (default 25). Afterwards, on a freshly restarted server:
 *
 *  - lost: acknowledged writes (answered OK) that are not there — every
 *    user, content, share and workspace permission (granted or revoked)
 *    whose last call was acknowledged is checked in Postgres through the
 *    API, and workspace permissions also in SpiceDB (a fully consistent
 *    check);
 *  - drift: what AdminService.Reconcile (dry run) finds missing or extra in
 *    SpiceDB compared with Postgres.
 *
 * A write whose call failed (the server died under it) may or may not have
 * committed: it is not counted as acknowledged, and the key it touched is
 * left out until a later call on it is acknowledged.
 *
 * DATABASE_URL (or TEST_DATABASE_URL) names the Postgres server; a scratch
 * database is created on it and dropped at the end. Prints the figures;
 * exits 1 unless lost = 0, drift = 0 and kills ≥ 20.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AdminService } from "../src/gen/sharegraph/v1/admin_service_pb.js";
import { ContentService } from "../src/gen/sharegraph/v1/content_service_pb.js";
import { Role } from "../src/gen/sharegraph/v1/common_pb.js";
import { DirectoryService, WorkspaceLevel } from "../src/gen/sharegraph/v1/directory_service_pb.js";
import { PermissionService } from "../src/gen/sharegraph/v1/permission_service_pb.js";
import { scratchDatabase, startServerProcess, type ServerProcess } from "../test/support/server-process.js";

const BASE_URL = process.env["DATABASE_URL"] || process.env["TEST_DATABASE_URL"];
const KILLS = Number(process.env["CRASH_KILLS"] ?? 25);
const WORKERS = Number(process.env["CRASH_WORKERS"] ?? 6);
const KEY = "crashtest-admin-key-0123456789";
const OWNER = "owner";
const ORG = "crash";
const WS = "ws";

if (!BASE_URL) {
  console.error("npm run crashtest needs a real Postgres: set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test)");
  process.exit(2);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const user = (id: string) => ({ type: "user", id, relation: "" });
const fullyConsistent = { requirement: { case: "fullyConsistent" as const, value: true } };

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", () => resolve()));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

const started = Date.now();
const scratch = await scratchDatabase(BASE_URL, "sg_crashtest");
const dataDir = await mkdtemp(join(tmpdir(), "sharegraph-crashtest-"));
const port = await freePort();
const env = {
  SHAREGRAPH_ADDR: `127.0.0.1:${port}`,
  SHAREGRAPH_DATA_DIR: dataDir,
  SHAREGRAPH_API_KEYS: `${KEY}:admin`,
  DATABASE_URL: scratch.url,
  SHAREGRAPH_PLATFORM_ADMINS: "admin",
  OUTBOX_POLL_MS: "200",
};

let server: ServerProcess = await startServerProcess(env);
const transport = createGrpcTransport({
  baseUrl: `http://127.0.0.1:${port}`,
  interceptors: [
    (next) => (req) => {
      req.header.set("authorization", `Bearer ${KEY}`);
      return next(req);
    },
  ],
});
const directory = createClient(DirectoryService, transport);
const content = createClient(ContentService, transport);
const permission = createClient(PermissionService, transport);
const admin = createClient(AdminService, transport);
const call = { timeoutMs: 10_000 };

/** Retries a set-up call until it is acknowledged (the server may be restarting). */
async function settle(what: string, fn: () => Promise<unknown>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await fn();
      return;
    } catch (err) {
      const code = ConnectError.from(err).code;
      if (code === Code.AlreadyExists) return;
      if (attempt > 200) throw new Error(`${what}: ${String(err)}`);
      await sleep(100);
    }
  }
}

await settle("owner", () => directory.createUser({ actor: "admin", userId: OWNER, email: "owner@crash.example" }, call));
await settle("organization", () => directory.createOrganization({ actor: "admin", organizationId: ORG, name: "Crash", adminUserIds: [OWNER] }, call));
await settle("workspace", () => directory.createWorkspace({ actor: OWNER, organizationId: ORG, workspaceId: WS, name: "WS" }, call));

// ---- the load ----------------------------------------------------------------------

/** key → what must be true after the restarts (present or absent), for keys whose last call was acknowledged. */
const expected = new Map<string, boolean>();
const figures = { attempted: 0, acknowledged: 0, failed: 0, codes: new Map<string, number>() };
let stopping = false;

async function write(key: string, present: boolean, fn: () => Promise<unknown>): Promise<boolean> {
  figures.attempted++;
  try {
    await fn();
    figures.acknowledged++;
    expected.set(key, present);
    return true;
  } catch (err) {
    figures.failed++;
    const code = Code[ConnectError.from(err).code] ?? "unknown";
    figures.codes.set(code, (figures.codes.get(code) ?? 0) + 1);
    // Committed or not, nobody knows: the key is no longer checked until acknowledged again.
    expected.delete(key);
    return false;
  }
}

async function worker(w: number): Promise<void> {
  for (let i = 0; !stopping; i++) {
    const u = `u-${w}-${i}`;
    const r = `r-${w}-${i}`;
    // A scenario stops at its first failure (the server died under it); the next one starts fresh.
    const ok =
      (await write(`user:${u}`, true, () => directory.createUser({ actor: "admin", userId: u, email: `${u}@crash.example` }, call))) &&
      (await write(`perm:${u}`, true, () => directory.setWorkspacePermission({ actor: OWNER, workspaceId: WS, subject: user(u), level: WorkspaceLevel.VIEW }, call))) &&
      (await write(`content:${r}`, true, () => content.createContent({ actor: OWNER, kind: "report", contentId: r, name: r, workspaceId: WS }, call))) &&
      (await write(`share:${r}:${u}`, true, () => content.share({ actor: OWNER, resource: { type: "report", id: r }, subject: user(u), role: Role.VIEWER }, call))) &&
      (i % 3 !== 0 || (await write(`perm:${u}`, false, () => directory.removeWorkspacePermission({ actor: OWNER, workspaceId: WS, subject: user(u) }, call))));
    if (!ok) await sleep(200);
  }
}

const workers = Array.from({ length: WORKERS }, (_, w) => worker(w));

// ---- the kills ---------------------------------------------------------------------

let kills = 0;
for (; kills < KILLS; kills++) {
  const before = figures.acknowledged;
  // Let some writes through, then kill at a random moment among them.
  while (figures.acknowledged < before + 5) await sleep(20);
  await sleep(Math.random() * 1_500);
  server.kill("SIGKILL");
  await server.exited;
  server = await startServerProcess(env);
  process.stdout.write(`\rkills ${kills + 1}/${KILLS}, writes acknowledged ${figures.acknowledged}   `);
}
process.stdout.write("\n");
stopping = true;
await Promise.all(workers);

// One more crash with nothing running, so that the checks read a freshly restarted server.
server.kill("SIGKILL");
await server.exited;
kills++;
server = await startServerProcess(env);

// ---- the checks --------------------------------------------------------------------

let lost = 0;
const lostExamples: string[] = [];
const miss = (key: string, why: string) => {
  lost++;
  if (lostExamples.length < 20) lostExamples.push(`${key}: ${why}`);
};
const workspacePermissions = new Set(
  (await directory.listWorkspacePermissions({ workspaceId: WS }, call)).permissions.map((p) => p.subject?.id ?? ""),
);
for (const [key, present] of expected) {
  const [kind, a, b] = key.split(":") as [string, string, string | undefined];
  try {
    if (kind === "user") {
      const found = await directory.getUser({ userId: a }, call).then(() => true, () => false);
      if (found !== present) miss(key, "user missing");
    } else if (kind === "content") {
      const found = await content.getContent({ ref: { type: "report", id: a } }, call).then(() => true, () => false);
      if (found !== present) miss(key, "content missing");
    } else if (kind === "share") {
      const shares = await content.listShares({ resource: { type: "report", id: a } }, call);
      const found = shares.shares.some((s) => s.subject?.id === b && s.role === Role.VIEWER);
      if (found !== present) miss(key, "share missing");
    } else if (kind === "perm") {
      if (workspacePermissions.has(a) !== present) miss(key, present ? "permission missing in Postgres" : "revoked permission back in Postgres");
      const check = await permission.checkPermission({ resource: { type: "workspace", id: WS }, permission: "view", subject: user(a), consistency: fullyConsistent }, call);
      if (check.allowed !== present) miss(key, present ? "permission missing in SpiceDB" : "revoked permission still in SpiceDB");
    }
  } catch (err) {
    miss(key, `check failed: ${String(err)}`);
  }
}
const drift = await admin.reconcile({ dryRun: true }, { timeoutMs: 60_000 });
const outbox = await admin.getOutboxStatus({}, call);

server.kill("SIGTERM");
const exit = await server.exited;
await scratch.drop();
await rm(dataDir, { recursive: true, force: true });

const result = {
  kills,
  restarts: kills,
  writesAttempted: figures.attempted,
  writesAcknowledged: figures.acknowledged,
  writesFailed: figures.failed,
  failedCodes: Object.fromEntries(figures.codes),
  keysChecked: expected.size,
  lost,
  driftMissing: drift.missing,
  driftExtra: drift.extra,
  expectedRelationships: drift.expectedRelationships,
  pendingOutboxBatches: outbox.pendingBatches,
  cleanExitOnSigterm: exit.code === 0,
  seconds: Math.round((Date.now() - started) / 1000),
};
console.log(JSON.stringify(result, null, 2));
if (lostExamples.length > 0) console.log("lost:", lostExamples);
if (drift.missing + drift.extra > 0) console.log("drift:", { missing: drift.missingExamples, extra: drift.extraExamples });
const pass = lost === 0 && drift.missing === 0 && drift.extra === 0 && kills >= 20;
console.log(pass ? "PASS: no acknowledged write lost, no drift" : "FAIL");
process.exit(pass ? 0 : 1);
