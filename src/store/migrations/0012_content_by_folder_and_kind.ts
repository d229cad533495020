import { sql, type Kysely } from "kysely";

/*
 * Content by folder and kind, carrying its workspace and id: a lookup of
 * what a user may view (store/content-view.ts) probes it once per folder
 * the user holds a role on (or below one), and reads the answer from the
 * index alone instead of one heap page per item — for a user with roles on
 * ~1,000 folders, 9,000 page reads became none (docs/PERFORMANCE.md,
 * round 8). It replaces content_folder, whose single column it leads with.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create index content_folder_kind on content (folder_id, kind) include (workspace_id, id);
    drop index content_folder;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    create index content_folder on content (folder_id);
    drop index content_folder_kind;
  `.execute(db);
}
