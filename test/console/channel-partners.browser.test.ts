import type { Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ADMIN_KEY, CHECK_KEY, describeBrowser, screenshot, signIn, startConsole, type ConsoleUnderTest } from "./support/browser.js";

/*
 * Issue 11's Channel partners screen [004], in Chromium, on the demo tenant
 * with the README's two Northwind users (nina, nate) and an organization
 * that is not a channel partner (globex, its user gus): carol (a member of
 * acme) adds nina by email and nate from the organization's user list, and
 * the "Added users" column counts them (R21); the server's refusals (R20)
 * show in the sidebar in its words; "Edit partner access" takes nina off
 * (and her access ends); Remove asks "Yes, remove access"; a check-scope key
 * cannot write.
 */

const row = (page: Page, org: string) => page.locator("tr[data-partner]", { hasText: org });
const addedUsers = (page: Page, org: string) => row(page, org).locator('[data-col="added-users"]').textContent();

async function openScreen(page: Page): Promise<void> {
  await page.getByRole("link", { name: "Channel partners" }).click();
  await expect.poll(() => page.getByLabel("Customer organization").inputValue()).toBe("acme");
}

async function addByEmail(page: Page, email: string): Promise<void> {
  await page.getByRole("button", { name: "Add", exact: true }).click();
  const sidebar = page.getByRole("dialog", { name: "Add a Partner" });
  await sidebar.getByRole("radio", { name: "Select an individual user" }).check();
  await sidebar.getByLabel("Partner's email address").fill(email);
  await sidebar.getByRole("button", { name: "Add", exact: true }).click();
}

async function viewsInsights(ui: ConsoleUnderTest, user: string): Promise<boolean> {
  const r = await ui.server.clients().permission.checkPermission({
    resource: { type: "organization", id: "acme" },
    permission: "view_insights",
    subject: { type: "user", id: user },
    consistency: { requirement: { case: "fullyConsistent", value: true } },
  });
  return r.allowed;
}

describeBrowser("console: Channel partners (issue 11, seed 004)", () => {
  let ui: ConsoleUnderTest;
  let page: Page;

  beforeAll(async () => {
    ui = await startConsole();
    const { directory } = ui.server.clients();
    for (const [userId, email, displayName] of [
      ["nina", "nina@northwind.example", "Nina (Northwind)"],
      ["nate", "nate@northwind.example", "Nate (Northwind)"],
      ["gus", "gus@globex.example", "Gus (Globex)"],
    ] as const) {
      await directory.createUser({ actor: "admin", userId, email, displayName });
    }
    await directory.addOrganizationMember({ actor: "erin", organizationId: "northwind", userId: "nina" });
    await directory.addOrganizationMember({ actor: "erin", organizationId: "northwind", userId: "nate" });
    await directory.createOrganization({ actor: "admin", organizationId: "globex", name: "Globex", channelPartner: false, adminUserIds: ["gus"] });
    page = await ui.newPage();
  });
  afterAll(async () => {
    await ui?.stop();
  });

  it("carol (a member of acme) adds an individual user by email: Northwind appears with 1 added user", async () => {
    await signIn(page, ui, { key: ADMIN_KEY, actor: "carol" });
    await openScreen(page);
    await page.getByText("No partners yet").waitFor();
    await addByEmail(page, "nina@northwind.example");
    const confirmation = page.getByTestId("confirmation");
    await confirmation.waitFor();
    expect(await confirmation.textContent()).toBe("Added nina: Northwind Partners now has 1 added user.");
    await row(page, "Northwind Partners").waitFor();
    expect(await addedUsers(page, "Northwind Partners")).toBe("1");
    expect(await page.getByRole("dialog", { name: "Add a Partner" }).count()).toBe(0);
    expect(await viewsInsights(ui, "nina")).toBe(true);
  });

  it("R20: the server's refusals show in the sidebar, in its words", async () => {
    // A user of an organization that is not classified as a channel partner.
    await addByEmail(page, "gus@globex.example");
    const sidebar = page.getByRole("dialog", { name: "Add a Partner" });
    const error = sidebar.getByRole("alert");
    await error.waitFor();
    expect(await error.textContent()).toBe(
      "FailedPrecondition gus@globex.example (user gus) does not belong to any organization classified as a channel partner; only users of channel-partner organizations can be added: check the address, or ask the platform to classify their organization (DirectoryService.SetChannelPartner)",
    );
    // A member of the customer itself.
    await sidebar.getByLabel("Partner's email address").fill("bob@acme.example");
    await sidebar.getByRole("button", { name: "Add", exact: true }).click();
    await expect.poll(() => error.textContent()).toContain("FailedPrecondition bob@acme.example (user bob) is a member of organization acme; partners are people outside it");
    // An address of no user.
    await sidebar.getByLabel("Partner's email address").fill("nobody@northwind.example");
    await sidebar.getByRole("button", { name: "Add", exact: true }).click();
    await expect.poll(() => error.textContent()).toContain("FailedPrecondition nobody@northwind.example is not the address of an active user");
    expect(await addedUsers(page, "Northwind Partners")).toBe("1");
    await sidebar.getByRole("button", { name: "Close" }).click();
  });

  it("Select existing partner organization → Next → its users: adding nate raises the count to 2 (R21)", async () => {
    await page.getByRole("button", { name: "Add", exact: true }).click();
    const sidebar = page.getByRole("dialog", { name: "Add a Partner" });
    await sidebar.getByRole("radio", { name: "Select existing partner organization" }).check();
    // Only channel-partner organizations are offered: Globex is not.
    await sidebar.getByLabel("Search partner organizations to add").fill("");
    const orgs = sidebar.getByRole("list", { name: "channel-partner organizations" });
    await orgs.getByRole("button", { name: /Northwind Partners/ }).waitFor();
    expect(await orgs.getByRole("button", { name: /Globex/ }).count()).toBe(0);
    expect(await sidebar.getByRole("button", { name: "Next", exact: true }).isDisabled()).toBe(true);
    await orgs.getByRole("button", { name: /Northwind Partners/ }).click();
    await sidebar.getByRole("button", { name: "Next", exact: true }).click();
    const nina = sidebar.getByRole("checkbox", { name: /Nina/ });
    await nina.waitFor();
    // nina was added before: checked, and stays.
    expect([await nina.isChecked(), await nina.isDisabled()]).toEqual([true, true]);
    await sidebar.getByRole("checkbox", { name: /Nate/ }).check();
    expect(await sidebar.getByRole("checkbox", { name: /Erin/ }).isChecked()).toBe(false);
    await screenshot(page, "channel-partners-add");
    await sidebar.getByRole("button", { name: "Add", exact: true }).click();
    await page.getByTestId("confirmation").waitFor();
    expect(await page.getByTestId("confirmation").textContent()).toBe("Added nate: Northwind Partners now has 2 added users.");
    await expect.poll(() => addedUsers(page, "Northwind Partners")).toBe("2");
    expect(await page.locator("tr[data-partner]").count()).toBe(1);
  });

  it("search finds partner organizations by name", async () => {
    await page.getByLabel("Search partner organizations", { exact: true }).fill("zzz");
    await page.getByText("No partner organization matches.").waitFor();
    await page.getByLabel("Search partner organizations", { exact: true }).fill("north");
    await row(page, "Northwind Partners").waitFor();
    // The row's actions open, for the picture.
    await page.getByRole("button", { name: "Actions for Northwind Partners" }).click();
    await page.getByRole("menuitem", { name: "Edit partner access" }).waitFor();
    await screenshot(page, "channel-partners");
    await page.getByRole("button", { name: "Actions for Northwind Partners" }).click();
    await expect.poll(() => page.getByRole("menuitem").count()).toBe(0);
  });

  it("Edit partner access: unchecking nina and saving ends her access; the count drops", async () => {
    await page.getByRole("button", { name: "Actions for Northwind Partners" }).click();
    await page.getByRole("menuitem", { name: "Edit partner access" }).click();
    const sidebar = page.getByRole("dialog", { name: "Edit partner access" });
    const nina = sidebar.getByRole("checkbox", { name: /Nina/ });
    await nina.waitFor();
    expect([await nina.isChecked(), await sidebar.getByRole("checkbox", { name: /Nate/ }).isChecked(), await sidebar.getByRole("checkbox", { name: /Erin/ }).isChecked()]).toEqual([
      true,
      true,
      false,
    ]);
    await nina.uncheck();
    await sidebar.getByRole("button", { name: "Save" }).click();
    await page.getByTestId("confirmation").waitFor();
    expect(await page.getByTestId("confirmation").textContent()).toBe("Saved partner access for Northwind Partners: removed nina; 1 added user.");
    await expect.poll(() => addedUsers(page, "Northwind Partners")).toBe("1");
    expect(await viewsInsights(ui, "nina")).toBe(false);
    expect(await viewsInsights(ui, "nate")).toBe(true);
  });

  it("Remove partner access asks first; Yes, remove access removes the row and the access", async () => {
    await page.getByRole("button", { name: "Actions for Northwind Partners" }).click();
    await page.getByRole("menuitem", { name: "Remove partner access" }).click();
    const dialog = page.getByRole("alertdialog", { name: "Remove partner access" });
    expect(await dialog.textContent()).toContain("Remove partner access for Northwind Partners? Its 1 added user will no longer see your insights.");
    await dialog.getByRole("button", { name: "Cancel" }).click();
    expect(await row(page, "Northwind Partners").count()).toBe(1);

    await page.getByRole("button", { name: "Actions for Northwind Partners" }).click();
    await page.getByRole("menuitem", { name: "Remove partner access" }).click();
    await page.getByRole("button", { name: "Yes, remove access" }).click();
    await page.getByTestId("confirmation").waitFor();
    expect(await page.getByTestId("confirmation").textContent()).toBe("Removed partner access for Northwind Partners (1 user).");
    await expect.poll(() => row(page, "Northwind Partners").count()).toBe(0);
    expect(await viewsInsights(ui, "nate")).toBe(false);
  });

  it("the customer picker offers only organizations the actor may add partners to (a member of northwind: northwind)", async () => {
    const other = await ui.newPage();
    await signIn(other, ui, { key: ADMIN_KEY, actor: "nina" });
    await other.getByRole("link", { name: "Channel partners" }).click();
    await expect.poll(() => other.getByLabel("Customer organization").inputValue()).toBe("northwind");
    expect(await other.getByLabel("Customer organization").locator("option").allTextContents()).toEqual(["Northwind Partners (northwind)"]);
    await other.context().close();
  });

  it("a check-scope key: the table reads, Add is disabled with the reason", async () => {
    await ui.server.clients().partner.addChannelPartnerUsers({ actor: "carol", customerOrganizationId: "acme", email: "nate@northwind.example" });
    const checker = await ui.newPage();
    await signIn(checker, ui, { key: CHECK_KEY, actor: "carol" });
    await openScreen(checker);
    await row(checker, "Northwind Partners").waitFor();
    expect(await checker.getByRole("button", { name: "Add", exact: true }).isDisabled()).toBe(true);
    expect(await checker.locator(".partners-bar .readonly-reason").textContent()).toBe("this key is check-scope: read only");
    await checker.getByRole("button", { name: "Actions for Northwind Partners" }).click();
    await checker.getByRole("menuitem", { name: "Remove partner access" }).click();
    expect(await checker.getByRole("button", { name: "Yes, remove access" }).isDisabled()).toBe(true);
    await checker.context().close();
  });
});
