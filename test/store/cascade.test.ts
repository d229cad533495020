import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { REFERENCES, type CascadeResult } from "../../src/store/cascade.js";
import type { TableName } from "../../src/store/database.js";
import type { Repositories, Store } from "../../src/store/store.js";
import { StoreReferenceError } from "../../src/store/errors.js";
import { freshStoreEach, kyselyOf } from "./helpers.js";

const TABLES: readonly TableName[] = [
  "users",
  "platform_admins",
  "organizations",
  "organization_members",
  "groups",
  "group_members",
  "group_closure",
  "workspaces",
  "workspace_access",
  "workspace_ancestors",
  "entities",
  "entity_members",
  "outbox",
];

/** A row's identity, whatever its table's key. */
function keyOf(table: TableName, row: Record<string, unknown>): string {
  switch (table) {
    case "platform_admins":
      return `${table}:${String(row["user_id"])}`;
    case "organization_members":
      return `${table}:${String(row["organization_id"])}/${String(row["user_id"])}`;
    case "entity_members":
      return `${table}:${String(row["entity_id"])}/${String(row["user_id"])}`;
    case "workspace_ancestors":
      return `${table}:${String(row["workspace_id"])}/${String(row["ancestor_id"])}`;
    case "folder_ancestors":
      return `${table}:${String(row["folder_id"])}/${String(row["ancestor_id"])}`;
    case "group_closure":
      return `${table}:${String(row["group_id"])}/${String(row["user_id"] ?? `group ${String(row["member_group_id"])}`)}`;
    default:
      return `${table}:${String(row["id"])}`;
  }
}

type Snapshot = Map<string, { table: TableName; row: Record<string, unknown> }>;

async function snapshot(store: Store): Promise<Snapshot> {
  const rows: Snapshot = new Map();
  for (const table of TABLES) {
    for (const row of await store.read.all(table)) rows.set(keyOf(table, row), { table, row });
  }
  return rows;
}

function removedKeys(result: CascadeResult): string[] {
  return result.removed.map(({ table, row }) => keyOf(table, row)).sort();
}

/** Rows present before and gone after, with their table. */
function vanished(before: Snapshot, after: Snapshot) {
  return [...before].filter(([key]) => !after.has(key)).map(([, entry]) => entry);
}

function sortedEntries(entries: Array<{ table: TableName; row: Record<string, unknown> }>) {
  return [...entries].sort((a, b) => keyOf(a.table, a.row).localeCompare(keyOf(b.table, b.row)));
}

describe("cascade", () => {
  let store!: Store;
  freshStoreEach((s) => (store = s));

  describe("the REFERENCES list", () => {
    async function foreignKeys() {
      const result = await sql<{
        table: string;
        column: string;
        parent: string;
        parent_column: string;
        columns: number;
        deferrable: boolean;
        initially_deferred: boolean;
        on_delete: string;
      }>`
        select child.relname as table,
               a.attname as column,
               parent.relname as parent,
               pa.attname as parent_column,
               cardinality(c.conkey) as columns,
               c.condeferrable as deferrable,
               c.condeferred as initially_deferred,
               c.confdeltype::text as on_delete
        from pg_constraint c
        join pg_class child on child.oid = c.conrelid
        join pg_class parent on parent.oid = c.confrelid
        join pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
        join pg_attribute pa on pa.attrelid = c.confrelid and pa.attnum = c.confkey[1]
        where c.contype = 'f' and c.connamespace = current_schema()::regnamespace
        order by 1, 2
      `.execute(kyselyOf(store));
      return result.rows;
    }

    it("names exactly the database's foreign keys", async () => {
      const keys = await foreignKeys();
      expect(keys.length).toBeGreaterThan(0);
      const inDatabase = keys.map((k) => `${k.table}.${k.column} -> ${k.parent}.${k.parent_column}`).sort();
      const listed = REFERENCES.map((r) => `${r.table}.${r.column} -> ${r.parent}.id`).sort();
      expect(listed).toEqual(inDatabase);
    });

    it("has no duplicates", () => {
      const listed = REFERENCES.map((r) => `${r.table}.${r.column}`);
      expect(new Set(listed).size).toBe(listed.length);
    });

    it("matches foreign keys that are single-column, DEFERRABLE INITIALLY DEFERRED and never cascade in the database", async () => {
      for (const key of await foreignKeys()) {
        expect({ fk: `${key.table}.${key.column}`, columns: key.columns, deferrable: key.deferrable, initiallyDeferred: key.initially_deferred, onDelete: key.on_delete }).toEqual({
          fk: `${key.table}.${key.column}`,
          columns: 1,
          deferrable: true,
          initiallyDeferred: true,
          onDelete: "a", // NO ACTION: deletes go through cascadeDelete, which returns what it removed
        });
      }
    });
  });

  /**
   * Two organizations. acme: users ann and bob, groups (admins nested in staff),
   * workspaces (root with a child, and a grandchild), workspace access, an entity
   * with a member. globex: its own group, which nests acme's staff group, and a
   * workspace that gives acme's staff access; carl belongs only to globex.
   */
  async function seed(tx: Repositories): Promise<void> {
    await tx.users.insert({ id: "ann", email: "ann@acme.com", display_name: "Ann" });
    await tx.users.insert({ id: "bob", email: "bob@acme.com", display_name: "Bob" });
    await tx.users.insert({ id: "carl", email: "carl@globex.com", display_name: "Carl" });
    await tx.users.addPlatformAdmin("ann");

    await tx.organizations.insert({ id: "acme", name: "Acme" });
    await tx.organizations.insert({ id: "globex", name: "Globex" });
    await tx.organizations.upsertMember("acme", "ann", true);
    await tx.organizations.upsertMember("acme", "bob", false);
    await tx.organizations.upsertMember("globex", "carl", true);
    await tx.organizations.upsertMember("globex", "ann", false);

    await tx.groups.insert({ id: "acme-staff", organization_id: "acme", name: "Staff" });
    await tx.groups.insert({ id: "acme-admins", organization_id: "acme", name: "Admins" });
    await tx.groups.insert({ id: "globex-partners", organization_id: "globex", name: "Partners" });
    await tx.groups.addMember("acme-staff", { userId: "bob" });
    await tx.groups.addMember("acme-staff", { groupId: "acme-admins" });
    await tx.groups.addMember("acme-admins", { userId: "ann" });
    await tx.groups.addMember("globex-partners", { groupId: "acme-staff" });
    await tx.groups.addMember("globex-partners", { userId: "carl" });
    // As the domain does after each membership change (store/groups.ts).
    await tx.groups.refreshClosure(["acme-staff", "acme-admins", "globex-partners"]);

    await tx.workspaces.insert({ id: "acme-root", organization_id: "acme", name: "Root" });
    await tx.workspaces.insert({ id: "acme-emea", organization_id: "acme", parent_id: "acme-root", name: "EMEA" });
    await tx.workspaces.insert({ id: "acme-emea-de", organization_id: "acme", parent_id: "acme-emea", name: "DE" });
    await tx.workspaces.insert({ id: "globex-main", organization_id: "globex", name: "Main" });
    await tx.workspaces.setAccess("acme-root", "level", { userId: "ann" }, "manage");
    await tx.workspaces.setAccess("acme-emea", "level", { groupId: "acme-staff" }, "analyze");
    await tx.workspaces.setAccess("acme-emea-de", "guest", { userId: "carl" }, null);
    await tx.workspaces.setAccess("globex-main", "level", { groupId: "acme-staff" }, "view");
    await tx.workspaces.setAccess("globex-main", "see", { userId: "bob" }, null);
    await tx.workspaces.setAccess("globex-main", "level", { userId: "carl" }, "manage");

    await tx.entities.insert({ id: "acme-sales", organization_id: "acme", name: "Sales" });
    await tx.entities.insert({ id: "globex-ops", organization_id: "globex", name: "Ops" });
    await tx.entities.addMember("acme-sales", "bob");
    await tx.entities.addMember("globex-ops", "bob");
    await tx.entities.addMember("globex-ops", "carl");

    await tx.outbox.append([{ o: "t", r: "organization:acme#member@user:ann" }]);
  }

  it("deleting a user removes and returns their admin flag, memberships and access rows, and nothing else", async () => {
    await store.transaction(seed);
    const before = await snapshot(store);

    const result = await store.transaction((tx) => tx.cascadeDelete("users", ["bob"]));

    expect(removedKeys(result)).toEqual(
      [
        "users:bob",
        "organization_members:acme/bob",
        "entity_members:acme-sales/bob",
        "entity_members:globex-ops/bob",
        ...[...before.values()]
          .filter(({ table, row }) => (table === "group_members" || table === "group_closure" || table === "workspace_access") && row["user_id"] === "bob")
          .map(({ table, row }) => keyOf(table, row)),
      ].sort(),
    );
    expect(result.removed.filter((r) => r.table === "group_members" || r.table === "workspace_access")).toHaveLength(2);
    expect(result.changed).toEqual([]);

    const after = await snapshot(store);
    expect(sortedEntries(result.removed)).toEqual(sortedEntries(vanished(before, after)));
    expect([...after.values()].some(({ row }) => Object.values(row).includes("bob"))).toBe(false);
  });

  it("deleting a user returns the platform_admins row too", async () => {
    await store.transaction(seed);

    const result = await store.transaction((tx) => tx.cascadeDelete("users", ["ann"]));

    expect(result.removed).toContainEqual({ table: "platform_admins", row: { user_id: "ann" } });
    expect(await store.read.users.listPlatformAdmins()).toEqual([]);
  });

  it("deleting an organization removes its groups, their members, workspaces with their children, access, entities and memberships, and returns every removed row with its table", async () => {
    await store.transaction(seed);
    const before = await snapshot(store);

    const result = await store.transaction((tx) => tx.cascadeDelete("organizations", ["acme"]));
    const after = await snapshot(store);

    // Exactly the rows that vanished, each once, as they were.
    expect(sortedEntries(result.removed)).toEqual(sortedEntries(vanished(before, after)));
    expect(result.changed).toEqual([]);

    const removed = removedKeys(result);
    expect(new Set(removed).size).toBe(removed.length);
    const removedTables = result.removed.map((r) => r.table);
    expect(removedTables.filter((t) => t === "organizations")).toHaveLength(1);
    expect(removed).toEqual(
      expect.arrayContaining([
        "organizations:acme",
        "organization_members:acme/ann",
        "organization_members:acme/bob",
        "groups:acme-staff",
        "groups:acme-admins",
        "workspaces:acme-root",
        "workspaces:acme-emea",
        "workspaces:acme-emea-de",
        "entities:acme-sales",
        "entity_members:acme-sales/bob",
      ]),
    );
    // Every group_members row touching an acme group, including globex's group nesting acme-staff.
    expect(result.removed.filter((r) => r.table === "group_members")).toHaveLength(4);
    // acme's workspaces' access, and globex-main's access for acme-staff.
    expect(
      result.removed
        .filter((r) => r.table === "workspace_access")
        .map((r) => (r.table === "workspace_access" ? [r.row.workspace_id, r.row.kind, r.row.user_id ?? r.row.group_id] : []))
        .sort(),
    ).toEqual([
      ["acme-emea", "level", "acme-staff"],
      ["acme-emea-de", "guest", "carl"],
      ["acme-root", "level", "ann"],
      ["globex-main", "level", "acme-staff"],
    ]);

    // Users are not owned by organizations; globex keeps everything of its own.
    expect(after.has("users:ann") && after.has("users:bob") && after.has("users:carl")).toBe(true);
    expect(await store.read.organizations.get("globex")).toBeDefined();
    expect(await store.read.groups.listMembers("globex-partners")).toEqual([expect.objectContaining({ user_id: "carl" })]);
    expect((await store.read.workspaces.listAccess("globex-main")).map((a) => [a.kind, a.user_id])).toEqual([
      ["see", "bob"],
      ["level", "carl"],
    ]);
    expect((await store.read.entities.listMembers("globex-ops", { limit: 10 })).items.map((u) => u.id)).toEqual(["bob", "carl"]);
    expect(await store.read.organizations.organizationsOf("ann")).toEqual([expect.objectContaining({ organization_id: "globex" })]);
    expect([...after.keys()].filter((k) => k.startsWith("outbox:"))).toHaveLength(1);
  });

  it("deleting a workspace removes its descendants and their access", async () => {
    await store.transaction(seed);

    const result = await store.transaction((tx) => tx.cascadeDelete("workspaces", ["acme-emea"]));

    expect(result.removed.filter((r) => r.table === "workspaces").map((r) => r.row.id).sort()).toEqual(["acme-emea", "acme-emea-de"]);
    expect(result.removed.filter((r) => r.table === "workspace_access")).toHaveLength(2);
    // The closure rows of the deleted workspaces go too (their relationships are removed with them).
    expect(result.removed.flatMap((r) => (r.table === "workspace_ancestors" ? [`${r.row.workspace_id}<${r.row.ancestor_id}`] : [])).sort()).toEqual([
      "acme-emea-de<acme-emea",
      "acme-emea-de<acme-root",
      "acme-emea<acme-root",
    ]);
    expect(await store.transaction((tx) => tx.all("workspace_ancestors"))).toEqual([]);
    expect((await store.read.workspaces.list("acme", { limit: 10 })).items.map((w) => w.id)).toEqual(["acme-root"]);
  });

  it("deleting nothing returns nothing", async () => {
    await store.transaction(seed);
    expect(await store.transaction((tx) => tx.cascadeDelete("organizations", []))).toEqual({ removed: [], changed: [] });
    expect(await store.transaction((tx) => tx.cascadeDelete("organizations", ["no-such-org"]))).toEqual({ removed: [], changed: [] });
  });

  it("a cascade inside a transaction that rolls back leaves every row in place", async () => {
    await store.transaction(seed);
    const before = await snapshot(store);

    await expect(
      store.transaction(async (tx) => {
        await tx.cascadeDelete("organizations", ["acme"]);
        throw new Error("abort");
      }),
    ).rejects.toThrow("abort");

    expect(await snapshot(store)).toEqual(before);
  });

  describe("the deferred foreign keys", () => {
    it("let a direct delete that leaves a dangling reference run, then fail the commit", async () => {
      await store.transaction(seed);
      const db = kyselyOf(store);
      let deletedInTransaction: bigint | undefined;

      const commit = db.transaction().execute(async (trx) => {
        const result = await trx.deleteFrom("users").where("id", "=", "bob").executeTakeFirst();
        deletedInTransaction = result.numDeletedRows;
      });

      await expect(commit).rejects.toMatchObject({ code: "23503" }); // foreign_key_violation
      expect(deletedInTransaction).toBe(1n);
      expect(await store.read.users.get("bob")).toBeDefined();
    });

    it("fail the commit of a dangling insert too, and the store reports it as a StoreReferenceError", async () => {
      await store.transaction(seed);

      await expect(
        store.transaction(async (tx) => {
          await tx.organizations.upsertMember("no-such-org", "ann", false);
        }),
      ).rejects.toBeInstanceOf(StoreReferenceError);
      expect(await store.read.organizations.organizationsOf("ann")).toHaveLength(2);
    });

    it("accept a delete whose dependents are removed later in the same transaction", async () => {
      await store.transaction(seed);
      const db = kyselyOf(store);

      await db.transaction().execute(async (trx) => {
        await trx.deleteFrom("entities").where("id", "=", "acme-sales").execute();
        await trx.deleteFrom("entity_members").where("entity_id", "=", "acme-sales").execute();
      });

      expect(await store.read.entities.get("acme-sales")).toBeUndefined();
    });
  });
});
