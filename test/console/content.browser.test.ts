import type { Locator, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ADMIN_KEY, CHECK_KEY, describeBrowser, screenshot, signIn, startConsole, type ConsoleUnderTest } from "./support/browser.js";

/*
 * Issue 11's Content screen, in Chromium, on the demo tenant (src/demo.ts):
 * workspace EMEA with folder Sales (dashboard q3-revenue, report pipeline;
 * group analysts are its editors; bob views q3-revenue), folder Finance
 * (workbook budget, alice's alone) and carol's private draft at the root.
 * Alice is the admin of acme (MANAGE on everything), bob has VIEW on EMEA,
 * carol is an analyst (ANALYZE on EMEA, editor through Sales).
 */

const texts = async (l: Locator): Promise<string[]> => (await l.allTextContents()).map((t) => t.trim());

async function openFolder(page: Page, name: string): Promise<void> {
  await page.getByTestId("content-listing").getByRole("button", { name, exact: true }).click();
  await page.getByRole("navigation", { name: "folder path" }).getByRole("button", { name, exact: true }).waitFor();
}

async function openShare(page: Page, itemName: string): Promise<Locator> {
  await page.getByRole("button", { name: `Share ${itemName}`, exact: true }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  await dialog.getByTestId("share-level").waitFor();
  await dialog.getByRole("table", { name: "who has access" }).waitFor();
  return dialog;
}

async function closeShare(page: Page): Promise<void> {
  await page.getByRole("dialog").getByRole("button", { name: "Close" }).click();
  await page.getByRole("dialog").waitFor({ state: "detached" });
}

async function share(dialog: Locator, kind: "user" | "group", id: string, role: string): Promise<void> {
  await dialog.getByLabel("share with", { exact: true }).selectOption(kind);
  await dialog.getByLabel("user or group id").fill(id);
  await dialog.getByLabel("access role").selectOption({ label: role });
  await dialog.getByRole("button", { name: "Share", exact: true }).click();
}

/** A page that fails a wait after 10 s rather than Playwright's 30. */
async function newPage(ui: ConsoleUnderTest): Promise<Page> {
  const page = await ui.newPage();
  page.setDefaultTimeout(10_000);
  return page;
}

/** The names listed in the current folder (folders and items). */
async function listed(page: Page): Promise<string[]> {
  const table = page.getByRole("table", { name: "folders and items" });
  await table.waitFor();
  return texts(table.locator("tbody tr td:first-child"));
}

describeBrowser("console: Content and the Share dialog (issue 11, seeds 001 and 003)", () => {
  let ui: ConsoleUnderTest;
  let page: Page;

  beforeAll(async () => {
    ui = await startConsole();
    page = await newPage(ui);
    await signIn(page, ui, { key: ADMIN_KEY, actor: "alice" });
  });
  afterAll(async () => {
    await ui?.stop();
  });

  it("is the first screen; alice sees every workspace of acme and everything in EMEA (MANAGE)", async () => {
    expect(await page.getByRole("navigation", { name: "screens" }).getByRole("link").first().textContent()).toBe("Content");
    await page.getByRole("heading", { name: "Content" }).waitFor();
    const workspaces = page.getByRole("navigation", { name: "workspaces" });
    await workspaces.getByRole("button", { name: /EMEA Sales/ }).waitFor();
    expect(await texts(workspaces.getByRole("button"))).toEqual(["EMEA", "EMEA Sales in emea"]);
    expect(await workspaces.getByRole("button", { name: "EMEA", exact: true }).getAttribute("aria-current")).toBe("true");
    expect(await listed(page)).toEqual(["▸ Finance", "▸ Sales", "Carol's draft"]);
    expect(await texts(page.getByTestId("folder:sales").locator("td"))).toEqual(["▸ Sales", "folder", "viewable", "", "Share"]);
    await openFolder(page, "Sales");
    await expect.poll(() => listed(page)).toEqual(["Pipeline", "Q3 revenue"]);
    expect(await texts(page.getByTestId("dashboard:q3-revenue").locator("td"))).toEqual(["Q3 revenue", "dashboard", "viewable", "alice", "Share"]);
    await screenshot(page, "content");
  });

  it("Share dialog: lists who has access with the source ListShares reports; the role picker goes up to alice's level (manager)", async () => {
    const dialog = await openShare(page, "Q3 revenue");
    expect(await dialog.getByTestId("share-level").textContent()).toContain("Your level: manager");
    expect(await texts(dialog.getByLabel("access role").locator("option"))).toEqual(["Viewer (View)", "Sharer (View & Share)", "Editor (Edit & Share)", "Manager"]);
    const bob = dialog.getByTestId("share:user bob");
    expect(await bob.getAttribute("data-source")).toBe("DIRECT");
    expect(await bob.textContent()).toContain("direct");
    const analysts = dialog.getByTestId("share:group analysts");
    expect(await analysts.getAttribute("data-source")).toBe("FOLDER");
    expect(await texts(analysts.locator("td"))).toEqual(["group analysts", "editor", 'inherited from folder "Sales"', "alice", ""]);
    // alice three times: manager as the dashboard's creator (direct), as the folder's creator, and as acme's admin.
    const alice = dialog.locator('[data-testid="share:user alice"]');
    expect(await alice.evaluateAll((rows) => rows.map((r) => r.getAttribute("data-source")))).toEqual(["DIRECT", "FOLDER", "WORKSPACE"]);
    expect(await texts(alice.nth(2).locator("td"))).toEqual(["user alice", "manager", 'admin of organization "Acme Corp"', "", ""]);
    // An inherited share is changed where it comes from: no controls on its row.
    expect(await analysts.getByRole("button").count()).toBe(0);
    expect(await bob.getByRole("button", { name: "Remove user bob" }).isEnabled()).toBe(true);
  });

  it("R2: a role lower than the one granted on an ancestor folder is refused, with the server's message naming the folder, inline", async () => {
    const dialog = page.getByRole("dialog");
    await share(dialog, "group", "analysts", "Viewer (View)");
    const error = dialog.getByRole("alert");
    await error.waitFor();
    const text = (await error.textContent()) ?? "";
    expect(text).toContain("FailedPrecondition");
    expect(text).toContain('group analysts inherits editor on dashboard q3-revenue ("Q3 revenue") from folder sales ("Sales")');
    expect(text).toContain("cannot be less permissive than the inherited one (R2)");
    // Nothing changed: analysts are still listed only as inherited.
    expect(await dialog.getByTestId("share:group analysts").count()).toBe(1);
    await screenshot(page, "share-dialog");
  });

  it("R6: a user with no permission on the workspace is not eligible, in the server's words", async () => {
    const dialog = page.getByRole("dialog");
    await share(dialog, "user", "erin", "Viewer (View)");
    await expect.poll(() => dialog.getByRole("alert").textContent()).toContain('user erin has no permission on workspace emea ("EMEA")');
    expect(await dialog.getByRole("alert").textContent()).toContain("FailedPrecondition");
    expect(await dialog.getByTestId("share:user erin").count()).toBe(0);
  });

  it("seed 001: the organization's default role is set in the dialog, listed as the organization default, and removed", async () => {
    const dialog = page.getByRole("dialog");
    const org = dialog.getByRole("form", { name: "organization default role" });
    expect(await org.textContent()).toContain("Organization Acme Corp");
    await org.getByLabel("organization role").selectOption({ label: "Viewer (View)" });
    await org.getByRole("button", { name: "Set" }).click();
    const acme = dialog.getByTestId("share:organization acme");
    await acme.waitFor();
    expect(await acme.getAttribute("data-source")).toBe("DIRECT");
    expect(await texts(acme.locator("td:nth-child(3)"))).toEqual(["organization default, on this item"]);
    await expect.poll(() => org.getByRole("button", { name: "Set" }).isDisabled()).toBe(true);
    await org.getByLabel("organization role").selectOption({ label: "No access" });
    await org.getByRole("button", { name: "Set" }).click();
    await expect.poll(() => dialog.getByTestId("share:organization acme").count()).toBe(0);
    await closeShare(page);
  });

  it("shares Pipeline with bob (new grantee listed, source direct, granted by alice), changes his role, removes it", async () => {
    let dialog = await openShare(page, "Pipeline");
    expect(await dialog.getByTestId("share:user bob").count()).toBe(0);
    await share(dialog, "user", "bob", "Viewer (View)");
    await expect.poll(() => dialog.getByTestId("share-result").textContent()).toBe("shared with user bob as viewer");
    const bob = dialog.getByTestId("share:user bob");
    await bob.waitFor();
    expect(await bob.getAttribute("data-source")).toBe("DIRECT");
    expect(await texts(bob.locator("td"))).toEqual(["user bob", "Viewer (View)Sharer (View & Share)Editor (Edit & Share)Manager", "direct", "alice", "ChangeRemove"]);
    expect(await bob.getByLabel("role of user bob").inputValue()).toBe("1");

    // Change: viewer → sharer, then the dialog reads it back from ListShares.
    await bob.getByLabel("role of user bob").selectOption({ label: "Sharer (View & Share)" });
    await bob.getByRole("button", { name: "Change user bob" }).click();
    await expect.poll(() => bob.getByRole("button", { name: "Change user bob" }).isDisabled()).toBe(true);
    await closeShare(page);
    dialog = await openShare(page, "Pipeline");
    expect(await dialog.getByTestId("share:user bob").getByLabel("role of user bob").inputValue()).toBe("2");

    // R2 on a change too: carol inherits editor from Sales (group analysts); a direct manager grant is above it,
    // lowering it to viewer is refused in her row, in the server's words.
    await share(dialog, "user", "carol", "Manager");
    const carol = dialog.getByTestId("share:user carol");
    await carol.waitFor();
    await carol.getByLabel("role of user carol").selectOption({ label: "Viewer (View)" });
    await carol.getByRole("button", { name: "Change user carol" }).click();
    const refusal = dialog.getByRole("alert");
    await refusal.waitFor();
    expect(await refusal.textContent()).toContain('user carol inherits editor on report pipeline ("Pipeline") from folder sales ("Sales")');
    await carol.getByRole("button", { name: "Remove user carol" }).click();
    await expect.poll(() => dialog.getByTestId("share:user carol").count()).toBe(0);

    // Remove: the row goes.
    await dialog.getByRole("button", { name: "Remove user bob" }).click();
    await expect.poll(() => dialog.getByTestId("share:user bob").count()).toBe(0);
    await closeShare(page);
  });

  it("R4: the Private tab lists alice's items that nobody else has (Budget 2027 in Finance), not the shared ones", async () => {
    await page.getByRole("tab", { name: "Private" }).click();
    const table = page.getByRole("table", { name: "private items" });
    await table.waitFor();
    await expect.poll(() => table.getByTestId("workbook:budget").textContent()).toBe("Budget 2027workbookEMEAFinanceShare");
    expect(await table.locator("tbody tr").count()).toBe(1);
    await screenshot(page, "private-items");
    await page.getByRole("tab", { name: "All content" }).click();
  });

  it("R5: carol (editor through Sales, ANALYZE on EMEA) may share up to editor, and sees her private draft", async () => {
    const carol = await newPage(ui);
    await signIn(carol, ui, { key: ADMIN_KEY, actor: "carol" });
    // Her own draft at the root (she created it: manager), Sales (an editor through analysts); not Finance.
    expect(await listed(carol)).toEqual(["▸ Sales", "Carol's draft"]);
    await openFolder(carol, "Sales");
    await expect.poll(() => listed(carol)).toEqual(["Pipeline", "Q3 revenue"]);
    const dialog = await openShare(carol, "Pipeline");
    expect(await dialog.getByTestId("share-level").textContent()).toContain("Your level: editor");
    expect(await texts(dialog.getByLabel("access role").locator("option"))).toEqual(["Viewer (View)", "Sharer (View & Share)", "Editor (Edit & Share)"]);
    await closeShare(carol);
    await carol.getByRole("tab", { name: "Private" }).click();
    await carol.getByRole("table", { name: "private items" }).getByTestId("dashboard:carol-draft").waitFor();
    await carol.context().close();
  });

  it("R3: bob sees less — Sales by name only, with only q3-revenue inside; no Finance, no draft; he may not share", async () => {
    const bob = await newPage(ui);
    await signIn(bob, ui, { key: ADMIN_KEY, actor: "bob" });
    expect(await listed(bob)).toEqual(["▸ Sales"]);
    expect(await bob.getByTestId("folder:sales").textContent()).toContain("name only: something inside is viewable");
    await openFolder(bob, "Sales");
    await expect.poll(() => listed(bob)).toEqual(["Q3 revenue"]);
    expect(await bob.getByTestId("content-listing").textContent()).toContain("This folder is not shared with bob");
    const dialog = await openShare(bob, "Q3 revenue");
    expect(await dialog.getByTestId("share-level").textContent()).toBe("bob may not share this dashboard: sharing needs at least the sharer role on it");
    expect(await dialog.getByRole("button", { name: "Share", exact: true }).isDisabled()).toBe(true);
    expect(await dialog.getByRole("button", { name: "Remove user bob" }).isDisabled()).toBe(true);
    expect(await dialog.getByLabel("access role").isDisabled()).toBe(true);
    await closeShare(bob);
    await bob.getByRole("tab", { name: "Private" }).click();
    await expect.poll(() => bob.getByTestId("private-items").textContent()).toContain("bob has no private items.");
    await bob.context().close();
  });

  it("a check-scope key: Content is readable, every share control disabled with the reason", async () => {
    const checker = await newPage(ui);
    await signIn(checker, ui, { key: CHECK_KEY, actor: "alice" });
    await openFolder(checker, "Sales");
    const dialog = await openShare(checker, "Q3 revenue");
    expect(await dialog.getByTestId("share-level").textContent()).toContain("Your level: manager");
    for (const name of ["Share", "Set", "Remove user bob"]) {
      expect(await dialog.getByRole("button", { name, exact: true }).isDisabled(), name).toBe(true);
    }
    expect(await dialog.getByLabel("user or group id").isDisabled()).toBe(true);
    expect(await dialog.getByLabel("access role").isDisabled()).toBe(true);
    expect(await dialog.getByTestId("share-readonly").textContent()).toBe("Sharing, changing and removing are off: this key is check-scope: read only");
    expect(await dialog.getByRole("button", { name: "Share", exact: true }).getAttribute("title")).toBe("this key is check-scope: read only");
    await checker.context().close();
  });

  it("pages the workspaces with the lookup's cursor (20 a page)", async () => {
    const { directory } = ui.server.clients();
    for (let i = 1; i <= 21; i++) {
      const id = `zz-${String(i).padStart(2, "0")}`;
      await directory.createWorkspace({ actor: "alice", organizationId: "acme", workspaceId: id, name: `Region ${id}` });
    }
    const alice = await newPage(ui);
    await signIn(alice, ui, { key: ADMIN_KEY, actor: "alice" });
    const workspaces = alice.getByRole("navigation", { name: "workspaces" });
    await workspaces.getByRole("button", { name: "Region zz-18" }).waitFor();
    const names = () => texts(workspaces.locator("li button"));
    expect(await names()).toHaveLength(20);
    expect((await names()).slice(0, 2)).toEqual(["EMEA", "EMEA Sales in emea"]);
    await workspaces.getByRole("button", { name: "Next →" }).click();
    await expect.poll(names).toEqual(["Region zz-19", "Region zz-20", "Region zz-21"]);
    expect(await workspaces.getByRole("button", { name: "Next →" }).isDisabled()).toBe(true);
    await workspaces.getByRole("button", { name: "← Previous" }).click();
    await expect.poll(() => names().then((n) => n.length)).toBe(20);
    await alice.context().close();
  });
});
