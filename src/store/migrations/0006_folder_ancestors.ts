import { sql, type Kysely } from "kysely";

/*
 * Every folder's ancestors, as rows (a closure table). The permission index
 * gets one `ancestor` relationship per row, so that a role granted on any
 * folder above an item is found in one step instead of one step per level.
 * Kept up to date by the store on folder creation and moves; deleting a
 * folder deletes its rows through store/cascade.ts like any other reference.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table folder_ancestors (
      folder_id text not null references folders (id) deferrable initially deferred,
      ancestor_id text not null references folders (id) deferrable initially deferred,
      depth integer not null check (depth > 0),
      primary key (folder_id, ancestor_id)
    );
    create index folder_ancestors_ancestor on folder_ancestors (ancestor_id);

    insert into folder_ancestors (folder_id, ancestor_id, depth)
    with recursive up(folder_id, ancestor_id, depth) as (
      select id, parent_id, 1 from folders where parent_id is not null
      union all
      select up.folder_id, f.parent_id, up.depth + 1
      from up join folders f on f.id = up.ancestor_id
      where f.parent_id is not null and up.depth < 1000
    )
    select folder_id, ancestor_id, depth from up;
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table folder_ancestors`.execute(db);
}
