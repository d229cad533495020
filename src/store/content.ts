import { sql, type Kysely } from "kysely";
import type { ContentKind, Database, NewRow, Row } from "./database.js";

export type FolderRow = Row<"folders">;
export type FolderAncestorRow = Row<"folder_ancestors">;
export type ContentRow = Row<"content">;

export class FoldersRepo {
  constructor(private readonly db: Kysely<Database>) {}

  /** Inserts the folder and its ancestor rows (the closure); returns both. */
  async insert(row: NewRow<"folders">): Promise<{ folder: FolderRow; ancestors: FolderAncestorRow[] }> {
    const folder = await this.db.insertInto("folders").values(row).returningAll().executeTakeFirstOrThrow();
    const ancestors = folder.parent_id === null ? [] : await this.#addAncestors([folder.id], folder.parent_id);
    return { folder, ancestors };
  }

  /**
   * Moves a folder under another (or to the root): the folder and its whole
   * subtree lose the ancestors above the folder and gain the new ones.
   * Returns the closure rows removed and added.
   */
  async setParent(
    id: string,
    parentId: string | null,
  ): Promise<{ before: FolderRow; after: FolderRow; removed: FolderAncestorRow[]; added: FolderAncestorRow[] } | undefined> {
    const before = await this.getForUpdate(id);
    if (!before) return undefined;
    const after = await this.db.updateTable("folders").set({ parent_id: parentId }).where("id", "=", id).returningAll().executeTakeFirstOrThrow();
    const below = await this.db.selectFrom("folder_ancestors").select("folder_id").where("ancestor_id", "=", id).execute();
    const subtree = [id, ...below.map((r) => r.folder_id)];
    const removed = await this.db
      .deleteFrom("folder_ancestors")
      .where("folder_id", "in", subtree)
      .where("ancestor_id", "not in", subtree)
      .returningAll()
      .execute();
    const added = parentId === null ? [] : await this.#addAncestors(subtree, parentId, id);
    return { before, after, removed, added };
  }

  /** Every folder of `folders` gains `parentId` and its ancestors, through `top` (a folder of the list, or itself). */
  async #addAncestors(folders: readonly string[], parentId: string, top = folders[0]!): Promise<FolderAncestorRow[]> {
    const result = await sql<FolderAncestorRow>`
      insert into folder_ancestors (folder_id, ancestor_id, depth)
      select below.folder_id, above.ancestor_id, below.depth + above.depth
      from (
        select ${top}::text as folder_id, 0 as depth
        union all
        select folder_id, depth from folder_ancestors where ancestor_id = ${top} and folder_id = any(${folders as string[]}::text[])
      ) below
      cross join (
        select ${parentId}::text as ancestor_id, 1 as depth
        union all
        select ancestor_id, depth + 1 from folder_ancestors where folder_id = ${parentId}
      ) above
      returning folder_id, ancestor_id, depth
    `.execute(this.db);
    return result.rows;
  }

  async get(id: string): Promise<FolderRow | undefined> {
    return this.db.selectFrom("folders").selectAll().where("id", "=", id).executeTakeFirst();
  }

  async getForUpdate(id: string): Promise<FolderRow | undefined> {
    return this.db.selectFrom("folders").selectAll().where("id", "=", id).forUpdate().executeTakeFirst();
  }

  async getMany(ids: readonly string[]): Promise<FolderRow[]> {
    if (ids.length === 0) return [];
    return this.db.selectFrom("folders").selectAll().where("id", "in", ids).execute();
  }

  /** Folders directly inside a folder, or at the workspace root (parentId null). */
  async children(workspaceId: string, parentId: string | null): Promise<FolderRow[]> {
    let q = this.db.selectFrom("folders").selectAll().where("workspace_id", "=", workspaceId);
    q = parentId === null ? q.where("parent_id", "is", null) : q.where("parent_id", "=", parentId);
    return q.orderBy("name").orderBy("id").execute();
  }

  /** The folder and its ancestors, nearest first. */
  async ancestry(id: string): Promise<FolderRow[]> {
    const result = await sql<FolderRow & { depth: number }>`
      with recursive up as (
        select f.*, 0 as depth from folders f where f.id = ${id}
        union all
        select p.*, up.depth + 1 from folders p join up on p.id = up.parent_id where up.depth < 1000
      )
      select * from up order by depth
    `.execute(this.db);
    return result.rows.map(({ depth: _depth, ...row }) => row);
  }

}

export class ContentRepo {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(row: NewRow<"content">): Promise<ContentRow> {
    return this.db.insertInto("content").values(row).returningAll().executeTakeFirstOrThrow();
  }

  async get(id: string): Promise<ContentRow | undefined> {
    return this.db.selectFrom("content").selectAll().where("id", "=", id).executeTakeFirst();
  }

  async getForUpdate(id: string): Promise<ContentRow | undefined> {
    return this.db.selectFrom("content").selectAll().where("id", "=", id).forUpdate().executeTakeFirst();
  }

  async getMany(ids: readonly string[]): Promise<ContentRow[]> {
    if (ids.length === 0) return [];
    return this.db.selectFrom("content").selectAll().where("id", "in", ids).execute();
  }

  async children(workspaceId: string, folderId: string | null): Promise<ContentRow[]> {
    let q = this.db.selectFrom("content").selectAll().where("workspace_id", "=", workspaceId);
    q = folderId === null ? q.where("folder_id", "is", null) : q.where("folder_id", "=", folderId);
    return q.orderBy("name").orderBy("id").execute();
  }

  async setFolder(id: string, folderId: string | null): Promise<ContentRow | undefined> {
    return this.db.updateTable("content").set({ folder_id: folderId }).where("id", "=", id).returningAll().executeTakeFirst();
  }

  /**
   * R4 / GoodData's PRIVATE tab: content whose grant holders — direct,
   * inherited from any ancestor folder, or partner organizations — are
   * exactly one: this user.
   */
  async privateTo(userId: string, workspaceId?: string, kinds?: readonly ContentKind[]): Promise<ContentRow[]> {
    const result = await sql<ContentRow>`
      with recursive chain(content_id, folder_id) as (
        select c.id, c.folder_id from content c
        where (${workspaceId ?? null}::text is null or c.workspace_id = ${workspaceId ?? null})
        union all
        select chain.content_id, f.parent_id from chain join folders f on f.id = chain.folder_id
        where f.parent_id is not null
      ),
      holders(content_id, user_id) as (
        select g.content_id, g.user_id from grants g where g.content_id is not null
        union all
        select chain.content_id, g.user_id from chain join grants g on g.folder_id = chain.folder_id
        union all
        -- shared with a partner organization: not private either
        select s.content_id, null from partner_shares s
      )
      select c.* from content c
      where c.id in (select content_id from holders where user_id = ${userId})
        and not exists (
          select 1 from holders h where h.content_id = c.id and h.user_id is distinct from ${userId}
        )
      order by c.name, c.id
    `.execute(this.db);
    const rows = result.rows;
    return kinds ? rows.filter((r) => kinds.includes(r.kind)) : rows;
  }
}
