/**
 * Content sharing over a real server: seed 001 (Sigma folders, both variants)
 * and seed 003 (GoodData dashboards), rules R1–R8 and R40 of DESIGN.md.
 *
 * One server for the file; each scenario has its own id prefix. Every read
 * of the permission index asks to be at least as fresh as the last write.
 */
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Role } from "../../src/gen/sharegraph/v1/common_pb.js";
import { ShareSource, type ListFolderResponse, type Share } from "../../src/gen/sharegraph/v1/content_service_pb.js";
import { WorkspaceLevel } from "../../src/gen/sharegraph/v1/directory_service_pb.js";
import { PLATFORM_ADMIN, startTestServer, type Clients, type TestServer } from "../support/server.js";
import { codeOf, group, user, writeTokens } from "../support/rpc.js";

type Ref = { type: string; id: string };
type Subject = { type: string; id: string; relation: string };

const org = (id: string): Subject => ({ type: "organization", id, relation: "member" });
const folder = (id: string): Ref => ({ type: "folder", id });
const dashboard = (id: string): Ref => ({ type: "dashboard", id });
const workbook = (id: string): Ref => ({ type: "workbook", id });
const report = (id: string): Ref => ({ type: "report", id });

let server: TestServer;
let c: Clients;
const tokens = writeTokens();
const { wrote } = tokens;

beforeAll(async () => {
  server = await startTestServer();
  c = server.clients();
});

afterAll(async () => {
  await server?.stop();
});

const fresh = () => ({ requirement: { case: "atLeastAsFresh" as const, value: tokens.last } });

async function can(userId: string, permission: string, resource: Ref): Promise<boolean> {
  const r = await c.permission.checkPermission({ resource, permission, subject: user(userId), consistency: fresh() });
  return r.allowed;
}

/** What a user may do on a resource, in one bulk check. */
async function rights(userId: string, resource: Ref, permissions = ["view", "share", "edit", "manage"]): Promise<Record<string, boolean>> {
  const r = await c.permission.checkBulkPermissions({
    items: permissions.map((permission) => ({ resource, permission, subject: user(userId) })),
    consistency: fresh(),
  });
  return Object.fromEntries(permissions.map((p, i) => [p, r.results[i]!.allowed]));
}

// ---- directory and content set-up -------------------------------------------------

async function users(...ids: string[]): Promise<void> {
  for (const id of ids) {
    await wrote(c.directory.createUser({ actor: PLATFORM_ADMIN, userId: id, email: `${id}@example.com`, displayName: id }));
  }
}

async function organization(id: string, name: string, adminId: string, members: string[] = []): Promise<void> {
  await wrote(c.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: id, name, adminUserIds: [adminId] }));
  for (const m of members) await wrote(c.directory.addOrganizationMember({ actor: adminId, organizationId: id, userId: m }));
}

async function workspace(actor: string, organizationId: string, id: string, name: string, parentWorkspaceId = ""): Promise<void> {
  await wrote(c.directory.createWorkspace({ actor, organizationId, workspaceId: id, name, parentWorkspaceId }));
}

async function level(actor: string, workspaceId: string, subject: Subject, lvl: WorkspaceLevel): Promise<void> {
  await wrote(c.directory.setWorkspacePermission({ actor, workspaceId, subject, level: lvl }));
}

async function newFolder(actor: string, workspaceId: string, id: string, name: string, parentFolderId = ""): Promise<void> {
  await wrote(c.content.createFolder({ actor, workspaceId, folderId: id, name, parentFolderId }));
}

async function newContent(actor: string, ref: Ref, workspaceId: string, name: string, folderId = ""): Promise<void> {
  await wrote(c.content.createContent({ actor, kind: ref.type, contentId: ref.id, name, workspaceId, folderId }));
}

function share(actor: string, resource: Ref, subject: Subject, role: Role) {
  return wrote(c.content.share({ actor, resource, subject, role }));
}

function unshare(actor: string, resource: Ref, subject: Subject) {
  return wrote(c.content.unshare({ actor, resource, subject }));
}

async function listFolder(userId: string, workspaceId: string, folderId = "") {
  const r: ListFolderResponse = await c.content.listFolder({ userId, workspaceId, folderId, consistency: fresh() });
  return {
    path: r.path.map((e) => ({ id: e.id, name: e.name, canOpen: e.canOpen })),
    folders: r.folders.map((e) => ({ id: e.id, name: e.name, canOpen: e.canOpen })),
    items: r.items.map((i) => i.ref?.id),
  };
}

async function privateTo(userId: string, workspaceId = ""): Promise<string[]> {
  const r = await c.content.listPrivateContent({ userId, workspaceId });
  return r.items.map((i) => i.ref?.id ?? "");
}

const shareRow = (s: Share) => ({
  subject: `${s.subject?.type}:${s.subject?.id}`,
  role: s.role,
  source: s.source,
  from: `${s.sourceObject?.type}:${s.sourceObject?.id}`,
  name: s.sourceName,
});

async function listShares(resource: Ref) {
  return (await c.content.listShares({ resource })).shares.map(shareRow);
}

// ---- seed 001: Sigma folders ------------------------------------------------------

describe('Seed 001, "Folder 1 - Editor or higher"', () => {
  const p = "s1a";
  const owner = `${p}-owner`;
  const ann = `${p}-ann`;
  const zed = `${p}-zed`;
  const ws = `${p}-ws`;
  const f1 = `${p}-f1`;
  const sub1 = `${p}-sub1`;
  const sub2 = `${p}-sub2`;
  const docA = workbook(`${p}-doc-a`);
  const docB = workbook(`${p}-doc-b`);

  beforeAll(async () => {
    await users(owner, ann, zed);
    await organization(`${p}-acme`, "Acme", owner, [ann, zed]);
    await workspace(owner, `${p}-acme`, ws, "Analytics");
    await level(owner, ws, user(ann), WorkspaceLevel.ANALYZE);
    await level(owner, ws, user(zed), WorkspaceLevel.ANALYZE);
    // Folder 1/{Document A, Subfolder 1/{Document B, Subfolder 2/}}
    await newFolder(owner, ws, f1, "Folder 1");
    await newContent(owner, docA, ws, "Document A", f1);
    await newFolder(owner, ws, sub1, "Subfolder 1", f1);
    await newContent(owner, docB, ws, "Document B", sub1);
    await newFolder(owner, ws, sub2, "Subfolder 2", sub1);
    // Folder 1 requires an Editor role or higher.
    await share(owner, folder(f1), user(ann), Role.EDITOR);
  });

  it("R1: the contents of Folder 1 inherit its Editor role, at every depth", async () => {
    for (const resource of [folder(f1), docA, folder(sub1), docB, folder(sub2)]) {
      expect(await rights(ann, resource), `${resource.type} ${resource.id}`).toEqual({ view: true, share: true, edit: true, manage: false });
    }
  });

  it("R2: refuses a viewer grant on Document A under Folder 1 (Editor or higher), naming Folder 1 and its role", async () => {
    const err = await codeOf(share(owner, docA, user(ann), Role.VIEWER));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toContain(`folder ${f1} ("Folder 1")`);
    expect(err.message).toContain("editor");
  });

  it("R2: refuses a sharer grant on Document A under Folder 1 (less permissive than Editor)", async () => {
    const err = await codeOf(share(owner, docA, user(ann), Role.SHARER));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toContain('"Folder 1"');
  });

  it("R2: an Editor grant on Document A equal to what Folder 1 gives is a no-op", async () => {
    const r = await share(owner, docA, user(ann), Role.EDITOR);
    expect(r.noOp).toBe(true);
    expect(r.grant).toBeUndefined();
    const direct = (await listShares(docA)).filter((s) => s.source === ShareSource.DIRECT && s.subject === `user:${ann}`);
    expect(direct).toEqual([]);
  });

  it("R1: Document A - Editor or Manager: a Manager grant on Document A is allowed and is the effective role there only", async () => {
    const r = await share(owner, docA, user(ann), Role.MANAGER);
    expect(r.noOp).toBe(false);
    expect(r.grant?.role).toBe(Role.MANAGER);
    expect(r.grant?.grantedBy).toBe(owner);
    expect(await can(ann, "manage", docA)).toBe(true);
    expect(await can(ann, "manage", folder(f1))).toBe(false);
    expect(await can(ann, "manage", docB)).toBe(false);
  });

  it("R2: refuses a viewer grant on Subfolder 1 under Folder 1 (Editor or Manager)", async () => {
    const err = await codeOf(share(owner, folder(sub1), user(ann), Role.VIEWER));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toContain(`folder ${f1} ("Folder 1")`);
    expect(err.message).toContain("editor");
  });

  it("R1: Document B inherits from Subfolder 1: effective Editor (edit true, manage false with ANALYZE); Subfolder 2 too", async () => {
    expect(await can(ann, "edit", docB)).toBe(true);
    expect(await can(ann, "manage", docB)).toBe(false);
    expect(await rights(ann, docB)).toEqual({ view: true, share: true, edit: true, manage: false });
    expect(await rights(ann, folder(sub2))).toEqual({ view: true, share: true, edit: true, manage: false });
  });

  it("R1: after Subfolder 1 is given Manager, Document B and Subfolder 2 inherit Manager (Folder 1 stays Editor)", async () => {
    const r = await share(owner, folder(sub1), user(ann), Role.MANAGER);
    expect(r.noOp).toBe(false);
    expect(await can(ann, "manage", docB)).toBe(true);
    expect(await can(ann, "manage", folder(sub2))).toBe(true);
    expect(await can(ann, "manage", folder(f1))).toBe(false);
  });

  it("R2: now an Editor grant on Document B is refused, naming Subfolder 1 and Manager", async () => {
    const err = await codeOf(share(owner, docB, user(ann), Role.EDITOR));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toContain(`folder ${sub1} ("Subfolder 1")`);
    expect(err.message).toContain("manager");
  });

  it("Unshare: a role Document B only inherits is NOT_FOUND, saying where it is inherited from", async () => {
    const err = await codeOf(unshare(owner, docB, user(ann)));
    expect(err.code).toBe(Code.NotFound);
    expect(err.message).toContain(`inherited from folder ${sub1} ("Subfolder 1")`);
    expect(err.message).toMatch(/^a direct grant for user \S+ on workbook \S+ \("Document B"\) does not exist; their manager role is inherited/);
  });

  it("R40: Unshare by someone who may not share Document B: PERMISSION_DENIED, saying nothing of grants or where roles come from", async () => {
    const nobody = `${p}-nobody`;
    await users(nobody);
    const err = await codeOf(unshare(nobody, docB, user(ann)));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.message).toBe(`user ${nobody} may not change who can access workbook ${docB.id} ("Document B")`);
    expect(err.message).not.toContain("Subfolder 1");
  });

  it("ListShares: Document B lists direct shares first, then Subfolder 1's and Folder 1's (nearest first), then the workspace's", async () => {
    await share(owner, docB, user(zed), Role.VIEWER);
    const shares = await listShares(docB);
    const order = [ShareSource.DIRECT, ShareSource.FOLDER, ShareSource.WORKSPACE];
    const ranks = shares.map((s) => order.indexOf(s.source));
    expect(ranks.every((r) => r >= 0)).toBe(true);
    expect(ranks).toEqual([...ranks].sort((a, b) => a - b));

    const direct = shares.filter((s) => s.source === ShareSource.DIRECT);
    expect(direct).toContainEqual({ subject: `user:${zed}`, role: Role.VIEWER, source: ShareSource.DIRECT, from: `workbook:${docB.id}`, name: "Document B" });
    expect(direct).toContainEqual({ subject: `user:${owner}`, role: Role.MANAGER, source: ShareSource.DIRECT, from: `workbook:${docB.id}`, name: "Document B" });

    const inherited = shares.filter((s) => s.source === ShareSource.FOLDER);
    expect(inherited).toContainEqual({ subject: `user:${ann}`, role: Role.MANAGER, source: ShareSource.FOLDER, from: `folder:${sub1}`, name: "Subfolder 1" });
    expect(inherited).toContainEqual({ subject: `user:${ann}`, role: Role.EDITOR, source: ShareSource.FOLDER, from: `folder:${f1}`, name: "Folder 1" });
    const folderOrder = inherited.map((s) => s.name).filter((n, i, all) => all.indexOf(n) === i);
    expect(folderOrder).toEqual(["Subfolder 1", "Folder 1"]);

    // The org admin manages everything in the organization's workspaces.
    const workspaceWide = shares.filter((s) => s.source === ShareSource.WORKSPACE);
    expect(workspaceWide).toContainEqual(expect.objectContaining({ subject: `user:${owner}`, role: Role.MANAGER }));
  });

  it("Move: refuses moving Folder 1 into its own Subfolder 2 (FAILED_PRECONDITION)", async () => {
    const err = await codeOf(wrote(c.content.move({ actor: owner, item: folder(f1), destinationFolderId: sub2 })));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toContain(f1);
  });
});

describe('Seed 001, "Folder 1 - No access"', () => {
  const p = "s1b";
  const owner = `${p}-owner`;
  const ned = `${p}-ned`;
  const vic = `${p}-vic`;
  const ws = `${p}-ws`;
  const f1 = `${p}-f1`;
  const f9 = `${p}-f9`;
  const sub1 = `${p}-sub1`;
  const sub2 = `${p}-sub2`;
  const sub3 = `${p}-sub3`;
  const docA = workbook(`${p}-doc-a`);
  const docB = workbook(`${p}-doc-b`);
  const docC = workbook(`${p}-doc-c`);
  const docZ = workbook(`${p}-doc-z`);

  beforeAll(async () => {
    await users(owner, ned, vic);
    await organization(`${p}-acme`, "Acme", owner, [ned, vic]);
    await workspace(owner, `${p}-acme`, ws, "Analytics");
    await level(owner, ws, user(ned), WorkspaceLevel.VIEW);
    await level(owner, ws, user(vic), WorkspaceLevel.VIEW);
    // Folder 1/{Document A, Document C, Subfolder 1/{Document B, Subfolder 2/}, Subfolder 3/}; Folder 9/{Document Z}
    await newFolder(owner, ws, f1, "Folder 1");
    await newContent(owner, docA, ws, "Document A", f1);
    await newContent(owner, docC, ws, "Document C", f1);
    await newFolder(owner, ws, sub1, "Subfolder 1", f1);
    await newContent(owner, docB, ws, "Document B", sub1);
    await newFolder(owner, ws, sub2, "Subfolder 2", sub1);
    await newFolder(owner, ws, sub3, "Subfolder 3", f1);
    await newFolder(owner, ws, f9, "Folder 9");
    await newContent(owner, docZ, ws, "Document Z", f9);
  });

  it("R3: while nothing inside is shared with ned, Folder 1 is not even listed at the workspace root", async () => {
    expect(await listFolder(ned, ws)).toEqual({ path: [], folders: [], items: [] });
  });

  it("R1: Folder 1 - No access: Document A can be given Viewer or higher", async () => {
    const r = await share(owner, docA, user(ned), Role.VIEWER);
    expect(r.noOp).toBe(false);
    expect(r.grant?.role).toBe(Role.VIEWER);
    expect(await rights(ned, docA)).toEqual({ view: true, share: false, edit: false, manage: false });
    expect(await can(ned, "view", folder(f1))).toBe(false);
  });

  it("R1: Subfolder 1 can be given Viewer; Document B and Subfolder 2 inherit it from Subfolder 1", async () => {
    const r = await share(owner, folder(sub1), user(ned), Role.VIEWER);
    expect(r.noOp).toBe(false);
    for (const resource of [folder(sub1), docB, folder(sub2)]) {
      expect(await rights(ned, resource), resource.id).toEqual({ view: true, share: false, edit: false, manage: false });
    }
    expect(await can(ned, "view", docC)).toBe(false);
  });

  it("R3: ned sees Folder 1's name at the root (can_open false) only because something inside is viewable; Folder 9 is not listed", async () => {
    expect(await listFolder(ned, ws)).toEqual({ path: [], folders: [{ id: f1, name: "Folder 1", canOpen: false }], items: [] });
  });

  it("R3: listing Folder 1 shows only the children ned can view (Subfolder 1, Document A)", async () => {
    expect(await listFolder(ned, ws, f1)).toEqual({
      path: [{ id: f1, name: "Folder 1", canOpen: false }],
      folders: [{ id: sub1, name: "Subfolder 1", canOpen: true }],
      items: [docA.id],
    });
  });

  it("R3: folder names on the path are always visible", async () => {
    expect(await listFolder(ned, ws, sub2)).toEqual({
      path: [
        { id: f1, name: "Folder 1", canOpen: false },
        { id: sub1, name: "Subfolder 1", canOpen: true },
        { id: sub2, name: "Subfolder 2", canOpen: true },
      ],
      folders: [],
      items: [],
    });
  });

  it("R3: ListFolder of a folder ned cannot even see is NOT_FOUND", async () => {
    for (const id of [f9, sub3]) {
      const err = await codeOf(c.content.listFolder({ userId: ned, workspaceId: ws, folderId: id, consistency: fresh() }));
      expect(err.code, id).toBe(Code.NotFound);
    }
  });

  it("R3: a Viewer of Document B alone sees Folder 1 and Subfolder 1 by name (any depth), and only Document B in it", async () => {
    await share(owner, docB, user(vic), Role.VIEWER);
    expect(await listFolder(vic, ws)).toEqual({ path: [], folders: [{ id: f1, name: "Folder 1", canOpen: false }], items: [] });
    expect(await listFolder(vic, ws, f1)).toEqual({
      path: [{ id: f1, name: "Folder 1", canOpen: false }],
      folders: [{ id: sub1, name: "Subfolder 1", canOpen: false }],
      items: [],
    });
    const inSub1 = await listFolder(vic, ws, sub1);
    expect(inSub1.folders).toEqual([]);
    expect(inSub1.items).toEqual([docB.id]);
  });
});

describe("R1: organization-wide default role and groups", () => {
  const p = "r1";
  const owner = `${p}-owner`;
  const m1 = `${p}-m1`;
  const m2 = `${p}-m2`;
  const outsider = `${p}-out`;
  const gus = `${p}-gus`;
  const late = `${p}-late`;
  const acme = `${p}-acme`;
  const other = `${p}-other`;
  const ws = `${p}-ws`;
  const shared = `${p}-shared`;
  const kpi = dashboard(`${p}-kpi`);
  const analysts = `${p}-analysts`;
  const emea = `${p}-emea-analysts`;

  beforeAll(async () => {
    await users(owner, m1, m2, outsider, gus, late);
    await organization(acme, "Acme", owner, [m1, m2, gus]);
    await organization(other, "Other Co", outsider);
    await workspace(owner, acme, ws, "Analytics");
    for (const u of [m1, m2, outsider, late]) await level(owner, ws, user(u), WorkspaceLevel.VIEW);
    // analysts ⊃ emea-analysts ∋ gus
    await wrote(c.directory.createGroup({ actor: owner, organizationId: acme, groupId: analysts, name: "Analysts" }));
    await wrote(c.directory.createGroup({ actor: owner, organizationId: acme, groupId: emea, name: "EMEA analysts" }));
    await wrote(c.directory.addGroupMember({ actor: owner, groupId: analysts, member: group(emea) }));
    await wrote(c.directory.addGroupMember({ actor: owner, groupId: emea, member: user(gus) }));
    await level(owner, ws, group(analysts), WorkspaceLevel.ANALYZE);
    await newFolder(owner, ws, shared, "Shared");
    await newContent(owner, kpi, ws, "KPIs", shared);
  });

  it("R1: an organization-wide default role on a folder applies to every member of the organization", async () => {
    expect(await can(m1, "view", kpi)).toBe(false);
    const r = await wrote(c.content.setOrganizationDefaultRole({ actor: owner, resource: folder(shared), role: Role.VIEWER }));
    expect(r.noOp).toBe(false);
    for (const m of [m1, m2]) {
      expect(await can(m, "view", folder(shared)), m).toBe(true);
      expect(await can(m, "view", kpi), m).toBe(true);
      expect(await can(m, "edit", kpi), m).toBe(false);
    }
    // Workspace VIEW without membership of the organization is not enough.
    expect(await can(outsider, "view", kpi)).toBe(false);
    expect(await listShares(folder(shared))).toContainEqual({
      subject: `organization:${acme}`,
      role: Role.VIEWER,
      source: ShareSource.DIRECT,
      from: `folder:${shared}`,
      name: "Shared",
    });
    expect(await listShares(kpi)).toContainEqual({ subject: `organization:${acme}`, role: Role.VIEWER, source: ShareSource.FOLDER, from: `folder:${shared}`, name: "Shared" });
  });

  it("R1: someone who joins the organization later has the organization-wide role at once", async () => {
    expect(await can(late, "view", kpi)).toBe(false);
    await wrote(c.directory.addOrganizationMember({ actor: owner, organizationId: acme, userId: late }));
    expect(await can(late, "view", kpi)).toBe(true);
  });

  it("R1: ROLE_UNSPECIFIED removes the organization-wide role (and again is a no-op)", async () => {
    const r = await wrote(c.content.setOrganizationDefaultRole({ actor: owner, resource: folder(shared), role: Role.UNSPECIFIED }));
    expect(r.noOp).toBe(false);
    expect(await can(m1, "view", kpi)).toBe(false);
    expect(await can(m2, "view", folder(shared))).toBe(false);
    const again = await wrote(c.content.setOrganizationDefaultRole({ actor: owner, resource: folder(shared), role: Role.UNSPECIFIED }));
    expect(again.noOp).toBe(true);
  });

  it("R1: a group's role reaches the members of nested groups", async () => {
    expect(await can(gus, "view", kpi)).toBe(false);
    await share(owner, folder(shared), group(analysts), Role.EDITOR);
    expect(await rights(gus, kpi)).toEqual({ view: true, share: true, edit: true, manage: false });
  });

  it("R2: inside a folder where a group has Editor, neither the group nor its (nested) member can get a less permissive direct role", async () => {
    for (const subject of [group(analysts), user(gus)]) {
      const err = await codeOf(share(owner, kpi, subject, Role.VIEWER));
      expect(err.code, subject.id).toBe(Code.FailedPrecondition);
      expect(err.message).toContain(`folder ${shared} ("Shared")`);
    }
  });

  it("R1: an organization-wide role for an organization that does not own the workspace is FAILED_PRECONDITION", async () => {
    const err = await codeOf(share(owner, kpi, org(other), Role.VIEWER));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toContain(other);
  });
});

describe("R1 Move: effective roles follow the new folder at once", () => {
  const p = "mv";
  const owner = `${p}-owner`;
  const una = `${p}-una`;
  const ws = `${p}-ws`;
  const viewerFolder = `${p}-viewers`;
  const editorFolder = `${p}-editors`;
  const doc = report(`${p}-revenue`);

  beforeAll(async () => {
    await users(owner, una);
    await organization(`${p}-acme`, "Acme", owner, [una]);
    await workspace(owner, `${p}-acme`, ws, "Analytics");
    await level(owner, ws, user(una), WorkspaceLevel.ANALYZE);
    await newFolder(owner, ws, viewerFolder, "Viewer folder");
    await newFolder(owner, ws, editorFolder, "Editor folder");
    await share(owner, folder(viewerFolder), user(una), Role.VIEWER);
    await share(owner, folder(editorFolder), user(una), Role.EDITOR);
    await newContent(owner, doc, ws, "Revenue", viewerFolder);
  });

  it("R1 Move: moving a document from a Viewer folder into an Editor folder changes its effective role at once, and back", async () => {
    expect(await rights(una, doc)).toEqual({ view: true, share: false, edit: false, manage: false });
    await wrote(c.content.move({ actor: owner, item: doc, destinationFolderId: editorFolder }));
    expect(await rights(una, doc)).toEqual({ view: true, share: true, edit: true, manage: false });
    await wrote(c.content.move({ actor: owner, item: doc, destinationFolderId: viewerFolder }));
    expect(await rights(una, doc)).toEqual({ view: true, share: false, edit: false, manage: false });
    // At the workspace root nothing is inherited any more.
    await wrote(c.content.move({ actor: owner, item: doc, destinationFolderId: "" }));
    expect(await can(una, "view", doc)).toBe(false);
  });

  it("R40 Move: a user without edit on the document may not move it", async () => {
    const err = await codeOf(wrote(c.content.move({ actor: una, item: doc, destinationFolderId: editorFolder })));
    expect(err.code).toBe(Code.PermissionDenied);
  });
});

// ---- seed 003: GoodData dashboards -------------------------------------------------

describe("Seed 003: sharing dashboards", () => {
  const p = "s3";
  const admin = `${p}-admin`;
  const creator = `${p}-creator`;
  const wsman = `${p}-wsman`;
  const member = `${p}-member`;
  const sharer = `${p}-sharer`;
  const editor = `${p}-editor`;
  const viewer = `${p}-viewer`;
  const analyst = `${p}-analyst`;
  const peer = `${p}-peer`;
  const nobody = `${p}-nobody`;
  const outsider = `${p}-outsider`;
  const seer = `${p}-seer`;
  const child = `${p}-child`;
  const capped = `${p}-capped`;
  const gcap = `${p}-gcap`;
  const guest = `${p}-guest`;
  const leaver = `${p}-leaver`;
  const hier = `${p}-hier`;
  const heir = `${p}-heir`;
  const acme = `${p}-acme`;
  const ws = `${p}-emea`;
  const childWs = `${p}-emea-sales`;
  const cappedEditors = `${p}-capped-editors`;

  const q3 = dashboard(`${p}-q3`);

  beforeAll(async () => {
    await users(admin, creator, wsman, member, sharer, editor, viewer, analyst, peer, nobody, outsider, seer, child, capped, gcap, guest, leaver, hier, heir);
    await organization(acme, "Acme", admin, [creator, wsman, member, sharer, editor, viewer, analyst, peer, nobody, seer, child, capped, gcap, guest, leaver, hier, heir]);
    await workspace(admin, acme, ws, "EMEA");
    await workspace(admin, acme, childWs, "EMEA Sales", ws);
    const levels: Array<[string, WorkspaceLevel]> = [
      [creator, WorkspaceLevel.ANALYZE],
      [wsman, WorkspaceLevel.MANAGE],
      [member, WorkspaceLevel.VIEW],
      [sharer, WorkspaceLevel.VIEW],
      [editor, WorkspaceLevel.ANALYZE],
      [viewer, WorkspaceLevel.VIEW],
      [analyst, WorkspaceLevel.ANALYZE],
      [peer, WorkspaceLevel.VIEW],
      [nobody, WorkspaceLevel.VIEW],
      [capped, WorkspaceLevel.VIEW],
      [leaver, WorkspaceLevel.VIEW],
      [hier, WorkspaceLevel.VIEW],
      [heir, WorkspaceLevel.ANALYZE],
    ];
    for (const [u, l] of levels) await level(admin, ws, user(u), l);
    await level(admin, childWs, user(child), WorkspaceLevel.VIEW);
    await wrote(c.directory.createGroup({ actor: admin, organizationId: acme, groupId: cappedEditors, name: "Capped editors" }));
    await wrote(c.directory.addGroupMember({ actor: admin, groupId: cappedEditors, member: user(gcap) }));
    await level(admin, ws, group(cappedEditors), WorkspaceLevel.VIEW);
    await newContent(creator, q3, ws, "Q3 pipeline");
  });

  // R4: private by default

  it("R4: a new dashboard is accessible only to its creator and to Workspace.MANAGE holders (and org admins)", async () => {
    expect(await rights(creator, q3)).toEqual({ view: true, share: true, edit: true, manage: true });
    expect(await rights(wsman, q3)).toEqual({ view: true, share: true, edit: true, manage: true });
    expect(await can(admin, "view", q3)).toBe(true);
    for (const u of [member, analyst, viewer]) expect(await can(u, "view", q3), u).toBe(false);
  });

  it("R4: a dashboard you created and have not shared is in your PRIVATE tab, and leaves it once shared", async () => {
    expect(await privateTo(creator, ws)).toContain(q3.id);
    expect(await privateTo(member, ws)).not.toContain(q3.id);
    await share(creator, q3, user(member), Role.VIEWER);
    expect(await can(member, "view", q3)).toBe(true);
    expect(await privateTo(creator, ws)).not.toContain(q3.id);
    expect(await privateTo(member, ws)).not.toContain(q3.id);
  });

  it("R4: a dashboard someone else can access through a folder, a group or the organization is not private", async () => {
    const teamFolder = `${p}-team`;
    await newFolder(creator, ws, teamFolder, "Team");
    const inFolder = dashboard(`${p}-in-team`);
    const forGroup = dashboard(`${p}-for-group`);
    const forAll = dashboard(`${p}-for-all`);
    await newContent(creator, inFolder, ws, "Team plan", teamFolder);
    await newContent(creator, forGroup, ws, "Group plan");
    await newContent(creator, forAll, ws, "Company plan");
    expect(await privateTo(creator, ws)).toEqual(expect.arrayContaining([inFolder.id, forGroup.id, forAll.id]));
    await share(creator, folder(teamFolder), user(member), Role.VIEWER);
    await share(creator, forGroup, group(cappedEditors), Role.VIEWER);
    await wrote(c.content.setOrganizationDefaultRole({ actor: creator, resource: forAll, role: Role.VIEWER }));
    const still = await privateTo(creator, ws);
    for (const d of [inFolder, forGroup, forAll]) expect(still, d.id).not.toContain(d.id);
    expect(await can(member, "view", inFolder)).toBe(true);
  });

  it('R4 troubleshooting: "in my PRIVATE tab although I did not create it": the creator\'s permission was removed and assigned to me', async () => {
    const handover = dashboard(`${p}-handover`);
    await newContent(creator, handover, ws, "Handover");
    await share(wsman, handover, user(heir), Role.EDITOR);
    expect(await privateTo(heir)).not.toContain(handover.id);
    await unshare(wsman, handover, user(creator));
    expect(await privateTo(heir)).toContain(handover.id);
    expect(await privateTo(creator)).not.toContain(handover.id);
    expect(await can(creator, "view", handover)).toBe(false);
    expect(await rights(heir, handover)).toEqual({ view: true, share: true, edit: true, manage: false });
  });

  // R5: share only up to your own level

  describe("R5: share up to your level", () => {
    const d = dashboard(`${p}-r5`);

    beforeAll(async () => {
      await newContent(creator, d, ws, "Win rates");
      await share(creator, d, user(sharer), Role.SHARER);
      await share(creator, d, user(editor), Role.EDITOR);
      await share(creator, d, user(viewer), Role.VIEWER);
      await share(creator, d, user(peer), Role.VIEWER);
    });

    it("R5: a View & Share user can share View and View & Share", async () => {
      const v = await share(sharer, d, user(member), Role.VIEWER);
      expect(v.grant?.role).toBe(Role.VIEWER);
      expect(v.grant?.grantedBy).toBe(sharer);
      const s = await share(sharer, d, user(leaver), Role.SHARER);
      expect(s.grant?.role).toBe(Role.SHARER);
      expect(await can(member, "view", d)).toBe(true);
      expect(await can(leaver, "share", d)).toBe(true);
    });

    it("R5: a View & Share user cannot share Edit & Share (PERMISSION_DENIED)", async () => {
      const err = await codeOf(share(sharer, d, user(analyst), Role.EDITOR));
      expect(err.code).toBe(Code.PermissionDenied);
      expect(err.message).toContain("up to sharer");
      expect(await can(analyst, "view", d)).toBe(false);
    });

    it("R5: an Edit & Share user (with ANALYZE) can share up to Edit & Share, but not Manager", async () => {
      const r = await share(editor, d, user(analyst), Role.EDITOR);
      expect(r.grant?.role).toBe(Role.EDITOR);
      expect(await can(analyst, "edit", d)).toBe(true);
      const err = await codeOf(share(editor, d, user(capped), Role.MANAGER));
      expect(err.code).toBe(Code.PermissionDenied);
      expect(err.message).toContain("up to editor");
    });

    it("R5: a View user cannot share at all (PERMISSION_DENIED)", async () => {
      const err = await codeOf(share(viewer, d, user(nobody), Role.VIEWER));
      expect(err.code).toBe(Code.PermissionDenied);
      expect(await can(nobody, "view", d)).toBe(false);
    });

    it("R40: a user without share on the dashboard gets PERMISSION_DENIED", async () => {
      const err = await codeOf(share(nobody, d, user(capped), Role.VIEWER));
      expect(err.code).toBe(Code.PermissionDenied);
      expect(err.message).toContain(nobody);
    });

    it("R5/R40: a View & Share user cannot change or remove a grant someone else made (PERMISSION_DENIED)", async () => {
      const change = await codeOf(share(sharer, d, user(peer), Role.SHARER));
      expect(change.code).toBe(Code.PermissionDenied);
      const remove = await codeOf(unshare(sharer, d, user(peer)));
      expect(remove.code).toBe(Code.PermissionDenied);
      expect(await can(peer, "view", d)).toBe(true);
    });

    it("R5: a View & Share user may remove a grant they made themselves", async () => {
      await unshare(sharer, d, user(member));
      expect(await can(member, "view", d)).toBe(false);
    });
  });

  // R6: eligibility

  it("R6: Workspace.VIEW through a group makes a user eligible", async () => {
    const d = dashboard(`${p}-via-group`);
    await newContent(creator, d, ws, "Group-eligible");
    const r = await share(creator, d, user(gcap), Role.VIEWER);
    expect(r.grant?.role).toBe(Role.VIEWER);
    expect(await can(gcap, "view", d)).toBe(true);
  });

  it("R6: sharing with a user who has no permission on the workspace is FAILED_PRECONDITION", async () => {
    const err = await codeOf(share(creator, q3, user(outsider), Role.VIEWER));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toContain(ws);
  });

  it("R6 troubleshooting: SEE makes a user eligible, but the grant alone does not let them open the dashboard; ExplainPermission names the missing VIEW", async () => {
    const d = dashboard(`${p}-see`);
    await newContent(creator, d, ws, "Board pack");
    expect((await codeOf(share(creator, d, user(seer), Role.VIEWER))).code).toBe(Code.FailedPrecondition);
    await wrote(c.directory.grantWorkspaceSee({ actor: admin, workspaceId: ws, subject: user(seer) }));
    const r = await share(creator, d, user(seer), Role.VIEWER);
    expect(r.grant?.role).toBe(Role.VIEWER);
    // The Share dialog shows them, but they cannot open it.
    expect(await listShares(d)).toContainEqual(expect.objectContaining({ subject: `user:${seer}`, source: ShareSource.DIRECT, role: Role.VIEWER }));
    expect(await can(seer, "view", d)).toBe(false);
    const e = await c.permission.explainPermission({ resource: d, permission: "view", subject: user(seer), consistency: fresh() });
    expect(e.allowed).toBe(false);
    expect(e.missing.some((m) => m.includes(`VIEW on workspace ${ws}`))).toBe(true);
    expect(e.explanation).toContain(`VIEW on workspace ${ws}`);
    // The fix: someone who may change workspace permissions gives them VIEW.
    await level(admin, ws, user(seer), WorkspaceLevel.VIEW);
    expect(await can(seer, "view", d)).toBe(true);
  });

  it("R6: a user with VIEW on a child workspace is eligible for View, but Edit & Share is refused: the dashboard cannot be edited from a child workspace", async () => {
    const d = dashboard(`${p}-child-share`);
    await newContent(creator, d, ws, "Regional targets");
    const err = await codeOf(share(creator, d, user(child), Role.EDITOR));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.message).toContain("child workspace");
    const r = await share(creator, d, user(child), Role.VIEWER);
    expect(r.grant?.role).toBe(Role.VIEWER);
  });

  it("R6: such a child-workspace viewer can view the parent workspace's dashboard once it is shared with them", async () => {
    const d = dashboard(`${p}-child-share`);
    expect(await rights(child, d)).toEqual({ view: true, share: false, edit: false, manage: false });
    expect(await can(child, "view", q3)).toBe(false);
  });

  // R7: workspace caps

  it("R7: Edit & Share with only Workspace.VIEW gives view and share but not edit; ANALYZE then gives edit", async () => {
    const d = dashboard(`${p}-capped`);
    await newContent(creator, d, ws, "Forecast");
    await share(creator, d, user(capped), Role.EDITOR);
    expect(await rights(capped, d)).toEqual({ view: true, share: true, edit: false, manage: false });
    await level(admin, ws, user(capped), WorkspaceLevel.ANALYZE);
    expect(await rights(capped, d)).toEqual({ view: true, share: true, edit: true, manage: false });
  });

  it("R7: Workspace.MANAGE holders manage any content of the workspace, and may share any role", async () => {
    const d = dashboard(`${p}-managed`);
    await newContent(creator, d, ws, "Board KPIs");
    expect(await rights(wsman, d, ["view", "edit", "manage", "delete"])).toEqual({ view: true, edit: true, manage: true, delete: true });
    const r = await share(wsman, d, user(analyst), Role.MANAGER);
    expect(r.grant?.role).toBe(Role.MANAGER);
  });

  it("R7: guests of the workspace view all of its content, and nothing more", async () => {
    const d = dashboard(`${p}-guest`);
    await newContent(creator, d, ws, "Private notes");
    expect(await can(guest, "view", d)).toBe(false);
    await wrote(c.directory.addWorkspaceGuest({ actor: admin, workspaceId: ws, subject: user(guest) }));
    expect(await rights(guest, d)).toEqual({ view: true, share: false, edit: false, manage: false });
    expect(await can(guest, "view", q3)).toBe(true);
  });

  it('R7 troubleshooting: a user who "lost permission to access the workspace" loses the dashboard, though still listed as shared', async () => {
    const d = dashboard(`${p}-lost`);
    await newContent(creator, d, ws, "Churn");
    await share(creator, d, user(leaver), Role.VIEWER);
    expect(await can(leaver, "view", d)).toBe(true);
    await wrote(c.directory.removeWorkspacePermission({ actor: admin, workspaceId: ws, subject: user(leaver) }));
    expect(await can(leaver, "view", d)).toBe(false);
    expect(await listShares(d)).toContainEqual(expect.objectContaining({ subject: `user:${leaver}`, source: ShareSource.DIRECT }));
  });

  it('R7 troubleshooting: a user who "lost hierarchyPermission" on the parent workspace loses the child workspace\'s dashboard', async () => {
    const d = dashboard(`${p}-sales`);
    // The creator's ANALYZE on EMEA holds in EMEA Sales by hierarchy.
    await newContent(creator, d, childWs, "Sales by rep");
    await share(creator, d, user(hier), Role.VIEWER);
    expect(await can(hier, "view", d)).toBe(true);
    await wrote(c.directory.removeWorkspacePermission({ actor: admin, workspaceId: ws, subject: user(hier) }));
    expect(await can(hier, "view", d)).toBe(false);
  });

  // R8: ExplainPermission

  it("R8: for an Edit & Share grant through a group capped by Workspace.VIEW, ExplainPermission names the grant, the VIEW and the missing ANALYZE", async () => {
    const d = dashboard(`${p}-explain`);
    await newContent(creator, d, ws, "Pipeline by region");
    await share(creator, d, group(cappedEditors), Role.EDITOR);
    expect(await can(gcap, "edit", d)).toBe(false);
    const e = await c.permission.explainPermission({ resource: d, permission: "edit", subject: user(gcap), consistency: fresh() });
    expect(e.allowed).toBe(false);
    expect(e.explanation).toContain("editor");
    expect(e.explanation).toContain(`group ${cappedEditors}`);
    expect(e.explanation).toContain("only VIEW");
    expect(e.explanation).toContain("edit needs ANALYZE");
    expect(e.missing.some((m) => m.includes(`ANALYZE on workspace ${ws}`))).toBe(true);
    expect(e.grantingPaths).toEqual([]);
    const viaGroup = e.partialPaths.find((path) => path.steps.some((s) => s.object?.type === "group" && s.object.id === cappedEditors));
    expect(viaGroup, "a partial path through the group").toBeDefined();
    expect(viaGroup!.summary).toContain("editor");
  });

  it("R8: for an allowed view, every granting path runs from the subject to the dashboard (or its workspace)", async () => {
    const e = await c.permission.explainPermission({ resource: q3, permission: "view", subject: user(member), consistency: fresh() });
    expect(e.allowed).toBe(true);
    expect(e.grantingPaths.length).toBeGreaterThan(0);
    for (const path of e.grantingPaths) {
      expect(path.steps.length, path.summary).toBeGreaterThan(0);
      expect(path.steps[0]!.object).toMatchObject({ type: "user", id: member });
      const end = path.steps.at(-1)!.target;
      expect([`dashboard:${q3.id}`, `workspace:${ws}`], path.summary).toContain(`${end?.type}:${end?.id}`);
    }
    expect(e.grantingPaths.some((path) => path.summary.includes("viewer"))).toBe(true);
  });

  it("R8: for a user with nothing, ExplainPermission says nothing grants access", async () => {
    const e = await c.permission.explainPermission({ resource: q3, permission: "view", subject: user(outsider), consistency: fresh() });
    expect(e.allowed).toBe(false);
    expect(e.grantingPaths).toEqual([]);
    expect(e.explanation).toMatch(/nothing grants/i);
  });

  it("ListShares: direct grants first, then Workspace.MANAGE holders and org admins (SHARE_SOURCE_WORKSPACE)", async () => {
    const shares = await listShares(q3);
    const firstWorkspace = shares.findIndex((s) => s.source === ShareSource.WORKSPACE);
    expect(firstWorkspace).toBeGreaterThan(0);
    expect(shares.slice(0, firstWorkspace).every((s) => s.source === ShareSource.DIRECT)).toBe(true);
    expect(shares.slice(firstWorkspace).every((s) => s.source === ShareSource.WORKSPACE)).toBe(true);
    const direct = shares.slice(0, firstWorkspace);
    expect(direct).toContainEqual({ subject: `user:${creator}`, role: Role.MANAGER, source: ShareSource.DIRECT, from: `dashboard:${q3.id}`, name: "Q3 pipeline" });
    expect(direct).toContainEqual({ subject: `user:${member}`, role: Role.VIEWER, source: ShareSource.DIRECT, from: `dashboard:${q3.id}`, name: "Q3 pipeline" });
    const workspaceWide = shares.slice(firstWorkspace);
    expect(workspaceWide).toContainEqual({ subject: `user:${wsman}`, role: Role.MANAGER, source: ShareSource.WORKSPACE, from: `workspace:${ws}`, name: "EMEA" });
    expect(workspaceWide).toContainEqual(expect.objectContaining({ subject: `user:${admin}`, role: Role.MANAGER, source: ShareSource.WORKSPACE }));
    // Guests are listed as viewers of everything.
    expect(workspaceWide).toContainEqual({ subject: `user:${guest}`, role: Role.VIEWER, source: ShareSource.WORKSPACE, from: `workspace:${ws}`, name: "EMEA" });
  });
});

// ---- refusals, deletion, and the index staying in step --------------------------------

describe("Refusals and deletion", () => {
  const p = "rf";
  const owner = `${p}-owner`;
  const maker = `${p}-maker`;
  const ed = `${p}-ed`;
  const vee = `${p}-vee`;
  const ws = `${p}-ws`;
  const old = `${p}-old`;
  const oldSub = `${p}-old-sub`;
  const inOld = dashboard(`${p}-in-old`);
  const deep = report(`${p}-deep`);

  beforeAll(async () => {
    await users(owner, maker, ed, vee);
    await organization(`${p}-acme`, "Acme", owner, [maker, ed, vee]);
    await workspace(owner, `${p}-acme`, ws, "Analytics");
    await level(owner, ws, user(maker), WorkspaceLevel.ANALYZE);
    await level(owner, ws, user(ed), WorkspaceLevel.ANALYZE);
    await level(owner, ws, user(vee), WorkspaceLevel.VIEW);
    await newFolder(owner, ws, old, "Old reports");
    await newFolder(owner, ws, oldSub, "Older", old);
    await newContent(owner, inOld, ws, "2019 sales", old);
    await newContent(owner, deep, ws, "2018 sales", oldSub);
    await share(owner, folder(old), user(vee), Role.VIEWER);
  });

  it("R42: an unknown folder or content is NOT_FOUND", async () => {
    const calls: Array<[string, () => Promise<unknown>]> = [
      ["Share", () => share(owner, dashboard(`${p}-nope`), user(vee), Role.VIEWER)],
      ["Share on a folder", () => share(owner, folder(`${p}-nope`), user(vee), Role.VIEWER)],
      ["Share of a wrong kind", () => share(owner, report(inOld.id), user(vee), Role.VIEWER)],
      ["Share with an unknown user", () => share(owner, inOld, user(`${p}-nobody`), Role.VIEWER)],
      ["Unshare", () => unshare(owner, dashboard(`${p}-nope`), user(vee))],
      ["ListShares", () => c.content.listShares({ resource: workbook(`${p}-nope`) })],
      ["ListFolder", () => c.content.listFolder({ userId: owner, workspaceId: ws, folderId: `${p}-nope`, consistency: fresh() })],
      ["Move into an unknown folder", () => wrote(c.content.move({ actor: owner, item: inOld, destinationFolderId: `${p}-nope` }))],
      ["Delete", () => wrote(c.content.delete({ actor: owner, item: dashboard(`${p}-nope`) }))],
      ["GetContent", () => c.content.getContent({ ref: dashboard(`${p}-nope`) })],
      ["CreateContent in an unknown folder", () => newContent(owner, dashboard(`${p}-new`), ws, "New", `${p}-nope`)],
    ];
    for (const [what, call] of calls) {
      const err = await codeOf(call());
      expect(err.code, `${what}: ${err.message}`).toBe(Code.NotFound);
    }
  });

  it('R42: ROLE_UNSPECIFIED in Share is INVALID_ARGUMENT naming "role"', async () => {
    const err = await codeOf(share(owner, inOld, user(vee), Role.UNSPECIFIED));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toMatch(/^role:/);
  });

  it('R42: an unknown content kind is INVALID_ARGUMENT naming "kind"', async () => {
    const err = await codeOf(newContent(owner, { type: "spreadsheet", id: `${p}-sheet` }, ws, "Sheet"));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toMatch(/^kind:/);
  });

  it("R40: Delete by a viewer is PERMISSION_DENIED", async () => {
    expect(await can(vee, "view", inOld)).toBe(true);
    const err = await codeOf(wrote(c.content.delete({ actor: vee, item: inOld })));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(await can(vee, "view", inOld)).toBe(true);
  });

  it("Delete (roles table): an editor may delete content they created, but not content someone else created", async () => {
    const mine = report(`${p}-mine`);
    await newContent(maker, mine, ws, "My report");
    // A manager turns the creator's Manager into Edit & Share; the same for another editor.
    await share(owner, mine, user(maker), Role.EDITOR);
    await share(owner, mine, user(ed), Role.EDITOR);
    expect(await rights(maker, mine, ["edit", "manage", "delete"])).toEqual({ edit: true, manage: false, delete: true });
    const err = await codeOf(wrote(c.content.delete({ actor: ed, item: mine })));
    expect(err.code).toBe(Code.PermissionDenied);
    await wrote(c.content.delete({ actor: maker, item: mine }));
    expect(await can(maker, "view", mine)).toBe(false);
    expect((await codeOf(c.content.getContent({ ref: mine }))).code).toBe(Code.NotFound);
  });

  it("Delete of a folder removes everything inside; the permission index then has no drift (Reconcile dry run)", async () => {
    expect(await can(vee, "view", deep)).toBe(true);
    await wrote(c.content.delete({ actor: owner, item: folder(old) }));
    for (const resource of [inOld, deep, folder(oldSub), folder(old)]) {
      expect(await can(vee, "view", resource), resource.id).toBe(false);
      expect(await can(owner, "view", resource), resource.id).toBe(false);
    }
    expect((await codeOf(c.content.getContent({ ref: inOld }))).code).toBe(Code.NotFound);
    expect((await codeOf(c.content.getFolder({ folderId: oldSub }))).code).toBe(Code.NotFound);
    const r = await c.admin.reconcile({ dryRun: true });
    expect({ missing: r.missing, extra: r.extra, missingExamples: r.missingExamples, extraExamples: r.extraExamples }).toEqual({
      missing: 0,
      extra: 0,
      missingExamples: [],
      extraExamples: [],
    });
    expect(r.expectedRelationships).toBe(r.actualRelationships);
  });
});
