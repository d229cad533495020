import { beforeEach, describe, expect, it } from "vitest";
import { StoreConflictError } from "../../src/store/errors.js";
import type { Repositories, Store } from "../../src/store/store.js";
import { freshStoreEach } from "./helpers.js";

describe("repositories", () => {
  let store!: Store;
  freshStoreEach((s) => (store = s));

  const write = <T>(fn: (tx: Repositories) => Promise<T>): Promise<T> => store.transaction(fn);

  async function addUsers(...users: Array<[id: string, email: string, name: string]>): Promise<void> {
    await write(async (tx) => {
      for (const [id, email, display_name] of users) await tx.users.insert({ id, email, display_name });
    });
  }

  describe("users", () => {
    it("insert returns the stored row with defaults filled in", async () => {
      const row = await write((tx) => tx.users.insert({ id: "ann", email: "ann@acme.com" }));

      expect(row).toEqual({ id: "ann", email: "ann@acme.com", display_name: "", created_at: expect.any(Date) });
      expect(await store.read.users.get("ann")).toEqual(row);
      expect(await store.read.users.getByEmail("ann@acme.com")).toEqual(row);
      expect(await store.read.users.get("nobody")).toBeUndefined();
    });

    it("a duplicate email is a StoreConflictError naming users_email_key, and nothing is written", async () => {
      await addUsers(["ann", "ann@acme.com", "Ann"]);

      const error = await write((tx) => tx.users.insert({ id: "ann2", email: "ann@acme.com" })).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(StoreConflictError);
      expect((error as StoreConflictError).constraint).toBe("users_email_key");
      expect(await store.read.users.get("ann2")).toBeUndefined();
    });

    it("a duplicate id is a StoreConflictError naming users_pkey", async () => {
      await addUsers(["ann", "ann@acme.com", "Ann"]);
      await expect(write((tx) => tx.users.insert({ id: "ann", email: "other@acme.com" }))).rejects.toMatchObject({
        name: "StoreConflictError",
        constraint: "users_pkey",
      });
    });

    it("getMany returns the users that exist", async () => {
      await addUsers(["ann", "ann@acme.com", "Ann"], ["bob", "bob@acme.com", "Bob"]);
      expect((await store.read.users.getMany(["bob", "ann", "nobody"])).map((u) => u.id).sort()).toEqual(["ann", "bob"]);
      expect(await store.read.users.getMany([])).toEqual([]);
    });

    describe("list", () => {
      beforeEach(async () => {
        await addUsers(
          ["u1", "ann@acme.com", "Ann Lee"],
          ["u2", "bob@example.com", "Bob 50% Off"],
          ["u3", "carl@example.com", "Carl 500 Off"],
          ["u4", "dan@example.com", "Dan_X"],
          ["u5", "dee@example.com", "DanAX"],
          ["u6", "eve@example.com", "back\\slash"],
        );
      });

      const ids = async (query: string) => (await store.read.users.list(query, { limit: 100 })).items.map((u) => u.id);

      it("without a query lists everyone in id order", async () => {
        expect(await ids("")).toEqual(["u1", "u2", "u3", "u4", "u5", "u6"]);
      });

      it("searches display names and emails, case-insensitively", async () => {
        expect(await ids("ann")).toEqual(["u1"]);
        expect(await ids("ACME")).toEqual(["u1"]);
        expect(await ids("example.com")).toEqual(["u2", "u3", "u4", "u5", "u6"]);
        expect(await ids("off")).toEqual(["u2", "u3"]);
        expect(await ids("nobody")).toEqual([]);
      });

      it("treats LIKE wildcards and the escape character in the query as text", async () => {
        expect(await ids("50%")).toEqual(["u2"]);
        expect(await ids("n_x")).toEqual(["u4"]);
        expect(await ids("%")).toEqual(["u2"]);
        expect(await ids("_")).toEqual(["u4"]);
        expect(await ids("k\\s")).toEqual(["u6"]);
      });

      it("pages by id, with the key to continue after until the last page", async () => {
        const first = await store.read.users.list("", { limit: 4 });
        expect(first.items.map((u) => u.id)).toEqual(["u1", "u2", "u3", "u4"]);
        expect(first.next).toBe("u4");

        const second = await store.read.users.list("", { limit: 4, after: first.next });
        expect(second.items.map((u) => u.id)).toEqual(["u5", "u6"]);
        expect(second.next).toBeUndefined();
      });

      it("a page exactly filling the limit has no next key", async () => {
        const page = await store.read.users.list("example", { limit: 5 });
        expect(page.items).toHaveLength(5);
        expect(page.next).toBeUndefined();
      });

      it("pages within search results", async () => {
        const first = await store.read.users.list("example", { limit: 2 });
        expect(first).toMatchObject({ items: [{ id: "u2" }, { id: "u3" }], next: "u3" });
        const second = await store.read.users.list("example", { limit: 2, after: first.next });
        expect(second).toMatchObject({ items: [{ id: "u4" }, { id: "u5" }], next: "u5" });
        const last = await store.read.users.list("example", { limit: 2, after: second.next });
        expect(last.items.map((u) => u.id)).toEqual(["u6"]);
        expect(last.next).toBeUndefined();
      });
    });

    it("platform admins are added once and removed, returning the row", async () => {
      await addUsers(["ann", "ann@acme.com", "Ann"], ["bob", "bob@acme.com", "Bob"]);

      expect(await write((tx) => tx.users.addPlatformAdmin("bob"))).toEqual({ user_id: "bob" });
      expect(await write((tx) => tx.users.addPlatformAdmin("bob"))).toBeUndefined();
      await write((tx) => tx.users.addPlatformAdmin("ann"));
      expect(await store.read.users.listPlatformAdmins()).toEqual(["ann", "bob"]);

      expect(await write((tx) => tx.users.removePlatformAdmin("bob"))).toEqual({ user_id: "bob" });
      expect(await write((tx) => tx.users.removePlatformAdmin("bob"))).toBeUndefined();
      expect(await store.read.users.listPlatformAdmins()).toEqual(["ann"]);
    });
  });

  describe("organizations", () => {
    beforeEach(async () => {
      await addUsers(["ann", "ann@acme.com", "Ann"], ["bob", "bob@acme.com", "Bob"], ["carl", "carl@globex.com", "Carl"]);
      await write(async (tx) => {
        await tx.organizations.insert({ id: "acme", name: "Acme Corp" });
        await tx.organizations.insert({ id: "globex", name: "Globex", channel_partner: true });
        await tx.organizations.insert({ id: "initech", name: "Initech" });
        await tx.organizations.upsertMember("acme", "ann", true);
        await tx.organizations.upsertMember("acme", "bob", false);
        await tx.organizations.upsertMember("globex", "carl", false);
      });
    });

    it("counts members per organization", async () => {
      expect(await store.read.organizations.getWithCount("acme")).toMatchObject({ id: "acme", name: "Acme Corp", channel_partner: false, member_count: 2 });
      expect(await store.read.organizations.getWithCount("initech")).toMatchObject({ member_count: 0 });
      expect(await store.read.organizations.getWithCount("nope")).toBeUndefined();
      const { items } = await store.read.organizations.list({ query: "", channelPartnersOnly: false }, { limit: 10 });
      expect(items.map((o) => [o.id, o.member_count])).toEqual([
        ["acme", 2],
        ["globex", 1],
        ["initech", 0],
      ]);
    });

    it("upsertMember inserts (no before) and then updates (the row before and after)", async () => {
      const inserted = await write((tx) => tx.organizations.upsertMember("initech", "ann", false));
      expect(inserted.before).toBeUndefined();
      expect(inserted.after).toMatchObject({ organization_id: "initech", user_id: "ann", admin: false });

      const updated = await write((tx) => tx.organizations.upsertMember("initech", "ann", true));
      expect(updated.before).toEqual(inserted.after);
      expect(updated.after).toEqual({ ...inserted.after, admin: true });

      expect(await store.read.organizations.getMember("initech", "ann")).toEqual(updated.after);
      expect(await store.read.organizations.getWithCount("initech")).toMatchObject({ member_count: 1 });
    });

    it("upsertMember with the same value reports before equal to after", async () => {
      const { before, after } = await write((tx) => tx.organizations.upsertMember("acme", "ann", true));
      expect(before).toEqual(after);
    });

    it("lists by name search and channel-partner flag", async () => {
      const ids = async (query: string, channelPartnersOnly: boolean) =>
        (await store.read.organizations.list({ query, channelPartnersOnly }, { limit: 10 })).items.map((o) => o.id);

      expect(await ids("corp", false)).toEqual(["acme"]);
      expect(await ids("E", false)).toEqual(["acme", "globex", "initech"]);
      expect(await ids("", true)).toEqual(["globex"]);
      expect(await ids("acme", true)).toEqual([]);
      expect(await ids("%", false)).toEqual([]);

      await write((tx) => tx.organizations.setChannelPartner("acme", true));
      expect(await ids("", true)).toEqual(["acme", "globex"]);
    });

    it("pages organizations by id", async () => {
      const first = await store.read.organizations.list({ query: "", channelPartnersOnly: false }, { limit: 2 });
      expect(first.items.map((o) => o.id)).toEqual(["acme", "globex"]);
      expect(first.next).toBe("globex");
      const second = await store.read.organizations.list({ query: "", channelPartnersOnly: false }, { limit: 2, after: first.next });
      expect(second.items.map((o) => o.id)).toEqual(["initech"]);
      expect(second.next).toBeUndefined();
    });

    it("lists members with their user details, and removes them", async () => {
      const { items } = await store.read.organizations.listMembers("acme", { limit: 10 });
      expect(items.map((m) => [m.user_id, m.admin, m.email, m.display_name])).toEqual([
        ["ann", true, "ann@acme.com", "Ann"],
        ["bob", false, "bob@acme.com", "Bob"],
      ]);

      expect(await write((tx) => tx.organizations.removeMember("acme", "bob"))).toMatchObject({ organization_id: "acme", user_id: "bob" });
      expect(await write((tx) => tx.organizations.removeMember("acme", "bob"))).toBeUndefined();
      expect(await store.read.organizations.getWithCount("acme")).toMatchObject({ member_count: 1 });
      expect(await store.read.organizations.organizationsOf("bob")).toEqual([]);
      expect((await store.read.organizations.organizationsOf("ann")).map((m) => m.organization_id)).toEqual(["acme"]);
    });
  });

  describe("groups", () => {
    // top ⊃ mid ⊃ leaf; ann in leaf, bob in mid; solo stands apart.
    beforeEach(async () => {
      await addUsers(["ann", "ann@acme.com", "Ann"], ["bob", "bob@acme.com", "Bob"], ["carl", "carl@acme.com", "Carl"]);
      await write(async (tx) => {
        await tx.organizations.insert({ id: "acme", name: "Acme" });
        for (const id of ["top", "mid", "leaf", "solo"]) await tx.groups.insert({ id, organization_id: "acme", name: id });
        await tx.groups.addMember("top", { groupId: "mid" });
        await tx.groups.addMember("mid", { groupId: "leaf" });
        await tx.groups.addMember("leaf", { userId: "ann" });
        await tx.groups.addMember("mid", { userId: "bob" });
      });
    });

    it("containingGroups is every group a group is nested in, transitively", async () => {
      expect((await store.read.groups.containingGroups("leaf")).sort()).toEqual(["mid", "top"]);
      expect(await store.read.groups.containingGroups("mid")).toEqual(["top"]);
      expect(await store.read.groups.containingGroups("top")).toEqual([]);
      expect(await store.read.groups.containingGroups("solo")).toEqual([]);
    });

    it("groupsOfUser is every group a user belongs to, directly or through nesting, each once", async () => {
      expect((await store.read.groups.groupsOfUser("ann")).sort()).toEqual(["leaf", "mid", "top"]);
      expect((await store.read.groups.groupsOfUser("bob")).sort()).toEqual(["mid", "top"]);
      expect(await store.read.groups.groupsOfUser("carl")).toEqual([]);

      await write((tx) => tx.groups.addMember("top", { userId: "ann" }));
      expect((await store.read.groups.groupsOfUser("ann")).sort()).toEqual(["leaf", "mid", "top"]);
    });

    it("the recursive queries terminate on a nesting cycle", async () => {
      await write((tx) => tx.groups.addMember("leaf", { groupId: "top" }));
      expect((await store.read.groups.containingGroups("leaf")).sort()).toEqual(["leaf", "mid", "top"]);
      expect((await store.read.groups.groupsOfUser("ann")).sort()).toEqual(["leaf", "mid", "top"]);
    });

    it("addMember returns the new row, or undefined when it already was a member", async () => {
      const added = await write((tx) => tx.groups.addMember("solo", { userId: "carl" }));
      expect(added).toMatchObject({ group_id: "solo", user_id: "carl", member_group_id: null, id: expect.any(Number) });
      expect(await write((tx) => tx.groups.addMember("solo", { userId: "carl" }))).toBeUndefined();
      expect(await write((tx) => tx.groups.addMember("top", { groupId: "mid" }))).toBeUndefined();
      expect(await store.read.groups.listMembers("solo")).toEqual([added]);
    });

    it("a group cannot contain itself", async () => {
      await expect(write((tx) => tx.groups.addMember("solo", { groupId: "solo" }))).rejects.toMatchObject({ code: "23514" });
    });

    it("removeMember returns the removed row, and undefined the second time", async () => {
      expect(await write((tx) => tx.groups.removeMember("mid", { groupId: "leaf" }))).toMatchObject({ group_id: "mid", member_group_id: "leaf" });
      expect(await write((tx) => tx.groups.removeMember("mid", { groupId: "leaf" }))).toBeUndefined();
      expect(await write((tx) => tx.groups.removeMember("mid", { userId: "bob" }))).toMatchObject({ user_id: "bob" });
      expect(await store.read.groups.groupsOfUser("ann")).toEqual(["leaf"]);
      expect(await store.read.groups.listMembers("mid")).toEqual([]);
    });

    it("lists an organization's groups by id", async () => {
      const page = await store.read.groups.list("acme", { limit: 3 });
      expect(page.items.map((g) => g.id)).toEqual(["leaf", "mid", "solo"]);
      expect(page.next).toBe("solo");
      expect((await store.read.groups.getMany(["top", "nope"])).map((g) => g.id)).toEqual(["top"]);
    });
  });

  describe("workspaces", () => {
    // root > emea > de
    beforeEach(async () => {
      await addUsers(["ann", "ann@acme.com", "Ann"]);
      await write(async (tx) => {
        await tx.organizations.insert({ id: "acme", name: "Acme" });
        await tx.groups.insert({ id: "staff", organization_id: "acme", name: "Staff" });
        await tx.workspaces.insert({ id: "root", organization_id: "acme", name: "Root" });
        await tx.workspaces.insert({ id: "emea", organization_id: "acme", parent_id: "root", name: "EMEA" });
        await tx.workspaces.insert({ id: "de", organization_id: "acme", parent_id: "emea", name: "DE" });
      });
    });

    it("insert keeps the closure: a workspace gets a row for each workspace above it, with its depth", async () => {
      const made = await write((tx) => tx.workspaces.insert({ id: "berlin", organization_id: "acme", parent_id: "de", name: "Berlin" }));
      expect(made.workspace).toMatchObject({ id: "berlin", parent_id: "de" });
      expect(made.ancestors.map((a) => [a.workspace_id, a.ancestor_id, a.depth]).sort()).toEqual([
        ["berlin", "de", 1],
        ["berlin", "emea", 2],
        ["berlin", "root", 3],
      ]);
      const root = await write((tx) => tx.workspaces.insert({ id: "apac", organization_id: "acme", name: "APAC" }));
      expect(root.ancestors).toEqual([]);
      const all = await store.transaction((tx) => tx.all("workspace_ancestors"));
      expect(all.map((a) => `${a.workspace_id}<${a.ancestor_id}:${a.depth}`).sort()).toEqual(["berlin<de:1", "berlin<emea:2", "berlin<root:3", "de<emea:1", "de<root:2", "emea<root:1"]);
    });

    it("ancestry is the workspace and its ancestors, nearest first", async () => {
      const ancestry = await store.read.workspaces.ancestry("de");
      expect(ancestry.map((w) => [w.id, w.parent_id])).toEqual([
        ["de", "emea"],
        ["emea", "root"],
        ["root", null],
      ]);
      expect(ancestry[0]).toEqual(await store.read.workspaces.get("de"));
      expect((await store.read.workspaces.ancestry("root")).map((w) => w.id)).toEqual(["root"]);
      expect(await store.read.workspaces.ancestry("nope")).toEqual([]);
    });

    it("setAccess inserts a row (no before), then updates the same row (before and after)", async () => {
      const inserted = await write((tx) => tx.workspaces.setAccess("emea", "level", { userId: "ann" }, "view"));
      expect(inserted.before).toBeUndefined();
      expect(inserted.after).toMatchObject({ workspace_id: "emea", kind: "level", level: "view", user_id: "ann", group_id: null });

      const updated = await write((tx) => tx.workspaces.setAccess("emea", "level", { userId: "ann" }, "analyze"));
      expect(updated.before).toEqual(inserted.after);
      expect(updated.after).toEqual({ ...inserted.after, level: "analyze" });

      expect(await store.read.workspaces.listAccess("emea")).toEqual([updated.after]);
    });

    it("keeps one row per kind and subject", async () => {
      await write(async (tx) => {
        await tx.workspaces.setAccess("emea", "level", { groupId: "staff" }, "manage");
        await tx.workspaces.setAccess("emea", "guest", { groupId: "staff" }, null);
        await tx.workspaces.setAccess("emea", "see", { userId: "ann" }, null);
        await tx.workspaces.setAccess("emea", "see", { userId: "ann" }, null);
      });
      expect((await store.read.workspaces.listAccess("emea")).map((a) => [a.kind, a.level, a.user_id ?? a.group_id])).toEqual([
        ["level", "manage", "staff"],
        ["guest", null, "staff"],
        ["see", null, "ann"],
      ]);
    });

    it("removeAccess returns the removed row, and undefined when there was none", async () => {
      const { after } = await write((tx) => tx.workspaces.setAccess("root", "guest", { groupId: "staff" }, null));

      expect(await write((tx) => tx.workspaces.removeAccess("root", "level", { groupId: "staff" }))).toBeUndefined();
      expect(await write((tx) => tx.workspaces.removeAccess("root", "guest", { groupId: "staff" }))).toEqual(after);
      expect(await write((tx) => tx.workspaces.removeAccess("root", "guest", { groupId: "staff" }))).toBeUndefined();
      expect(await store.read.workspaces.listAccess("root")).toEqual([]);
    });

    it("lists an organization's workspaces by id", async () => {
      expect((await store.read.workspaces.list("acme", { limit: 10 })).items.map((w) => w.id)).toEqual(["de", "emea", "root"]);
      expect((await store.read.workspaces.getMany(["root", "nope"])).map((w) => w.id)).toEqual(["root"]);
    });
  });

  describe("entities", () => {
    beforeEach(async () => {
      await addUsers(["ann", "ann@acme.com", "Ann"], ["bob", "bob@acme.com", "Bob"], ["carl", "carl@acme.com", "Carl"]);
      await write(async (tx) => {
        await tx.organizations.insert({ id: "acme", name: "Acme" });
        await tx.organizations.insert({ id: "globex", name: "Globex" });
        await tx.entities.insert({ id: "sales", organization_id: "acme", name: "Sales" });
        await tx.entities.insert({ id: "support", organization_id: "acme", name: "Support" });
        await tx.entities.insert({ id: "ops", organization_id: "globex", name: "Ops" });
        await tx.entities.addMember("sales", "ann");
        await tx.entities.addMember("sales", "bob");
        await tx.entities.addMember("ops", "carl");
      });
    });

    it("lists an organization's entities with member counts", async () => {
      const { items } = await store.read.entities.list("acme", { limit: 10 });
      expect(items.map((e) => [e.id, e.name, e.member_count])).toEqual([
        ["sales", "Sales", 2],
        ["support", "Support", 0],
      ]);
    });

    it("adds a member once, tells membership, lists members as users, and removes them", async () => {
      expect(await write((tx) => tx.entities.addMember("support", "carl"))).toMatchObject({ entity_id: "support", user_id: "carl" });
      expect(await write((tx) => tx.entities.addMember("support", "carl"))).toBeUndefined();
      expect(await store.read.entities.isMember("support", "carl")).toBe(true);
      expect(await store.read.entities.isMember("support", "ann")).toBe(false);

      const first = await store.read.entities.listMembers("sales", { limit: 1 });
      expect(first.items).toEqual([await store.read.users.get("ann")]);
      expect(first.next).toBe("ann");
      const second = await store.read.entities.listMembers("sales", { limit: 1, after: first.next });
      expect(second.items.map((u) => u.id)).toEqual(["bob"]);
      expect(second.next).toBeUndefined();

      expect(await write((tx) => tx.entities.removeMember("sales", "ann"))).toMatchObject({ entity_id: "sales", user_id: "ann" });
      expect(await write((tx) => tx.entities.removeMember("sales", "ann"))).toBeUndefined();
      expect((await store.read.entities.list("acme", { limit: 10 })).items.map((e) => e.member_count)).toEqual([1, 1]);
    });
  });
});
