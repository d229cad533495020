import type { Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ADMIN_KEY, CHECK_KEY, describeBrowser, screenshot, signIn, startConsole, type ConsoleUnderTest } from "./support/browser.js";

/*
 * Issue 11's Partner accounts screen (seed 002, R30–R33, R40), in Chromium.
 * The demo tenant has no service relationship, so the README's setup is done
 * here through the API: FinCo (admin pete) shares two accounts with ShopCo's
 * entity retail-emea (users uma and una; eve is ShopCo's admin), and PayCorp
 * one more. eve opens the Service, selects accounts, adds and removes users
 * and sees "Current access", the assigned users and the confirmation banner
 * change; refusals (a user who left the entity, an actor who is not an admin
 * of ShopCo) show the server's words; a check-scope key cannot write; an
 * account the provider takes out of the Service leaves the screen with its
 * assignments (R33).
 */

const SERVICE = "Card processing";

async function setUp(ui: ConsoleUnderTest): Promise<void> {
  const { directory, serviceRelationship } = ui.server.clients();
  const users = [
    ["pete", "pete@finco.example", "Pete Provider"],
    ["eve", "eve@shopco.example", "Eve Admin"],
    ["uma", "uma@shopco.example", "Uma Retail"],
    ["una", "una@shopco.example", "Una Retail"],
  ] as const;
  for (const [userId, email, displayName] of users) await directory.createUser({ actor: "admin", userId, email, displayName });
  await directory.createOrganization({ actor: "admin", organizationId: "finco", name: "FinCo", adminUserIds: ["pete"] });
  await directory.createOrganization({ actor: "admin", organizationId: "paycorp", name: "PayCorp", adminUserIds: ["pete"] });
  await directory.createOrganization({ actor: "admin", organizationId: "shopco", name: "ShopCo", adminUserIds: ["eve"] });
  for (const userId of ["uma", "una"]) await directory.addOrganizationMember({ actor: "eve", organizationId: "shopco", userId });
  await directory.createEntity({ actor: "eve", organizationId: "shopco", entityId: "retail-emea", name: "Retail EMEA" });
  for (const userId of ["uma", "una"]) await directory.addEntityMember({ actor: "eve", entityId: "retail-emea", userId });
  await serviceRelationship.createService({
    actor: "pete",
    serviceId: "cards",
    name: SERVICE,
    providerOrganizationId: "finco",
    consumerEntityId: "retail-emea",
    accounts: [
      { accountId: "acct-1", name: "Operating" },
      { accountId: "acct-2", name: "Payroll" },
    ],
  });
  await serviceRelationship.createService({
    actor: "pete",
    serviceId: "payouts",
    name: "Marketplace payouts",
    providerOrganizationId: "paycorp",
    consumerEntityId: "retail-emea",
    accounts: [{ accountId: "pay-1", name: "Payouts EUR" }],
  });
}

async function openService(page: Page): Promise<void> {
  await page.getByRole("link", { name: "Partner accounts" }).click();
  await page.getByRole("button", { name: SERVICE }).click();
  await page.getByRole("table", { name: "Accounts" }).waitFor();
}

/** Checks exactly these accounts (by name) in the Service's details. */
async function selectAccounts(page: Page, names: readonly string[]): Promise<void> {
  for (const name of ["Operating", "Payroll"]) await page.getByLabel(`Select account ${name}`).setChecked(names.includes(name));
}

/** The users listed (ids) and their "Current access", once the list shows (not the previous one's rows while loading). */
async function listed(page: Page): Promise<Record<string, string>> {
  const table = page.locator('table[aria-label="Users"]:not([aria-busy="true"])');
  await table.waitFor();
  const rows = await table.locator("tbody tr[data-user]").all();
  const out: Record<string, string> = {};
  for (const row of rows) out[(await row.getAttribute("data-user")) ?? "?"] = (await row.locator("td.num").textContent()) ?? "";
  return out;
}

async function openList(page: Page, button: "Add user" | "Remove user"): Promise<void> {
  await page.getByRole("button", { name: button, exact: true }).click();
  await page.getByLabel(`${button} list`).waitFor();
  await page.getByRole("table", { name: "Users" }).waitFor();
}

async function assigned(page: Page, accountId: string): Promise<string> {
  return (await page.getByTestId(`assigned-${accountId}`).textContent()) ?? "";
}

describeBrowser("console: Partner accounts (issue 11, seed 002)", () => {
  let ui: ConsoleUnderTest;
  let page: Page;

  beforeAll(async () => {
    ui = await startConsole();
    await setUp(ui);
    page = await ui.newPage();
    await signIn(page, ui, { key: ADMIN_KEY, actor: "eve" });
  });
  afterAll(async () => {
    await ui?.stop();
  });

  it("R30: the Services available to ShopCo, with the partner organisation and the number of accounts", async () => {
    await page.getByRole("link", { name: "Partner accounts" }).click();
    const org = page.getByLabel("Your organisation");
    await expect.poll(() => org.inputValue()).toBe("shopco");
    const table = page.getByRole("table", { name: "Services" });
    await expect.poll(() => table.locator("tbody tr").count()).toBe(2);
    const rows = await table.locator("tbody tr").allInnerTexts();
    expect(rows.map((r) => r.split("\t").map((c) => c.trim()))).toEqual([
      [SERVICE, "FinCo", "Retail EMEA", "2"],
      ["Marketplace payouts", "PayCorp", "Retail EMEA", "1"],
    ]);
    // Search by service or partner organisation name.
    await page.getByLabel("Search services").fill("paycorp");
    await expect.poll(() => table.locator("tbody tr").allInnerTexts()).toEqual([expect.stringContaining("Marketplace payouts")]);
    await page.getByLabel("Search services").fill("");
    await expect.poll(() => table.locator("tbody tr").count()).toBe(2);
    await page.getByLabel("Search services").blur();
    await screenshot(page, "partner-accounts");
  });

  it("R30: a Service's details list its accounts and the users assigned to them", async () => {
    await openService(page);
    const details = page.getByLabel("Service details");
    expect(await details.locator(".pa-facts").innerText()).toMatch(/FinCo[\s\S]*Retail EMEA/);
    const rows = await page.getByRole("table", { name: "Accounts" }).locator("tbody tr").all();
    expect(await Promise.all(rows.map((r) => r.innerText()))).toEqual([expect.stringMatching(/^\s*Operating acct-1\s+nobody$/), expect.stringMatching(/^\s*Payroll acct-2\s+nobody$/)]);
    expect(await assigned(page, "acct-1")).toBe("nobody");
    expect(await assigned(page, "acct-2")).toBe("nobody");
    // Add user / Remove user need a selection.
    expect(await page.getByRole("button", { name: "Add user", exact: true }).isDisabled()).toBe(true);
  });

  it("R31/R32: Add user lists the entity's users with Current access; granting shows the banner and changes the lists", async () => {
    await selectAccounts(page, ["Operating", "Payroll"]);
    await openList(page, "Add user");
    expect(await listed(page)).toEqual({ uma: "0 of 2", una: "0 of 2" });
    // Search by name or email address.
    await page.getByLabel("Search users").fill("una@shopco");
    await page.getByRole("button", { name: "Search", exact: true }).click();
    await expect.poll(() => listed(page)).toEqual({ una: "0 of 2" });
    await page.getByLabel("Search users").fill("");
    await page.getByRole("button", { name: "Search", exact: true }).click();
    await expect.poll(() => listed(page)).toEqual({ uma: "0 of 2", una: "0 of 2" });

    await page.getByLabel("Select user uma").check();
    await page.getByRole("button", { name: "Grant access" }).click();
    const confirm = page.getByRole("dialog", { name: "Confirm your selection" });
    expect(await confirm.innerText()).toContain("Grant access for Uma Retail to Operating, Payroll, as eve?");
    await confirm.getByRole("button", { name: "Confirm: grant access" }).click();

    const banner = page.getByRole("status", { name: "confirmation" });
    await banner.waitFor();
    expect(await banner.innerText()).toContain("Access granted: Uma Retail assigned to Operating, Payroll (2 new assignments).");
    // uma now holds both selected accounts: no longer in the Add user list (R32); shown as assigned on both.
    await expect.poll(() => listed(page)).toEqual({ una: "0 of 2" });
    expect(await assigned(page, "acct-1")).toBe("Uma Retail");
    expect(await assigned(page, "acct-2")).toBe("Uma Retail");
    await openList(page, "Remove user");
    expect(await listed(page)).toEqual({ uma: "2 of 2" });
  });

  it("R32: a partial assignment counts in Current access, in both lists", async () => {
    await selectAccounts(page, ["Operating"]);
    await openList(page, "Add user");
    await expect.poll(() => listed(page)).toEqual({ una: "0 of 1" });
    await page.getByLabel("Select user una").check();
    await page.getByRole("button", { name: "Grant access" }).click();
    await page.getByRole("button", { name: "Confirm: grant access" }).click();
    await page.getByRole("status", { name: "confirmation" }).waitFor();
    expect(await assigned(page, "acct-1")).toBe("Uma RetailUna Retail");
    expect(await assigned(page, "acct-2")).toBe("Uma Retail");

    await selectAccounts(page, ["Operating", "Payroll"]);
    await expect.poll(() => listed(page)).toEqual({ una: "1 of 2" });
    await openList(page, "Remove user");
    await expect.poll(() => listed(page)).toEqual({ uma: "2 of 2", una: "1 of 2" });
  });

  it("R31: Remove user revokes from the selected accounts, and Current access changes back", async () => {
    await page.getByLabel("Select user uma").check();
    await page.getByRole("button", { name: "Revoke access" }).click();
    const confirm = page.getByRole("dialog", { name: "Confirm your selection" });
    expect(await confirm.innerText()).toContain("Revoke access for Uma Retail from Operating, Payroll, as eve?");
    await screenshot(page, "partner-accounts-service");
    await confirm.getByRole("button", { name: "Confirm: revoke access" }).click();
    const banner = page.getByRole("status", { name: "confirmation" });
    await banner.waitFor();
    expect(await banner.innerText()).toContain("Access updated: Uma Retail removed from Operating, Payroll (2 assignments removed).");
    await expect.poll(() => listed(page)).toEqual({ una: "1 of 2" });
    expect(await assigned(page, "acct-1")).toBe("Una Retail");
    expect(await assigned(page, "acct-2")).toBe("nobody");
    await openList(page, "Add user");
    await expect.poll(() => listed(page)).toEqual({ uma: "0 of 2", una: "1 of 2" });
  });

  it("R31: a user who left the entity meanwhile is refused by the server, in its words, and nothing is assigned", async () => {
    await page.getByLabel("Select user uma").check();
    await page.getByLabel("Select user una").check();
    // uma leaves retail-emea after the list was shown.
    const { directory } = ui.server.clients();
    await directory.removeEntityMember({ actor: "eve", entityId: "retail-emea", userId: "uma" });
    try {
      await page.getByRole("button", { name: "Grant access" }).click();
      await page.getByRole("button", { name: "Confirm: grant access" }).click();
      const error = page.getByLabel("Add user list").getByRole("alert");
      await error.waitFor();
      expect(await error.innerText()).toMatch(
        /^FailedPrecondition user uma is not a member of entity retail-emea \("Retail EMEA"\), the service's consumer; only its users can be assigned to partner accounts/,
      );
      expect(await page.getByRole("status", { name: "confirmation" }).count()).toBe(0);
      // Nothing was assigned, una included (one transaction).
      expect(await assigned(page, "acct-2")).toBe("nobody");
    } finally {
      await directory.addEntityMember({ actor: "eve", entityId: "retail-emea", userId: "uma" });
    }
  });

  it("R40: an actor who is not an admin of ShopCo sees the Service but the grant is refused inline", async () => {
    const member = await ui.newPage();
    await signIn(member, ui, { key: ADMIN_KEY, actor: "uma" });
    await openService(member);
    await selectAccounts(member, ["Payroll"]);
    await openList(member, "Add user");
    expect(await listed(member)).toEqual({ uma: "0 of 1", una: "0 of 1" });
    await member.getByLabel("Select user una").check();
    await member.getByRole("button", { name: "Grant access" }).click();
    await member.getByRole("button", { name: "Confirm: grant access" }).click();
    const error = member.getByRole("alert");
    await error.waitFor();
    expect(await error.innerText()).toMatch(/^PermissionDenied user uma may not assign users to the accounts of service cards: that needs manage on service cards/);
    expect(await assigned(member, "acct-2")).toBe("nobody");
    await member.context().close();
  });

  it("a check-scope key: the lists show, Grant access is disabled with the reason", async () => {
    const checker = await ui.newPage();
    await signIn(checker, ui, { key: CHECK_KEY, actor: "eve" });
    await openService(checker);
    await selectAccounts(checker, ["Operating"]);
    await openList(checker, "Add user");
    expect(await listed(checker)).toEqual({ uma: "0 of 1" });
    await checker.getByLabel("Select user uma").check();
    const grant = checker.getByRole("button", { name: "Grant access" });
    expect(await grant.isDisabled()).toBe(true);
    expect(await checker.getByLabel("Add user list").locator(".readonly-reason").innerText()).toBe("this key is check-scope: read only");
    await checker.context().close();
  });

  it("R33: when the provider removes an account from the Service, it leaves the details, its assignments with it", async () => {
    // una holds Operating (acct-1) now; pete (FinCo) keeps only Payroll in the Service.
    const { serviceRelationship } = ui.server.clients();
    const changed = await serviceRelationship.setServiceAccounts({ actor: "pete", serviceId: "cards", accounts: [{ accountId: "acct-2" }] });
    expect(changed.removedAssignments).toBe(1);
    await page.reload();
    const table = page.getByRole("table", { name: "Services" });
    await expect.poll(() => table.locator("tbody tr").first().innerText()).toMatch(/^Card processing\s+FinCo\s+Retail EMEA\s+1$/);
    await openService(page);
    const rows = page.getByRole("table", { name: "Accounts" }).locator("tbody tr");
    expect(await rows.allInnerTexts()).toEqual([expect.stringMatching(/^\s*Payroll acct-2\s+nobody$/)]);
    await page.getByLabel("Select account Payroll").check();
    await openList(page, "Remove user");
    expect(await listed(page)).toEqual({});
    expect(await page.getByRole("table", { name: "Users" }).innerText()).toContain("No user has access to any of the selected accounts.");
  });
});
