import { deriveRow } from "../../src/domain/graph.js";
import type { Repositories, Store } from "../../src/store/store.js";
import { RelationshipChanges } from "../../src/sync/changes.js";
import type { Plan, PlannedFolder } from "./plan.js";

/**
 * Writes a plan through the path the API writes through: the store's
 * repositories insert the rows, src/domain/graph.ts derives each row's
 * relationships, and they are appended to the outbox in the same
 * transaction, as ChangeWriter does (src/sync/writer.ts). Unlike an API call,
 * one transaction carries many objects, and the writer does not wait for
 * SpiceDB: the server applies the outbox (or, on an empty SpiceDB datastore,
 * rebuilds it from these rows) when it starts.
 */

export interface LoadReport {
  /** Relationship updates appended to the outbox (all touches). */
  readonly relationships: number;
  readonly batches: number;
  readonly ms: number;
}

type Step = (tx: Repositories, rels: RelationshipChanges) => Promise<void>;

export async function loadPlan(store: Store, plan: Plan, options: { chunk?: number; concurrency?: number; progress?: (line: string) => void } = {}): Promise<LoadReport> {
  const chunk = options.chunk ?? 500;
  const concurrency = options.concurrency ?? 3;
  const progress = options.progress ?? (() => {});
  const started = performance.now();
  let relationships = 0;
  let batches = 0;

  const commit = async (step: Step): Promise<void> => {
    const rels = new RelationshipChanges();
    const ops = await store.transaction(async (tx) => {
      await step(tx, rels);
      const ops = rels.toOps();
      if (ops.length > 0) await tx.outbox.append(ops);
      return ops.length;
    });
    relationships += ops;
    if (ops > 0) batches++;
  };

  /** Rows in chunks of `size`, `concurrency` transactions at a time (rows of one phase must not depend on each other). */
  const phase = async <T>(name: string, rows: readonly T[], write: (tx: Repositories, rels: RelationshipChanges, row: T) => Promise<void>, size = chunk): Promise<void> => {
    const t = performance.now();
    const chunks: T[][] = [];
    for (let i = 0; i < rows.length; i += size) chunks.push(rows.slice(i, i + size));
    let next = 0;
    const worker = async () => {
      while (next < chunks.length) {
        const mine = chunks[next++]!;
        await commit(async (tx, rels) => {
          for (const row of mine) await write(tx, rels, row);
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, chunks.length) }, worker));
    progress(`${name}: ${rows.length} rows in ${((performance.now() - t) / 1000).toFixed(1)} s (${relationships} relationships so far)`);
  };

  // Directory: the organization, users, memberships, the platform admin.
  await commit(async (tx, rels) => {
    const org = await tx.organizations.insert({ id: plan.organizationId, name: "Bench Tenant", channel_partner: false });
    rels.touch(deriveRow("organizations", org));
  });
  await phase("users", plan.users, async (tx, rels, u) => {
    await tx.users.insert({ id: u.id, email: u.email, display_name: u.name });
    if (u.member) {
      const { after } = await tx.organizations.upsertMember(plan.organizationId, u.id, u.admin);
      rels.touch(deriveRow("organization_members", after));
    }
    if (u.id === plan.platformAdmin) {
      const added = await tx.users.addPlatformAdmin(u.id);
      if (added) rels.touch(deriveRow("platform_admins", added));
    }
  });
  await phase("groups", plan.groups, async (tx, rels, g) => {
    rels.touch(deriveRow("groups", await tx.groups.insert({ id: g.id, organization_id: plan.organizationId, name: `Group ${g.id} (level ${g.level})` })));
  });
  await phase("group members", plan.groupMembers, async (tx, rels, m) => {
    const row = await tx.groups.addMember(m.groupId, "userId" in m ? { userId: m.userId } : { groupId: m.memberGroupId });
    if (row) rels.touch(deriveRow("group_members", row));
  });
  // Membership reaches the index as its closure, as the domain keeps it (store/groups.ts), once all rows are in.
  await commit(async (tx, rels) => {
    const closure = await tx.groups.refreshClosure(plan.groups.map((g) => g.id));
    rels.touch(closure.added.flatMap((r) => deriveRow("group_closure", r)));
  });
  progress(`group closure: ${relationships} relationships so far`);

  // Workspaces (a parent before its children: foreign keys are checked at commit, so one transaction).
  await phase("workspaces", plan.workspaces, async (tx, rels, w) => {
    const { workspace, ancestors } = await tx.workspaces.insert({ id: w.id, organization_id: plan.organizationId, parent_id: w.parentId, name: `Workspace ${w.id}` });
    rels.touch(deriveRow("workspaces", workspace));
    rels.touch(ancestors.flatMap((a) => deriveRow("workspace_ancestors", a)));
  }, plan.workspaces.length);
  await phase("workspace permissions", plan.access, async (tx, rels, a) => {
    const { before, after } = await tx.workspaces.setAccess(a.workspaceId, a.kind, a.subject, a.level);
    rels.replace(before ? deriveRow("workspace_access", before) : [], deriveRow("workspace_access", after));
  });

  // Folders, one depth at a time: a folder's ancestor rows are read from its parent's.
  const byDepth = new Map<number, PlannedFolder[]>();
  for (const f of plan.folders) byDepth.set(f.depth, [...(byDepth.get(f.depth) ?? []), f]);
  for (const depth of [...byDepth.keys()].sort((a, b) => a - b)) {
    await phase(`folders at depth ${depth}`, byDepth.get(depth)!, async (tx, rels, f) => {
      const { folder, ancestors } = await tx.folders.insert({ id: f.id, workspace_id: f.workspaceId, parent_id: f.parentId, name: `Folder ${f.id}`, created_by: f.createdBy });
      rels.touch(deriveRow("folders", folder));
      rels.touch(ancestors.flatMap((a) => deriveRow("folder_ancestors", a)));
    });
  }
  await phase("content", plan.content, async (tx, rels, c) => {
    const row = await tx.content.insert({ id: c.id, kind: c.kind, workspace_id: c.workspaceId, folder_id: c.folderId, name: `${c.kind} ${c.id}`, created_by: c.createdBy });
    rels.touch(deriveRow("content", row));
  });
  // Grants: creators' manager grants, then shares.
  await phase("grants", plan.grants, async (tx, rels, g) => {
    const { before, after } = await tx.grants.upsert(g.resource, g.subject, g.role, g.grantedBy);
    rels.replace(before ? deriveRow("grants", before) : [], deriveRow("grants", after));
  });
  return { relationships, batches, ms: Math.round(performance.now() - started) };
}
