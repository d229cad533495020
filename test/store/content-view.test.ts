import { readFileSync } from "node:fs";
import { sql, type Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app.js";
import type { CheckItem } from "../../src/engine/engine.js";
import type { Database } from "../../src/store/database.js";
import { ContentViewRepo } from "../../src/store/content-view.js";
import { StoreUnavailableError } from "../../src/store/errors.js";
import { TEST_DATABASE_URL } from "../support/database.js";
import { PLATFORM_ADMIN, startTestServer, type TestServer } from "../support/server.js";

/*
 * Each way to view content, one scenario at a time, asked of SpiceDB and of
 * Postgres (src/store/content-view.ts: canView and viewable): both must give
 * the answer the rules give. The property test next to this one varies them;
 * these name them.
 *
 * Acme: ann (admin), bob, cid, dee. Workspaces top ⊃ mid ⊃ low. Groups
 * inner ⊂ middle ⊂ outer, cid in inner. Partner organization: pat (its
 * founder) and pia.
 */

let server: TestServer;
let app: App;
let token = "";
let partnerOrg = "";

const item = (type: string, id: string) => ({ type, id });
const track = (committed: { token: string }) => {
  token = committed.token;
  return committed;
};

async function answers(userId: string, ref: { type: string; id: string }): Promise<{ spicedb: boolean; postgres: boolean; listed: boolean }> {
  const question: CheckItem = { resource: ref, permission: "view", subject: { type: "user", id: userId } };
  const [spicedb] = (await app.domain.permissions.checkBulk([question], { kind: "at_least_as_fresh", token })).results;
  const [postgres] = await app.domain.store.read.contentView.canView([{ userId, kind: ref.type, contentId: ref.id }]);
  const listed = (await app.domain.store.read.contentView.viewable(userId, ref.type)).includes(ref.id);
  return { spicedb: spicedb!.allowed, postgres: postgres!, listed };
}

/** SpiceDB, Postgres one by one, and Postgres as a lookup all say `expected`. */
async function expectView(userId: string, ref: { type: string; id: string }, expected: boolean): Promise<void> {
  expect(await answers(userId, ref), `${userId} view ${ref.type}:${ref.id}`).toEqual({ spicedb: expected, postgres: expected, listed: expected });
}

beforeAll(async () => {
  server = await startTestServer();
  app = server.app;
  const { directory, catalog, partners } = app.domain;
  for (const u of ["ann", "bob", "cid", "dee", "eve"]) await directory.createUser(PLATFORM_ADMIN, { id: u, email: `${u}@cv.example`, displayName: u });
  await directory.createOrganization(PLATFORM_ADMIN, { id: "acme", name: "Acme", channelPartner: false, adminUserIds: ["ann"] });
  for (const u of ["bob", "cid", "dee"]) await directory.addOrganizationMember("ann", "acme", { userId: u }, false);
  await directory.createWorkspace("ann", "acme", { id: "top", name: "Top" });
  await directory.createWorkspace("ann", "acme", { id: "mid", name: "Mid", parentId: "top" });
  await directory.createWorkspace("ann", "acme", { id: "low", name: "Low", parentId: "mid" });
  for (const g of ["inner", "middle", "outer"]) await directory.createGroup("ann", "acme", { id: g, name: g });
  await directory.addGroupMember("ann", "inner", { kind: "user", id: "cid" });
  await directory.addGroupMember("ann", "middle", { kind: "group", id: "inner" });
  await directory.addGroupMember("ann", "outer", { kind: "group", id: "middle" });
  await catalog.createFolder("ann", { workspaceId: "mid", id: "f1", name: "F1" });
  await catalog.createFolder("ann", { workspaceId: "mid", id: "f2", name: "F2", parentId: "f1" });
  await catalog.createFolder("ann", { workspaceId: "mid", id: "f3", name: "F3", parentId: "f2" });
  await catalog.createContent("ann", { kind: "dashboard", workspaceId: "mid", id: "deep", name: "Deep", folderId: "f3" });
  await catalog.createContent("ann", { kind: "workbook", workspaceId: "mid", id: "loose", name: "Loose" });
  await catalog.createContent("ann", { kind: "report", workspaceId: "top", id: "r-top", name: "R top" });
  await catalog.createContent("ann", { kind: "board", workspaceId: "low", id: "b-low", name: "B low" });
  // The partner organization: pat accepts an invitation to r-top and founds it; pia joins.
  const invited = await partners.invite("ann", "acme", { email: "pat@partner-cv.example", items: [item("report", "r-top")] });
  const accepted = await partners.accept(invited.value.token!, { userId: "pat", displayName: "Pat", organizationName: "Partner" });
  partnerOrg = accepted.value.partner.partnership.partner_organization_id;
  await directory.createUser(PLATFORM_ADMIN, { id: "pia", email: "pia@partner-cv.example", displayName: "Pia" });
  track(await directory.addOrganizationMember("pat", partnerOrg, { userId: "pia" }, false));
});

afterAll(async () => {
  await server?.stop();
});

describe("view on content, from SpiceDB and from Postgres", () => {
  it("R7: an organization admin views everything; a member with no grant and no workspace permission nothing; an item that does not exist nobody", async () => {
    await expectView("ann", item("dashboard", "deep"), true);
    await expectView("bob", item("dashboard", "deep"), false);
    await expectView("ann", item("dashboard", "no-such"), false);
    await expectView("ann", item("report", "deep"), false);
  });

  it("R1: a grant on a folder two levels up reaches the item, capped by the workspace (view in the tree) and lost with it", async () => {
    const { directory, sharing } = app.domain;
    track(await directory.setWorkspacePermission("ann", "mid", { kind: "user", id: "bob" }, "view"));
    track(await sharing.share("ann", item("folder", "f1"), { kind: "user", id: "bob" }, "viewer"));
    await expectView("bob", item("dashboard", "deep"), true);
    await expectView("bob", item("workbook", "loose"), false);
    // Without a workspace permission anywhere in the tree, the grant gives nothing (R7's cap).
    track(await directory.removeWorkspacePermission("ann", "mid", { kind: "user", id: "bob" }));
    await expectView("bob", item("dashboard", "deep"), false);
  });

  it("R6/R7: a workspace permission above or below the item's workspace lets a grant count (view in the tree)", async () => {
    const { directory, sharing } = app.domain;
    track(await directory.setWorkspacePermission("ann", "top", { kind: "user", id: "dee" }, "view"));
    track(await sharing.share("ann", item("workbook", "loose"), { kind: "user", id: "dee" }, "viewer"));
    await expectView("dee", item("workbook", "loose"), true);
    track(await directory.removeWorkspacePermission("ann", "top", { kind: "user", id: "dee" }));
    await expectView("dee", item("workbook", "loose"), false);
    track(await directory.setWorkspacePermission("ann", "low", { kind: "user", id: "dee" }, "view"));
    await expectView("dee", item("workbook", "loose"), true);
    track(await directory.removeWorkspacePermission("ann", "low", { kind: "user", id: "dee" }));
    // A guest of a workspace below also views in the tree.
    track(await directory.addWorkspaceGuest("ann", "low", { kind: "user", id: "dee" }));
    await expectView("dee", item("workbook", "loose"), true);
    track(await directory.removeWorkspaceGuest("ann", "low", { kind: "user", id: "dee" }));
    await expectView("dee", item("workbook", "loose"), false);
  });

  it("R7: a guest views all of the workspace's content, and only that workspace's", async () => {
    const { directory } = app.domain;
    track(await directory.addWorkspaceGuest("ann", "low", { kind: "user", id: "eve" }));
    await expectView("eve", item("board", "b-low"), true);
    await expectView("eve", item("workbook", "loose"), false);
    track(await directory.removeWorkspaceGuest("ann", "low", { kind: "user", id: "eve" }));
    await expectView("eve", item("board", "b-low"), false);
  });

  it("R7: MANAGE on a workspace above manages (and views) everything below it; ANALYZE there does not", async () => {
    const { directory } = app.domain;
    track(await directory.setWorkspacePermission("ann", "top", { kind: "user", id: "eve" }, "analyze"));
    await expectView("eve", item("board", "b-low"), false);
    track(await directory.setWorkspacePermission("ann", "top", { kind: "user", id: "eve" }, "manage"));
    await expectView("eve", item("board", "b-low"), true);
    await expectView("eve", item("dashboard", "deep"), true);
    track(await directory.removeWorkspacePermission("ann", "top", { kind: "user", id: "eve" }));
    await expectView("eve", item("board", "b-low"), false);
  });

  it("R1: a grant to a group reaches the members of groups nested in it at any depth, and leaves with the nesting", async () => {
    const { directory, sharing } = app.domain;
    track(await directory.setWorkspacePermission("ann", "mid", { kind: "group", id: "outer" }, "view"));
    track(await sharing.share("ann", item("workbook", "loose"), { kind: "group", id: "outer" }, "viewer"));
    await expectView("cid", item("workbook", "loose"), true);
    track(await directory.removeGroupMember("ann", "middle", { kind: "group", id: "inner" }));
    await expectView("cid", item("workbook", "loose"), false);
    track(await directory.addGroupMember("ann", "middle", { kind: "group", id: "inner" }));
  });

  it("R1: the organization-wide default role reaches its members and no one else", async () => {
    const { directory, sharing } = app.domain;
    track(await directory.setWorkspacePermission("ann", "top", { kind: "user", id: "bob" }, "view"));
    track(await sharing.setOrganizationDefaultRole("ann", item("report", "r-top"), "viewer"));
    await expectView("bob", item("report", "r-top"), true);
    track(await sharing.setOrganizationDefaultRole("ann", item("report", "r-top"), undefined));
    await expectView("bob", item("report", "r-top"), false);
  });

  it("R12/R13: members of a partner organization view the reports shared with it, and stop when the partner is removed", async () => {
    await expectView("pat", item("report", "r-top"), true);
    await expectView("pia", item("report", "r-top"), true);
    await expectView("pat", item("board", "b-low"), false);
    track(await app.domain.partners.remove("ann", "acme", partnerOrg));
    await expectView("pat", item("report", "r-top"), false);
    await expectView("pia", item("report", "r-top"), false);
  });
});

describe("what the Postgres path takes for granted", () => {
  it("the schema defines interact as view on every content kind, so Postgres answers both alike", () => {
    const schema = readFileSync(new URL("../../schema/sharegraph.zed", import.meta.url), "utf8");
    for (const kind of ["report", "board", "dashboard", "workbook"]) {
      const definition = new RegExp(`definition ${kind} \\{([\\s\\S]*?)\\n\\}`).exec(schema)?.[1] ?? "";
      expect(definition, kind).toMatch(/^\s*permission interact = view\s*$/m);
    }
  });
});

describe("a bulk of view questions when the database fails", () => {
  it("fails the call with the store's error and sends no further statement once one has failed", async () => {
    let sent = 0;
    const failing = {
      executeQuery: async () => {
        const ordinal = ++sent;
        await new Promise((resolve) => setTimeout(resolve, 1));
        if (ordinal === 3) throw new StoreUnavailableError("the connection to the database was lost");
        return { rows: [{ allowed: true }] };
      },
    } as unknown as Kysely<Database>;
    const questions = Array.from({ length: 100 }, (_, i) => ({ userId: "ann", kind: "report", contentId: `r${i}` }));
    await expect(new ContentViewRepo(failing).canView(questions)).rejects.toThrow(StoreUnavailableError);
    await new Promise((resolve) => setTimeout(resolve, 20));
    // The three others in flight when it failed may finish; nothing is sent after.
    expect(sent).toBeLessThanOrEqual(6);
  });
});

describe.runIf(TEST_DATABASE_URL)("view statements on Postgres", () => {
  it("are prepared once per connection (planning them costs more than running them) and answer the same when run by name", async () => {
    const prepared = await app.domain.store.transaction(async (tx) => {
      const first = await tx.contentView.canView([{ userId: "ann", kind: "dashboard", contentId: "deep" }]);
      const again = await tx.contentView.canView([{ userId: "ann", kind: "dashboard", contentId: "deep" }]);
      await tx.contentView.viewable("ann", "dashboard");
      // The transaction's own connection: prepared statements are per session.
      const db = (tx as unknown as { readonly db: Kysely<Database> }).db;
      const { rows } = await sql<{ name: string }>`select name from pg_prepared_statements order by name`.execute(db);
      return { first, again, names: rows.map((r) => r.name.replace(/_[0-9a-f]{12}$/, "")) };
    });
    expect(prepared.first).toEqual([true]);
    expect(prepared.again).toEqual([true]);
    expect(prepared.names).toEqual(expect.arrayContaining(["sg_can_view", "sg_viewable"]));
  });
});

