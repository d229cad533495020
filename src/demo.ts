import type { Domain } from "./app.js";
import type { Logger } from "./logger.js";

/**
 * A small, realistic tenant to try checks on (npm start -- --demo). Loaded
 * through the same domain calls as the API, by the first platform admin;
 * skipped when it is already there. The README's examples use these ids.
 */
export async function loadDemo(domain: Domain, log: Logger, admin = "admin"): Promise<void> {
  const { directory, catalog, sharing, store } = domain;
  if (await store.read.organizations.get("acme")) {
    log.info("demo data already loaded");
    return;
  }
  const users = [
    ["alice", "alice@acme.example", "Alice Admin"],
    ["bob", "bob@acme.example", "Bob Viewer"],
    ["carol", "carol@acme.example", "Carol Analyst"],
    ["dave", "dave@acme.example", "Dave Analyst"],
    ["erin", "erin@agency.example", "Erin (agency)"],
  ] as const;
  for (const [id, email, displayName] of users) await directory.createUser(admin, { id, email, displayName });

  await directory.createOrganization(admin, { id: "acme", name: "Acme Corp", channelPartner: false, adminUserIds: ["alice"] });
  for (const id of ["bob", "carol", "dave"]) await directory.addOrganizationMember("alice", "acme", { userId: id }, false);
  await directory.createGroup("alice", "acme", { id: "analysts", name: "Analysts" });
  await directory.addGroupMember("alice", "analysts", { kind: "user", id: "carol" });
  await directory.createGroup("alice", "acme", { id: "emea-analysts", name: "EMEA analysts" });
  await directory.addGroupMember("alice", "emea-analysts", { kind: "user", id: "dave" });
  await directory.addGroupMember("alice", "analysts", { kind: "group", id: "emea-analysts" });

  await directory.createWorkspace("alice", "acme", { id: "emea", name: "EMEA" });
  await directory.createWorkspace("alice", "acme", { id: "emea-sales", name: "EMEA Sales", parentId: "emea" });
  await directory.setWorkspacePermission("alice", "emea", { kind: "user", id: "bob" }, "view");
  await directory.setWorkspacePermission("alice", "emea", { kind: "group", id: "analysts" }, "analyze");

  // Content: a shared Sales folder, a dashboard shared with Bob, Carol's private draft.
  await catalog.createFolder("alice", { workspaceId: "emea", id: "sales", name: "Sales" });
  await catalog.createContent("alice", { kind: "dashboard", workspaceId: "emea", id: "q3-revenue", name: "Q3 revenue", folderId: "sales" });
  await catalog.createContent("alice", { kind: "report", workspaceId: "emea", id: "pipeline", name: "Pipeline", folderId: "sales" });
  await catalog.createFolder("alice", { workspaceId: "emea", id: "finance", name: "Finance" });
  await catalog.createContent("alice", { kind: "workbook", workspaceId: "emea", id: "budget", name: "Budget 2027", folderId: "finance" });
  await sharing.share("alice", { type: "folder", id: "sales" }, { kind: "group", id: "analysts" }, "editor");
  await sharing.share("alice", { type: "dashboard", id: "q3-revenue" }, { kind: "user", id: "bob" }, "viewer");
  await catalog.createContent("carol", { kind: "dashboard", workspaceId: "emea", id: "carol-draft", name: "Carol's draft" });

  await directory.createOrganization(admin, { id: "northwind", name: "Northwind Partners", channelPartner: true, adminUserIds: ["erin"] });
  await directory.createEntity("alice", "acme", { id: "acme-finance", name: "Acme Finance" });
  await directory.addEntityMember("alice", "acme-finance", "carol");
  log.info("demo data loaded: organization acme (alice, bob, carol, dave), workspaces emea and emea-sales, folders sales and finance");
}
