import { Migrator, NO_MIGRATIONS, sql, type Kysely, type MigrationResultSet } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { DatabaseTarget } from "../../src/store/connect.js";
import type { Database } from "../../src/store/database.js";
import { DATA_ONLY_MIGRATIONS, migrationProvider } from "../../src/store/migrations/index.js";
import type { Store } from "../../src/store/store.js";
import { deriveRow } from "../../src/domain/graph.js";
import { formatRelationship } from "../../src/sync/relationship-text.js";
import { freshStore } from "../support/database.js";
import { kyselyOf, schemaOf } from "./helpers.js";

const KYSELY_TABLES = ["kysely_migration", "kysely_migration_lock"];

/** The structure of the current schema: tables, columns, constraints, indexes (not data). */
async function schemaSnapshot(db: Kysely<Database>) {
  const columns = await sql<{ table_name: string; column_name: string; data_type: string; is_nullable: string; column_default: string | null; is_identity: string }>`
    select table_name, column_name, data_type, is_nullable, column_default, is_identity
    from information_schema.columns
    where table_schema = current_schema()
    order by table_name, column_name
  `.execute(db);
  const constraints = await sql<{ table_name: string; conname: string; definition: string }>`
    select c.conrelid::regclass::text as table_name, c.conname, pg_get_constraintdef(c.oid) as definition
    from pg_constraint c
    where c.connamespace = current_schema()::regnamespace
    order by 1, 2
  `.execute(db);
  const indexes = await sql<{ tablename: string; indexname: string; indexdef: string }>`
    select tablename, indexname, indexdef from pg_indexes where schemaname = current_schema() order by 1, 2
  `.execute(db);
  return { columns: columns.rows, constraints: constraints.rows, indexes: indexes.rows };
}

async function tableNames(db: Kysely<Database>): Promise<string[]> {
  const result = await sql<{ table_name: string }>`
    select table_name from information_schema.tables where table_schema = current_schema() order by table_name
  `.execute(db);
  return result.rows.map((r) => r.table_name);
}

function expectSuccess(resultSet: MigrationResultSet, direction: "Up" | "Down", names: string[]): void {
  expect(resultSet.error).toBeUndefined();
  expect(resultSet.results?.map((r) => [r.migrationName, r.direction, r.status])).toEqual(names.map((n) => [n, direction, "Success"]));
}

describe("migrations", () => {
  let store: Store;
  let target: DatabaseTarget;
  let dispose: () => Promise<void>;

  beforeEach(async () => {
    ({ store, target, dispose } = await freshStore());
  });
  afterEach(async () => {
    await dispose();
  });

  function migrator(): Migrator {
    const schema = schemaOf(target);
    return new Migrator({ db: kyselyOf(store), provider: migrationProvider, ...(schema ? { migrationTableSchema: schema } : {}) });
  }

  it("migrating an up-to-date database applies nothing and changes nothing", async () => {
    const before = await schemaSnapshot(kyselyOf(store));

    expect(await store.migrate()).toEqual({ applied: [] });
    expect(await store.migrate()).toEqual({ applied: [] });

    expect(await schemaSnapshot(kyselyOf(store))).toEqual(before);
  });

  it("every migration has been applied to a fresh store", async () => {
    const names = Object.keys(await migrationProvider.getMigrations()).sort();
    const applied = await migrator().getMigrations();
    expect(applied.map((m) => [m.name, m.executedAt !== undefined])).toEqual(names.map((n) => [n, true]));
  });

  it("every migration's down() then up() round-trips the schema, newest first", async () => {
    const db = kyselyOf(store);
    const names = Object.keys(await migrationProvider.getMigrations()).sort();
    expect(names.length).toBeGreaterThan(0);
    const latest = await schemaSnapshot(db);

    for (const name of [...names].reverse()) {
      const afterThis = await schemaSnapshot(db);

      expectSuccess(await migrator().migrateDown(), "Down", [name]);
      const afterDown = await schemaSnapshot(db);
      // A migration that only sends data through the outbox changes no structure.
      if (DATA_ONLY_MIGRATIONS.has(name)) expect(afterDown).toEqual(afterThis);
      else expect(afterDown).not.toEqual(afterThis);

      expectSuccess(await migrator().migrateUp(), "Up", [name]);
      expect(await schemaSnapshot(db)).toEqual(afterThis);

      // Step below this migration to round-trip the one before it.
      expectSuccess(await migrator().migrateDown(), "Down", [name]);
      expect(await schemaSnapshot(db)).toEqual(afterDown);
    }

    // All the way down, only kysely's bookkeeping is left.
    expect(await tableNames(db)).toEqual(KYSELY_TABLES);

    expectSuccess(await migrator().migrateToLatest(), "Up", names);
    expect(await schemaSnapshot(db)).toEqual(latest);
  });

  it("migrateTo(NO_MIGRATIONS) drops every table and migrateToLatest restores a working store", async () => {
    const names = Object.keys(await migrationProvider.getMigrations()).sort();
    expectSuccess(await migrator().migrateTo(NO_MIGRATIONS), "Down", [...names].reverse());
    expect(await tableNames(kyselyOf(store))).toEqual(KYSELY_TABLES);

    expect(await store.migrate()).toEqual({ applied: names });
    const user = await store.transaction((tx) => tx.users.insert({ id: "u1", email: "u1@example.com" }));
    expect(user).toMatchObject({ id: "u1", email: "u1@example.com", display_name: "" });
  });
  it("0009: an existing workspace tree gets its closure, and the outbox carries its relationships to SpiceDB after the batches already pending", async () => {
    const db = kyselyOf(store);
    expectSuccess(await migrator().migrateTo("0008_service_relationships"), "Down", ["0012_content_by_folder_and_kind", "0011_group_closure", "0010_cumulative_roles", "0009_workspace_ancestors"]);
    // A chain of 40 workspaces (780 closure rows) and a lone root.
    await sql`insert into organizations (id, name) values ('acme', 'Acme')`.execute(db);
    await sql`insert into workspaces (id, organization_id, parent_id, name) values ('w00', 'acme', null, 'w00'), ('lone', 'acme', null, 'lone')`.execute(db);
    for (let i = 1; i < 40; i++) {
      const id = `w${String(i).padStart(2, "0")}`;
      const parent = `w${String(i - 1).padStart(2, "0")}`;
      await sql`insert into workspaces (id, organization_id, parent_id, name) values (${id}, 'acme', ${parent}, ${id})`.execute(db);
    }
    const pending = await store.transaction((tx) => tx.outbox.append([{ o: "t", r: "organization:acme#platform@platform:sharegraph" }]));

    expectSuccess(await migrator().migrateTo("0009_workspace_ancestors"), "Up", ["0009_workspace_ancestors"]);

    const rows = await db.selectFrom("workspace_ancestors").selectAll().orderBy("workspace_id").orderBy("ancestor_id").execute();
    const expected = [];
    for (let i = 1; i < 40; i++) {
      for (let d = 1; d <= i; d++) expected.push({ workspace_id: `w${String(i).padStart(2, "0")}`, ancestor_id: `w${String(i - d).padStart(2, "0")}`, depth: d });
    }
    const byKey = (a: { workspace_id: string; ancestor_id: string }, b: { workspace_id: string; ancestor_id: string }) =>
      a.workspace_id.localeCompare(b.workspace_id) || a.ancestor_id.localeCompare(b.ancestor_id);
    expect(rows).toEqual(expected.sort(byKey));

    // What the application derives for the closure (graph.ts), for 41 workspaces and 780 closure rows: 41 × 3 + 780 × 4.
    const workspaces = await db.selectFrom("workspaces").selectAll().execute();
    const closure = [
      ...workspaces.flatMap((w) => deriveRow("workspaces", w)).filter((r) => r.subject.type === "workspace" && r.resource.id === r.subject.id),
      ...rows.flatMap((r) => deriveRow("workspace_ancestors", r)),
    ].map(formatRelationship);
    expect(closure).toHaveLength(3243);
    const batches = await db.selectFrom("outbox").selectAll().where("id", ">", pending).orderBy("id").execute();
    expect(batches.map((b) => b.op_count)).toEqual([1000, 1000, 1000, 243]);
    expect(batches.every((b) => b.applied_at === null && b.ops.length === b.op_count)).toBe(true);
    const ops = batches.flatMap((b) => b.ops);
    expect(ops.every((op) => op.o === "t")).toBe(true);
    expect(ops.map((op) => op.r).sort()).toEqual(closure.sort());
  });

  it("0010: every existing grant and workspace level gets its cumulative relationships, sent through the outbox after the batches already pending", async () => {
    const db = kyselyOf(store);
    expectSuccess(await migrator().migrateTo("0009_workspace_ancestors"), "Down", ["0012_content_by_folder_and_kind", "0011_group_closure", "0010_cumulative_roles"]);
    await sql`insert into organizations (id, name) values ('acme', 'Acme')`.execute(db);
    await sql`insert into users (id, email) values ('ann', 'ann@acme.test'), ('bob', 'bob@acme.test')`.execute(db);
    await sql`insert into groups (id, organization_id, name) values ('sales', 'acme', 'Sales')`.execute(db);
    await sql`insert into workspaces (id, organization_id, parent_id, name) values ('w', 'acme', null, 'W')`.execute(db);
    await sql`insert into folders (id, workspace_id, parent_id, name) values ('f', 'w', null, 'F')`.execute(db);
    await sql`insert into content (id, kind, workspace_id, folder_id, name) values ('d', 'dashboard', 'w', 'f', 'D'), ('r', 'report', 'w', null, 'R')`.execute(db);
    // Every role on every kind of subject; 500 report grants more, to fill more than one batch.
    await sql`
      insert into grants (resource_type, folder_id, content_id, user_id, group_id, organization_id, role) values
        ('folder', 'f', null, 'ann', null, null, 'viewer'), ('folder', 'f', null, null, 'sales', null, 'sharer'),
        ('folder', 'f', null, null, null, 'acme', 'editor'), ('dashboard', null, 'd', 'bob', null, null, 'manager'),
        ('report', null, 'r', null, 'sales', null, 'editor')`.execute(db);
    await sql`insert into users (id, email) select 'u' || i, 'u' || i || '@acme.test' from generate_series(0, 499) i`.execute(db);
    await sql`
      insert into grants (resource_type, content_id, user_id, role)
      select 'report', 'r', 'u' || i, (array['viewer', 'sharer', 'editor', 'manager'])[i % 4 + 1] from generate_series(0, 499) i`.execute(db);
    await sql`
      insert into workspace_access (workspace_id, kind, level, user_id, group_id) values
        ('w', 'level', 'view', 'ann', null), ('w', 'level', 'analyze', null, 'sales'), ('w', 'level', 'manage', 'bob', null),
        ('w', 'guest', null, 'ann', null), ('w', 'see', null, 'bob', null)`.execute(db);
    const pending = await store.transaction((tx) => tx.outbox.append([{ o: "t", r: "organization:acme#platform@platform:sharegraph" }]));

    expectSuccess(await migrator().migrateTo("0010_cumulative_roles"), "Up", ["0010_cumulative_roles"]);

    // What the application derives (graph.ts), less what was already written: the grant or level itself.
    const grants = await db.selectFrom("grants").selectAll().execute();
    const access = await db.selectFrom("workspace_access").selectAll().execute();
    const cumulative = [
      ...grants.flatMap((g) => deriveRow("grants", g).slice(1)),
      ...access.flatMap((a) => deriveRow("workspace_access", a).slice(1)),
    ].map(formatRelationship);
    // Folder grants (viewer 1, sharer 2, editor 3) + manager 3 + editor 3 + 500 report grants (125 × (1 + 2 + 3 + 3)) + levels (1 + 2 + 2; guest and SEE none).
    expect(cumulative).toHaveLength(6 + 3 + 3 + 1125 + 5);
    expect(cumulative).toContain("folder:f#share_role@group:sales#member");
    expect(cumulative).toContain("workspace:w#analyze_level@group:sales#member");
    expect(cumulative.filter((r) => r.startsWith("workspace:w#view_level@user:ann"))).toHaveLength(1);
    const batches = await db.selectFrom("outbox").selectAll().where("id", ">", pending).orderBy("id").execute();
    expect(batches.map((b) => b.op_count)).toEqual([1000, 142]);
    expect(batches.every((b) => b.applied_at === null && b.ops.length === b.op_count)).toBe(true);
    const ops = batches.flatMap((b) => b.ops);
    expect(ops.every((op) => op.o === "t")).toBe(true);
    expect(ops.map((op) => op.r).sort()).toEqual(cumulative.sort());
  });

  it("0011: existing nested groups become their closure, and the outbox replaces the nested relationships with it after the batches already pending", async () => {
    const db = kyselyOf(store);
    expectSuccess(await migrator().migrateTo("0010_cumulative_roles"), "Down", ["0012_content_by_folder_and_kind", "0011_group_closure"]);
    await sql`insert into organizations (id, name) values ('initech', 'Initech')`.execute(db);
    await sql`insert into users (id, email) select 'g' || i, 'g' || i || '@initech.test' from generate_series(0, 599) i`.execute(db);
    // A diamond (top ⊇ left, right ⊇ bottom), a chain of 4 under bottom, and 600 users spread over them.
    const groups = ["top", "left", "right", "bottom", "c1", "c2", "c3", "c4"];
    for (const g of groups) await sql`insert into groups (id, organization_id, name) values (${g}, 'initech', ${g})`.execute(db);
    const nestings: Array<[string, string]> = [["top", "left"], ["top", "right"], ["left", "bottom"], ["right", "bottom"], ["bottom", "c1"], ["c1", "c2"], ["c2", "c3"], ["c3", "c4"]];
    for (const [outer, inner] of nestings) await sql`insert into group_members (group_id, member_group_id) values (${outer}, ${inner})`.execute(db);
    await sql`
      insert into group_members (group_id, user_id)
      select (array['top', 'left', 'right', 'bottom', 'c1', 'c2', 'c3', 'c4'])[i % 8 + 1], 'g' || i from generate_series(0, 599) i`.execute(db);
    const pending = await store.transaction((tx) => tx.outbox.append([{ o: "t", r: "organization:initech#platform@platform:sharegraph" }]));

    expectSuccess(await migrator().migrateTo("0011_group_closure"), "Up", ["0011_group_closure"]);

    // The closure the migration wrote is the one the store keeps: a refresh of every group changes nothing.
    const everyGroup = (await db.selectFrom("groups").select("id").execute()).map((g) => g.id);
    expect(await store.transaction((tx) => tx.groups.refreshClosure(everyGroup))).toEqual({ added: [], removed: [] });
    const closure = await db.selectFrom("group_closure").selectAll().execute();
    // top holds all 600 users and the 7 groups below it; c4 holds its 75 users.
    expect(closure.filter((r) => r.group_id === "top" && r.user_id !== null)).toHaveLength(600);
    expect(closure.filter((r) => r.group_id === "top" && r.member_group_id !== null)).toHaveLength(7);
    expect(closure.filter((r) => r.group_id === "c4")).toHaveLength(75);

    // What the application derives (graph.ts): the stand-ins and the closure, touched; the nested relationships, deleted.
    const derived = [
      ...(await db.selectFrom("groups").selectAll().execute()).flatMap((g) => deriveRow("groups", g)).filter((r) => r.relation === "member"),
      ...closure.flatMap((r) => deriveRow("group_closure", r)),
    ].map(formatRelationship);
    const nested = nestings.map(([outer, inner]) => `group:${outer}#member@group:${inner}#member`);
    const batches = await db.selectFrom("outbox").selectAll().where("id", ">", pending).orderBy("id").execute();
    expect(batches.every((b) => b.applied_at === null && b.ops.length === b.op_count && b.op_count <= 1000)).toBe(true);
    const ops = batches.flatMap((b) => b.ops);
    expect(ops.filter((op) => op.o === "t").map((op) => op.r).sort()).toEqual(derived.sort());
    expect(ops.filter((op) => op.o === "d").map((op) => op.r).sort()).toEqual(nested.sort());
    // Touches first: no member loses access between two batches.
    expect(ops.findIndex((op) => op.o === "d")).toBe(ops.length - nested.length);
  });
});
