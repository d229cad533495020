/**
 * Issue 10: the `sharegraph` command line, run as a real process (the
 * package's bin, bin/sharegraph.js) against real servers started here: the
 * demo tenant on one, an empty deployment on another for the export/import
 * round trip.
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadDemo } from "../../src/demo.js";
import type { CheckBulkPermissionsItem } from "../../src/gen/sharegraph/v1/permission_service_pb.js";
import { ADMIN_KEY, CHECK_KEY, startTestServer, type TestServer } from "../support/server.js";

const BIN = fileURLToPath(new URL("../../bin/sharegraph.js", import.meta.url));
/** An admin key of a calling service, bound to the actors it may assert. */
const BOUND_KEY = "test-bound-key-0123456789";
const FULLY = { requirement: { case: "fullyConsistent" as const, value: true } };

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

let demo: TestServer;
let empty: TestServer;
let work: string;

/** Runs `sharegraph …` in a directory of its own, with only the given environment. */
function cli(args: readonly string[], options: { env?: Record<string, string>; cwd?: string; input?: string } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? work,
      env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? "");
  });
}

/** The demo server, its address and admin key from the environment. */
const onDemo = (args: readonly string[], key = ADMIN_KEY) => cli(args, { env: { SHAREGRAPH_ADDR: demo.address, SHAREGRAPH_API_KEY: key } });

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "sg-cli-"));
  [demo, empty] = await Promise.all([
    startTestServer({ overrides: { afterIndexReady: loadDemo }, env: { SHAREGRAPH_API_KEYS: `${ADMIN_KEY}:admin,${CHECK_KEY}:check,${BOUND_KEY}:admin;name=dashboard;actors=alice` } }),
    startTestServer(),
  ]);
  // A partner that accepted, and an invitation still pending: rows of the partner tables for the export.
  const c = demo.clients();
  const invited = await c.partner.invitePartner({ actor: "alice", ownerOrganizationId: "acme", email: "pat@globex.example", items: [{ type: "report", id: "pipeline" }] });
  await c.partner.acceptInvitation({ invitationToken: invited.invitationToken, userId: "pat", organizationName: "Globex" });
  await c.partner.invitePartner({ actor: "alice", ownerOrganizationId: "acme", email: "quinn@initech.example", items: [{ type: "report", id: "pipeline" }] });
}, 180_000);

afterAll(async () => {
  await Promise.all([demo?.stop(), empty?.stop()]);
  rmSync(work, { recursive: true, force: true });
});

describe("sharegraph check", () => {
  it("prints allowed and exits 0, prints denied and exits 1 (address and key from the environment)", async () => {
    const [allowed, denied] = await Promise.all([onDemo(["check", "dashboard:q3-revenue", "edit", "user:dave"]), onDemo(["check", "dashboard:q3-revenue", "edit", "user:bob"])]);
    expect(allowed).toMatchObject({ code: 0, stdout: "allowed: user:dave can edit dashboard:q3-revenue\n", stderr: "" });
    expect(denied).toMatchObject({ code: 1, stdout: "denied: user:bob cannot edit dashboard:q3-revenue\n", stderr: "" });
  });

  it("--json prints one object; the exit code still says denied", async () => {
    const r = await onDemo(["check", "dashboard:q3-revenue", "edit", "user:bob", "--json", "--fully-consistent"]);
    expect(r.code).toBe(1);
    const body = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(body).toMatchObject({ allowed: false, resource: "dashboard:q3-revenue", permission: "edit", subject: "user:bob" });
    expect(body["consistencyToken"]).toMatch(/^sg2\./);
  });

  it("reads the key from .sharegraph/api-keys in the current directory, the address from --addr", async () => {
    const dir = mkdtempSync(join(work, "local-"));
    mkdirSync(join(dir, ".sharegraph"));
    writeFileSync(join(dir, ".sharegraph", "api-keys"), `# generated\n${CHECK_KEY}:check;name=local-check\n${ADMIN_KEY}:admin;name=local-admin\n`);
    const r = await cli(["check", "dashboard:q3-revenue", "view", "user:bob", "--addr", demo.address], { cwd: dir });
    expect(r).toMatchObject({ code: 0, stdout: "allowed: user:bob can view dashboard:q3-revenue\n" });
  });

  it("a wrong key: the server's UNAUTHENTICATED message, exit 2", async () => {
    const r = await onDemo(["check", "dashboard:q3-revenue", "view", "user:bob"], "not-a-key-0123456789");
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("unknown API key (unauthenticated)");
    expect(r.stderr).toContain("SHAREGRAPH_API_KEY was refused");
  });

  it("an unreachable address: a message naming it, exit 2", async () => {
    const port = await closedPort();
    const r = await cli(["check", "dashboard:q3-revenue", "view", "user:bob", "--addr", `127.0.0.1:${port}`, "--key", ADMIN_KEY]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`cannot reach sharegraph at http://127.0.0.1:${port} (connection refused)`);
  });

  it("a malformed object or an unknown command: a usage message, exit 2, nothing sent", async () => {
    const [bad, unknown] = await Promise.all([onDemo(["check", "q3-revenue", "view", "user:bob"]), onDemo(["frobnicate"])]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('resource "q3-revenue": write it as type:id');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
  });

  it("an invalid permission: the server's INVALID_ARGUMENT message and code", async () => {
    const r = await onDemo(["check", "dashboard:q3-revenue", "fly", "user:bob"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/permission.*\(invalid_argument\)/);
  });
});

describe("sharegraph explain", () => {
  it("R8: says why not, with what exists and what is missing; exit 1", async () => {
    const r = await onDemo(["explain", "dashboard:q3-revenue", "edit", "user:bob"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^denied: User bob cannot edit dashboard q3-revenue\./);
    expect(r.stdout).toContain("What exists\n  • user bob is viewer on dashboard q3-revenue");
    expect(r.stdout).toContain("Missing\n");
    expect(r.stdout).toContain("ANALYZE on workspace emea");
  });

  it("--json: the paths and the missing parts; exit 0 when allowed", async () => {
    const r = await onDemo(["explain", "dashboard:q3-revenue", "edit", "user:dave", "--json"]);
    expect(r.code).toBe(0);
    const body = JSON.parse(r.stdout) as { allowed: boolean; grantingPaths: Array<{ summary: string; steps: string[] }>; missing: string[] };
    expect(body.allowed).toBe(true);
    expect(body.grantingPaths.length).toBeGreaterThan(0);
    expect(body.grantingPaths.flatMap((p) => p.steps).join("\n")).toContain("group:analysts");
  });
});

describe("sharegraph lookup", () => {
  it("resources: one type:id a line; --json a sorted list", async () => {
    const [human, json] = await Promise.all([
      onDemo(["lookup", "resources", "dashboard", "view", "user:carol"]),
      onDemo(["lookup", "resources", "dashboard", "view", "user:carol", "--json"]),
    ]);
    expect(human).toMatchObject({ code: 0, stdout: "dashboard:carol-draft\ndashboard:q3-revenue\n" });
    expect(JSON.parse(json.stdout)).toMatchObject({ resourceType: "dashboard", permission: "view", subject: "user:carol", resources: ["carol-draft", "q3-revenue"] });
  });

  it("subjects: users with ANALYZE on workspace emea", async () => {
    const [human, json] = await Promise.all([
      onDemo(["lookup", "subjects", "workspace:emea", "analyze", "user"]),
      onDemo(["lookup", "subjects", "workspace:emea", "analyze", "user", "--json"]),
    ]);
    expect(human.code).toBe(0);
    expect(human.stdout.split("\n")).toEqual(expect.arrayContaining(["user:alice", "user:carol", "user:dave"]));
    expect(human.stdout).not.toContain("user:bob");
    expect((JSON.parse(json.stdout) as { subjects: string[] }).subjects).toEqual(expect.arrayContaining(["alice", "carol", "dave"]));
  });

  it("nothing found: a dim line in human output, an empty list in --json", async () => {
    const [human, json] = await Promise.all([
      onDemo(["lookup", "resources", "workbook", "edit", "user:bob"]),
      onDemo(["lookup", "resources", "workbook", "edit", "user:bob", "--json"]),
    ]);
    expect(human).toMatchObject({ code: 0, stdout: "no workbook on which user:bob can edit\n" });
    expect((JSON.parse(json.stdout) as { resources: string[] }).resources).toEqual([]);
  });
});

describe("sharegraph share / unshare", () => {
  it("share, check with its token, unshare, check with that token (R40: --actor)", async () => {
    const shared = await onDemo(["share", "workbook:budget", "viewer", "user:bob", "--actor", "alice"]);
    expect(shared.code).toBe(0);
    expect(shared.stdout).toContain("shared: user:bob is viewer on workbook:budget");
    const token = /consistency token: (\S+)/.exec(shared.stdout)![1]!;
    expect((await onDemo(["check", "workbook:budget", "view", "user:bob", "--token", token])).code).toBe(0);

    const unshared = await onDemo(["unshare", "workbook:budget", "user:bob", "--actor", "alice", "--json"]);
    expect(unshared.code).toBe(0);
    const after = (JSON.parse(unshared.stdout) as { consistencyToken: string }).consistencyToken;
    expect((await onDemo(["check", "workbook:budget", "view", "user:bob", "--token", after])).code).toBe(1);
  });

  it("--json share; a refused share prints the server's reason (R2, failed_precondition); no --actor is a usage error", async () => {
    const [json, refused, noActor] = await Promise.all([
      onDemo(["share", "report:pipeline", "sharer", "user:bob", "--actor", "alice", "--json"]),
      onDemo(["share", "dashboard:q3-revenue", "viewer", "user:dave", "--actor", "alice"]),
      onDemo(["share", "dashboard:q3-revenue", "viewer", "user:dave"]),
    ]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ resource: "report:pipeline", subject: "user:bob", grant: "sharer", noOp: false });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("(failed_precondition)");
    expect(refused.stderr).toContain("inherits editor");
    expect(noActor.code).toBe(2);
    expect(noActor.stderr).toContain("--actor is required");
  });
});

describe("sharegraph partners", () => {
  it("a table of partners, pending invitations and channel partners; --json the same data", async () => {
    const [human, json] = await Promise.all([onDemo(["partners", "acme"]), onDemo(["partners", "acme", "--json"])]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/Partners of acme\nORGANIZATION\s+NAME\s+REPORTS\s+BOARDS\s+SINCE\n\S+\s+Globex\s+1\s+0\s+\d{4}-/);
    expect(human.stdout).toMatch(/Pending invitations\nEMAIL\s+ITEMS.*\nquinn@initech\.example\s+report:pipeline/);
    const body = JSON.parse(json.stdout) as { partners: Array<{ name: string; sharedReports: number }>; pendingInvitations: Array<{ email: string }>; channelPartners: unknown[] };
    expect(body.partners).toEqual([expect.objectContaining({ name: "Globex", sharedReports: 1 })]);
    expect(body.pendingInvitations.map((i) => i.email)).toEqual(["quinn@initech.example"]);
    expect(Array.isArray(body.channelPartners)).toBe(true);
  });
});

describe("sharegraph status / reconcile", () => {
  it("status: health of each service, the outbox and the engine; exit 0 when serving", async () => {
    const [human, json] = await Promise.all([onDemo(["status"]), onDemo(["status", "--json"])]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`sharegraph at http://${demo.address}: SERVING`);
    expect(human.stdout).toMatch(/PermissionService\s+SERVING/);
    expect(human.stdout).toMatch(/outbox: in sync \(0 pending batches\); last applied batch \d+/);
    const body = JSON.parse(json.stdout) as { health: string; outbox: { pendingBatches: number; engine: string } };
    expect(body.health).toBe("SERVING");
    expect(body.outbox.pendingBatches).toBe(0);
    expect(body.outbox.engine).toMatch(/\w+/);
    expect(human.stdout).toContain(`engine: ${body.outbox.engine}`);
  });

  it("status with a check key: health, and why the outbox is not shown", async () => {
    const r = await onDemo(["status"], CHECK_KEY);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("SERVING");
    expect(r.stdout).toContain("needs an admin API key");
  });

  it("reconcile: no drift, in words and in --json", async () => {
    const [human, json] = await Promise.all([onDemo(["reconcile", "--dry-run"]), onDemo(["reconcile", "--json"])]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/relationships: (\d+) expected \(from Postgres\), \1 in SpiceDB\nno drift\n/);
    expect(JSON.parse(json.stdout)).toMatchObject({ missing: 0, extra: 0 });
  });
});

describe("sharegraph export / import", () => {
  it("the demo tenant restores into an empty deployment with the same answers and no drift", async () => {
    const file = join(work, "backup.jsonl");
    const exported = await onDemo(["export", file]);
    expect(exported.code).toBe(0);
    expect(exported.stdout).toMatch(/^exported \d+ rows of \d+ tables to /);
    const lines = readFileSync(file, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ header: { format: "sharegraph-export", version: 1, migration: expect.stringMatching(/^\d{4}_/) } });
    const tables = new Set(lines.slice(1).map((l) => l["table"]));
    for (const t of ["users", "organizations", "groups", "group_members", "workspaces", "folders", "content", "grants", "partnerships", "partner_shares", "partner_invitations"]) expect(tables).toContain(t);
    // No secrets: the server key, the outbox, the notifications (sealed invitation tokens).
    for (const t of ["server_keys", "outbox", "notifications"]) expect(tables).not.toContain(t);
    // To standard output too, the summary on standard error.
    const piped = await onDemo(["export"]);
    expect(piped.code).toBe(0);
    expect(piped.stdout.split("\n").length).toBe(lines.length + 1);
    expect(piped.stderr).toMatch(/^exported \d+ rows/);

    const onEmpty = (args: readonly string[], input?: string) =>
      cli(args, { env: { SHAREGRAPH_ADDR: empty.address, SHAREGRAPH_API_KEY: ADMIN_KEY }, ...(input !== undefined ? { input } : {}) });

    // A bad record is refused with its line, and nothing of its batch is kept.
    const header = readFileSync(file, "utf8").split("\n")[0]!;
    const user = JSON.stringify({ table: "users", row: { id: "zed", email: "zed@example.com", display_name: "Zed", created_at: "2026-01-01T00:00:00.000Z" } });
    const badColumn = JSON.stringify({ table: "users", row: { id: "yan", email: "yan@example.com", display_name: "Yan", created_at: "2026-01-01T00:00:00.000Z", shoe_size: 9 } });
    const bad = await onEmpty(["import"], `${header}\n${user}\n${badColumn}\n`);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('record 3 (users): unknown column "shoe_size" (invalid_argument)');
    const dangling = JSON.stringify({ table: "organization_members", row: { organization_id: "nowhere", user_id: "zed", admin: false, created_at: "2026-01-01T00:00:00.000Z" } });
    const fk = await onEmpty(["import", "-"], `${header}\n${user}\n${dangling}\n`);
    expect(fk.code).toBe(2);
    expect(fk.stderr).toMatch(/record 3 \(organization_members\): refers to a row that is not there .*\(invalid_argument\)/);
    const notJson = await onEmpty(["import"], `${header}\n{oops\n`);
    expect(notJson).toMatchObject({ code: 2, stderr: "sharegraph import: line 2: not valid JSON\n" });

    // The API itself: the first call starts with the header, a later call names a known import.
    const admin = empty.clients().admin;
    const row = (json: string) => ({ record: { case: "row" as const, value: { table: "users", json } } });
    await expect(admin.importData({ records: [row(JSON.stringify(JSON.parse(user).row))] })).rejects.toMatchObject({
      code: Code.InvalidArgument,
      rawMessage: "record 1: an import starts with the export's header record",
    });
    await expect(admin.importData({ importId: "nope", records: [row("{}")] })).rejects.toMatchObject({ code: Code.FailedPrecondition, rawMessage: expect.stringContaining("import nope is not in progress") });
    const future = { ...(JSON.parse(header) as { header: Record<string, unknown> }).header, version: 2 };
    const newer = await onEmpty(["import"], `${JSON.stringify({ header: future })}\n`);
    expect(newer.stderr).toContain("record 1 (header): format version 2 is not supported");
    // An export of an older database migration is refused, unless only migrations that change nothing an export holds came after it.
    const older = await onEmpty(["import"], `${JSON.stringify({ header: { ...future, version: 1, migration: "0008_service_relationships" } })}\n`);
    expect(older.stderr).toContain('record 1 (header): exported at database migration "0008_service_relationships", this server is at "0012_content_by_folder_and_kind" (and reads exports of "0011_group_closure", "0010_cumulative_roles", "0009_workspace_ancestors": same tables)');

    const imported = await onEmpty(["import", file, "--json"]);
    expect(imported.stderr).toBe("");
    expect(imported.code).toBe(0);
    const summary = JSON.parse(imported.stdout) as { rowsWritten: number; relationships: number };
    expect(summary.rowsWritten).toBeGreaterThan(30);
    expect(summary.relationships).toBeGreaterThan(30);

    // The same answers, asked of both deployments.
    const questions: CheckBulkPermissionsItem[] = [];
    const users = ["alice", "bob", "carol", "dave", "pat"];
    const resources: Array<[string, string, string[]]> = [
      ["dashboard", "q3-revenue", ["view", "share", "edit", "manage"]],
      ["dashboard", "carol-draft", ["view", "edit", "manage"]],
      ["report", "pipeline", ["view", "share", "edit"]],
      ["workbook", "budget", ["view", "edit"]],
      ["folder", "sales", ["view", "see_name", "edit"]],
      ["folder", "finance", ["view", "manage"]],
      ["workspace", "emea", ["view", "analyze", "manage"]],
      ["workspace", "emea-sales", ["view", "analyze", "manage"]],
      ["organization", "acme", ["manage"]],
    ];
    for (const id of users) {
      for (const [type, rid, permissions] of resources) {
        for (const permission of permissions) {
          questions.push({ $typeName: "sharegraph.v1.CheckBulkPermissionsItem", resource: { $typeName: "sharegraph.v1.ObjectRef", type, id: rid }, permission, subject: { $typeName: "sharegraph.v1.SubjectRef", type: "user", id, relation: "" } });
        }
      }
    }
    const answers = async (server: TestServer) => {
      const c = server.clients();
      const checks = (await c.permission.checkBulkPermissions({ items: questions, consistency: FULLY })).results.map((r) => `${r.item?.resource?.type}:${r.item?.resource?.id} ${r.item?.permission} ${r.item?.subject?.id} ${r.allowed}${r.error}`);
      const lookups: string[] = [];
      for (const id of users) {
        for (const type of ["dashboard", "report", "workbook", "folder"]) {
          const found: string[] = [];
          for await (const r of c.permission.lookupResources({ resourceType: type, permission: "view", subject: { type: "user", id }, consistency: FULLY })) found.push(r.resourceId);
          lookups.push(`${id} ${type}: ${found.sort().join(",")}`);
        }
      }
      return { checks, lookups };
    };
    const [before, after] = await Promise.all([answers(demo), answers(empty)]);
    expect(after).toEqual(before);
    expect(before.checks.filter((c) => c.endsWith("true")).length).toBeGreaterThan(20);
    expect(before.checks.filter((c) => c.endsWith("false")).length).toBeGreaterThan(20);

    const reconciled = await onEmpty(["reconcile", "--dry-run", "--json"]);
    expect(JSON.parse(reconciled.stdout)).toMatchObject({ missing: 0, extra: 0 });
    const source = JSON.parse((await onDemo(["reconcile", "--dry-run", "--json"])).stdout) as { expectedRelationships: number };
    expect(JSON.parse(reconciled.stdout)).toMatchObject({ expectedRelationships: source.expectedRelationships });

    // An export of the restored deployment has the same rows, but for the platform
    // admin's user row, which the restored deployment wrote itself when it started.
    const rows = (text: string) =>
      text
        .split("\n")
        .slice(1)
        .filter((l) => l !== "" && !l.startsWith('{"table":"users","row":{"id":"admin",'));
    const again = await onEmpty(["export"]);
    expect(rows(again.stdout)).toEqual(rows(piped.stdout));
    expect(rows(again.stdout).length).toBe(lines.length - 2);

    // Writes after the import get new ids (identity sequences moved past the imported rows).
    const shared = await onEmpty(["share", "workbook:budget", "viewer", "user:bob", "--actor", "alice"]);
    expect(shared.code).toBe(0);

    // A second import is refused: the deployment is not empty any more.
    const twice = await onEmpty(["import", file]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain("this deployment is not empty");
    expect(twice.stderr).toContain("(failed_precondition)");
  });

  it("an import in many small batches (each call continues the first one's import) restores the same rows, also from an export taken before a data-only migration", async () => {
    const file = join(work, "batches.jsonl");
    expect((await onDemo(["export", file])).code).toBe(0);
    // As exported by the version before 0010 (which changed no table) 0011 (which added only the group closure, computed
    // again on import) and 0012 (indexes only): SpiceDB still ends exact, cumulative relations and the group closure included.
    const [head, ...rest] = readFileSync(file, "utf8").split("\n");
    const older = JSON.parse(head!) as { header: { migration: string } };
    expect(older.header.migration).toBe("0012_content_by_folder_and_kind");
    writeFileSync(file, [JSON.stringify({ header: { ...older.header, migration: "0009_workspace_ancestors" } }), ...rest].join("\n"));
    const third = await startTestServer();
    try {
      const env = { SHAREGRAPH_ADDR: third.address, SHAREGRAPH_API_KEY: ADMIN_KEY };
      const imported = await cli(["import", file, "--batch-size", "7", "--json"], { env });
      expect(imported.stderr).toBe("");
      const lines = readFileSync(file, "utf8").trimEnd().split("\n");
      // Every row but the platform admin's user and platform-admin rows, which the fresh deployment already had.
      expect(JSON.parse(imported.stdout)).toMatchObject({ rowsWritten: lines.length - 3 });
      const reconciled = await cli(["reconcile", "--dry-run", "--json"], { env });
      expect(JSON.parse(reconciled.stdout)).toMatchObject({ missing: 0, extra: 0 });
      expect((await cli(["check", "dashboard:q3-revenue", "edit", "user:dave"], { env })).code).toBe(0);
      expect((await cli(["check", "dashboard:q3-revenue", "edit", "user:bob"], { env })).code).toBe(1);
      const bad = await cli(["import", file, "--batch-size", "0"], { env });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('--batch-size "0": a whole number from 1 to 1000');
    } finally {
      await third.stop();
    }
  });

  it("export and import need an operator's admin key: not a check key, not a key bound to actors", async () => {
    const [check, bound, boundImport] = await Promise.all([
      onDemo(["export"], CHECK_KEY),
      onDemo(["export"], BOUND_KEY),
      cli(["import"], { env: { SHAREGRAPH_ADDR: demo.address, SHAREGRAPH_API_KEY: BOUND_KEY }, input: '{"header":{"format":"sharegraph-export","version":1}}\n' }),
    ]);
    expect(check.code).toBe(2);
    expect(check.stderr).toContain("needs an admin API key");
    expect(check.stderr).toContain("(permission_denied)");
    expect(bound.code).toBe(2);
    expect(bound.stderr).toContain('API key "dashboard" may not export the system of record: it is bound to actors; use an operator key (actors=*) (permission_denied)');
    expect(boundImport.code).toBe(2);
    expect(boundImport.stderr).toContain('API key "dashboard" may not import the system of record');
  });
});

describe("sharegraph --help", () => {
  it("lists the commands, the sources of address and key, and the exit codes", async () => {
    const r = await cli(["--help"]);
    expect(r.code).toBe(0);
    for (const name of ["check", "explain", "lookup", "share", "unshare", "partners", "status", "reconcile", "export", "import"]) expect(r.stdout).toMatch(new RegExp(`^  ${name} `, "m"));
    expect(r.stdout).toContain("SHAREGRAPH_ADDR");
    expect(r.stdout).toContain("SHAREGRAPH_API_KEY");
    expect(r.stdout).toContain("Exit codes: 0 done (check/explain: allowed), 1 denied (check/explain), 2 error.");
  });
});

function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
