import { sql, type Kysely } from "kysely";
import type { Database, NewRow, Row, WorkspaceAccessKind, WorkspaceLevelName } from "./database.js";
import { pageOf, type Page, type PageOf } from "./paging.js";

export type WorkspaceRow = Row<"workspaces">;
export type WorkspaceAccessRow = Row<"workspace_access">;
export type WorkspaceAncestorRow = Row<"workspace_ancestors">;

/** Whom a workspace access row is about: exactly one of user or group. */
export type AccessSubject = { readonly userId: string } | { readonly groupId: string };

export class WorkspacesRepo {
  constructor(private readonly db: Kysely<Database>) {}

  /** Inserts the workspace and its ancestor rows (the closure); returns both. */
  async insert(row: NewRow<"workspaces">): Promise<{ workspace: WorkspaceRow; ancestors: WorkspaceAncestorRow[] }> {
    const workspace = await this.db.insertInto("workspaces").values(row).returningAll().executeTakeFirstOrThrow();
    if (workspace.parent_id === null) return { workspace, ancestors: [] };
    const result = await sql<WorkspaceAncestorRow>`
      insert into workspace_ancestors (workspace_id, ancestor_id, depth)
      select ${workspace.id}::text, ancestor_id, depth
      from (
        select ${workspace.parent_id}::text as ancestor_id, 1 as depth
        union all
        select ancestor_id, depth + 1 from workspace_ancestors where workspace_id = ${workspace.parent_id}
      ) above
      returning workspace_id, ancestor_id, depth
    `.execute(this.db);
    return { workspace, ancestors: result.rows };
  }

  async get(id: string): Promise<WorkspaceRow | undefined> {
    return this.db.selectFrom("workspaces").selectAll().where("id", "=", id).executeTakeFirst();
  }

  async getMany(ids: readonly string[]): Promise<WorkspaceRow[]> {
    if (ids.length === 0) return [];
    return this.db.selectFrom("workspaces").selectAll().where("id", "in", ids).execute();
  }

  async list(organizationId: string, page: Page): Promise<PageOf<WorkspaceRow>> {
    let q = this.db
      .selectFrom("workspaces")
      .selectAll()
      .where("organization_id", "=", organizationId)
      .orderBy("id")
      .limit(page.limit + 1);
    if (page.after !== undefined) q = q.where("id", ">", page.after);
    return pageOf(await q.execute(), page.limit, (w) => w.id);
  }

  /** The workspace and its ancestors, nearest first. */
  async ancestry(id: string): Promise<WorkspaceRow[]> {
    const result = await sql<WorkspaceRow>`
      with recursive up as (
        select w.*, 0 as depth from workspaces w where w.id = ${id}
        union all
        select p.*, up.depth + 1 from workspaces p join up on p.id = up.parent_id where up.depth < 1000
      )
      select id, organization_id, parent_id, name, created_at from up order by depth
    `.execute(this.db);
    return result.rows;
  }

  /**
   * Sets the subject's row of this kind (level rows: the level); returns
   * before and after. Insert-or-nothing, then lock and update, so two
   * concurrent setters serialize instead of one failing.
   */
  async setAccess(
    workspaceId: string,
    kind: WorkspaceAccessKind,
    subject: AccessSubject,
    level: WorkspaceLevelName | null,
  ): Promise<{ before: WorkspaceAccessRow | undefined; after: WorkspaceAccessRow }> {
    const inserted = await this.db
      .insertInto("workspace_access")
      .values({
        workspace_id: workspaceId,
        kind,
        level,
        user_id: "userId" in subject ? subject.userId : null,
        group_id: "groupId" in subject ? subject.groupId : null,
      })
      .onConflict((oc) => oc.doNothing())
      .returningAll()
      .executeTakeFirst();
    if (inserted) return { before: undefined, after: inserted };
    const before = await this.findAccess(workspaceId, kind, subject, true);
    if (!before) throw new Error("workspace access row vanished between insert and update");
    const after = await this.db
      .updateTable("workspace_access")
      .set({ level })
      .where("id", "=", before.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    return { before, after };
  }

  async removeAccess(workspaceId: string, kind: WorkspaceAccessKind, subject: AccessSubject): Promise<WorkspaceAccessRow | undefined> {
    const row = await this.findAccess(workspaceId, kind, subject, true);
    if (!row) return undefined;
    await this.db.deleteFrom("workspace_access").where("id", "=", row.id).execute();
    return row;
  }

  async listAccess(workspaceId: string): Promise<WorkspaceAccessRow[]> {
    return this.db.selectFrom("workspace_access").selectAll().where("workspace_id", "=", workspaceId).orderBy("id").execute();
  }

  private async findAccess(
    workspaceId: string,
    kind: WorkspaceAccessKind,
    subject: AccessSubject,
    lock: boolean,
  ): Promise<WorkspaceAccessRow | undefined> {
    let q = this.db.selectFrom("workspace_access").selectAll().where("workspace_id", "=", workspaceId).where("kind", "=", kind);
    q = "userId" in subject ? q.where("user_id", "=", subject.userId) : q.where("group_id", "=", subject.groupId);
    return (lock ? q.forUpdate() : q).executeTakeFirst();
  }
}
