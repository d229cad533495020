/**
 * Issue 7 item 9: LookupResources returns each resource once — in one
 * stream and across all pages of one lookup — although SpiceDB reports a
 * resource once per path that reaches it. On the demo tenant, carol sees
 * q3-revenue as an editor of folder sales (through group analysts), as
 * ANALYZE on workspace emea, and more.
 */
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadDemo } from "../../src/demo.js";
import { Role } from "../../src/gen/sharegraph/v1/common_pb.js";
import { collect, fresh, refusal, user } from "../support/rpc.js";
import { startTestServer, type Clients, type TestServer } from "../support/server.js";

let server: TestServer;
let c: Clients;
let token: string;

beforeAll(async () => {
  server = await startTestServer();
  c = server.clients();
  await loadDemo(server.app.domain, server.app.log);
  // Many paths to the same items: carol also gets direct grants on items her group's folder grant covers.
  for (let i = 0; i < 12; i++) {
    await c.content.createContent({ actor: "alice", kind: "dashboard", workspaceId: "emea", contentId: `d${String(i).padStart(2, "0")}`, name: `D${i}`, folderId: "sales" });
  }
  for (let i = 0; i < 12; i += 2) {
    const shared = await c.content.share({ actor: "alice", resource: { type: "dashboard", id: `d${String(i).padStart(2, "0")}` }, subject: user("carol"), role: Role.MANAGER });
    token = shared.consistencyToken;
  }
});

afterAll(async () => {
  await server?.stop();
});

const lookup = (pageSize: number, cursor = "") => ({
  resourceType: "dashboard",
  permission: "view",
  subject: user("carol"),
  consistency: fresh(token),
  pageSize,
  cursor,
});

async function allPages(pageSize: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor = "";
  let pages = 0;
  for (;;) {
    const page = await collect(c.permission.lookupResources(lookup(pageSize, cursor)));
    pages++;
    ids.push(...page.map((r) => r.resourceId));
    if (page.length < pageSize) return { ids, pages };
    cursor = page.at(-1)!.cursor;
    if (pages > 100) throw new Error("pages never end");
  }
}

describe("LookupResources: each resource exactly once (issue 7, item 9)", () => {
  it("an unpaged stream names each resource once", async () => {
    const ids = (await collect(c.permission.lookupResources(lookup(0)))).map((r) => r.resourceId);
    expect(ids.length).toBeGreaterThanOrEqual(13);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it.each([1, 2, 5, 50])("pages of %i: every resource once across all pages, in id order", async (pageSize) => {
    const unpaged = (await collect(c.permission.lookupResources(lookup(0)))).map((r) => r.resourceId).sort();
    const { ids } = await allPages(pageSize);
    expect(ids).toEqual(unpaged);
  });

  it("the README's example (page size 50) returns q3-revenue once", async () => {
    const page = await collect(c.permission.lookupResources(lookup(50)));
    expect(page.filter((r) => r.resourceId === "q3-revenue")).toHaveLength(1);
  });

  it("later pages read the first page's snapshot: an item shared after it does not appear, none is repeated", async () => {
    const first = await collect(c.permission.lookupResources(lookup(3)));
    await c.content.createContent({ actor: "alice", kind: "dashboard", workspaceId: "emea", contentId: "d99-late", name: "Late", folderId: "sales" });
    const ids = first.map((r) => r.resourceId);
    let cursor = first.at(-1)!.cursor;
    for (;;) {
      const page = await collect(c.permission.lookupResources(lookup(3, cursor)));
      ids.push(...page.map((r) => r.resourceId));
      if (page.length < 3) break;
      cursor = page.at(-1)!.cursor;
    }
    expect(ids).not.toContain("d99-late");
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("a cursor is refused for another lookup, or when altered", async () => {
    const [first] = await collect(c.permission.lookupResources(lookup(1)));
    const other = { ...lookup(1, first!.cursor), subject: user("bob") };
    await refusal(collect(c.permission.lookupResources(other)), Code.InvalidArgument, /^cursor: not a cursor issued by this server for this lookup/);
    const [body, mac] = first!.cursor.split(".");
    const altered = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body!, "base64url").toString()), after: "" })).toString("base64url");
    await refusal(collect(c.permission.lookupResources(lookup(1, `${altered}.${mac}`))), Code.InvalidArgument, /^cursor:/);
    await refusal(collect(c.permission.lookupResources(lookup(1, "garbage"))), Code.InvalidArgument, /^cursor:/);
  });
});
