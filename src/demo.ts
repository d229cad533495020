import type { Domain } from "./app.js";
import type { Logger } from "./logger.js";

/**
 * A small, realistic tenant to try checks on (npm start -- --demo). Loaded
 * through the same domain calls as the API, by the first platform admin;
 * skipped when it is already there. The README's examples use these ids.
 */
export async function loadDemo(domain: Domain, log: Logger, admin = "admin"): Promise<void> {
  const { directory, store } = domain;
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
  for (const id of ["bob", "carol", "dave"]) await directory.addOrganizationMember("alice", "acme", id, false);
  await directory.createGroup("alice", "acme", { id: "analysts", name: "Analysts" });
  await directory.addGroupMember("alice", "analysts", { kind: "user", id: "carol" });
  await directory.createGroup("alice", "acme", { id: "emea-analysts", name: "EMEA analysts" });
  await directory.addGroupMember("alice", "emea-analysts", { kind: "user", id: "dave" });
  await directory.addGroupMember("alice", "analysts", { kind: "group", id: "emea-analysts" });

  await directory.createWorkspace("alice", "acme", { id: "emea", name: "EMEA" });
  await directory.createWorkspace("alice", "acme", { id: "emea-sales", name: "EMEA Sales", parentId: "emea" });
  await directory.setWorkspacePermission("alice", "emea", { kind: "user", id: "bob" }, "view");
  await directory.setWorkspacePermission("alice", "emea", { kind: "group", id: "analysts" }, "analyze");

  await directory.createOrganization(admin, { id: "northwind", name: "Northwind Partners", channelPartner: true, adminUserIds: ["erin"] });
  await directory.createEntity("alice", "acme", { id: "acme-finance", name: "Acme Finance" });
  await directory.addEntityMember("alice", "acme-finance", "carol");
  log.info("demo data loaded: organization acme (alice, bob, carol, dave), workspaces emea and emea-sales");
}
