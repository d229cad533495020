import type { Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ADMIN_KEY, CHECK_KEY, describeBrowser, screenshot, signIn, startConsole, type ConsoleUnderTest } from "./support/browser.js";

/*
 * Issue 11's Partner share access screen [000], in Chromium, on the demo
 * tenant: alice (admin of acme) invites a partner with a report and a board,
 * sees the invitation pending; the invitee accepts (through the API, with the
 * token the screen showed once) and the partner appears with its counts;
 * Manage shared reports changes the count; R11 refuses a second address of
 * the same private domain, in the server's words, while free-mail addresses
 * may be many; Remove partner asks first; a check-scope key cannot write.
 */

const row = (page: Page, org: string) => page.locator(`tr[data-partner]`, { hasText: org });
const pending = (page: Page, email: string) => page.locator(`tr[data-invitation="${email}"]`);

async function openScreen(page: Page): Promise<void> {
  await page.getByRole("link", { name: "Partner share access" }).click();
  await expect.poll(() => page.getByLabel("Your organization").inputValue()).toBe("acme");
}

async function invite(page: Page, email: string, items: readonly RegExp[]): Promise<void> {
  const form = page.getByRole("form", { name: "Add Partner" });
  if (!(await form.isVisible())) await page.getByRole("button", { name: "Add Partner" }).click();
  await form.getByLabel("Partner", { exact: true }).selectOption({ label: "A new partner (by email)" });
  await form.getByLabel("Partner's email address").fill(email);
  for (const name of items) await form.getByRole("checkbox", { name }).check();
  await form.getByRole("button", { name: "Send invitation" }).click();
}

describeBrowser("console: Partner share access (issue 11, seed 000)", () => {
  let ui: ConsoleUnderTest;
  let page: Page;

  beforeAll(async () => {
    ui = await startConsole();
    // A second report and a board in acme, for the picker and the counts.
    const { content } = ui.server.clients();
    await content.createContent({ actor: "alice", kind: "report", contentId: "campaign-q3", name: "Campaign Q3", workspaceId: "emea", folderId: "sales" });
    await content.createContent({ actor: "alice", kind: "board", contentId: "client-board", name: "Client board", workspaceId: "emea" });
    page = await ui.newPage();
  });
  afterAll(async () => {
    await ui?.stop();
  });

  it("lists acme's reports and boards in the picker and invites a partner: pending until accepted", async () => {
    await signIn(page, ui, { key: ADMIN_KEY, actor: "alice" });
    await openScreen(page);
    await page.getByText("No partner organizations yet").waitFor();
    await page.getByRole("button", { name: "Add Partner" }).click();
    const form = page.getByRole("form", { name: "Add Partner" });
    // The picker: acme's reports and boards, from every folder of its workspaces.
    for (const name of [/Pipeline/, /Campaign Q3/, /Client board/]) await form.getByRole("checkbox", { name }).waitFor();
    expect(await form.getByRole("checkbox").count()).toBe(3);
    await invite(page, "jordan@client.example", [/Pipeline/, /Client board/]);
    const outcome = form.getByTestId("invite-outcome");
    await outcome.waitFor();
    expect(await outcome.textContent()).toContain("Invitation sent to jordan@client.example: pending, with 2 item(s)");
    await pending(page, "jordan@client.example").waitFor();
    const cells = await pending(page, "jordan@client.example").locator("td").allTextContents();
    expect(cells.slice(0, 4)).toEqual(["jordan@client.example", "1 report, 1 board (client-board, pipeline)", "alice", "pending"]);
    // Not a partner until accepted.
    expect(await page.locator("tr[data-partner]").count()).toBe(0);
  });

  it("R11: a second address of the same private domain is refused, in the server's words; free-mail addresses may be many", async () => {
    await invite(page, "sam@eu.client.example", [/Campaign Q3/]);
    const error = page.getByRole("form", { name: "Add Partner" }).getByRole("alert");
    await error.waitFor();
    expect(await error.textContent()).toMatch(/^AlreadyExists organization acme already has a pending invitation for the email domain client\.example: jordan@client\.example/);
    expect(await pending(page, "sam@eu.client.example").count()).toBe(0);

    await invite(page, "pat.agency@gmail.com", [/Campaign Q3/]);
    await pending(page, "pat.agency@gmail.com").waitFor();
    await invite(page, "lee.agency@gmail.com", [/Client board/]);
    await pending(page, "lee.agency@gmail.com").waitFor();
    expect(await page.getByRole("form", { name: "Add Partner" }).getByRole("alert").count()).toBe(0);
  });

  it("once the invitee accepts (with the token shown once), the partner is listed with its counts", async () => {
    // The last invitation's token; jordan's was shown the same way. Accept lee's, as the invitee would from the mail.
    const token = (await page.getByTestId("invitation-token").textContent()) ?? "";
    expect(token.length).toBeGreaterThan(20);
    const { partner } = ui.server.clients();
    const accepted = await partner.acceptInvitation({ invitationToken: token, userId: "lee", displayName: "Lee", organizationName: "Lee Agency" });
    expect(accepted.partner?.organizationName).toBe("Lee Agency");
    await page.getByRole("button", { name: "Close" }).click();
    // The screen reads again on its next visit.
    await page.getByRole("link", { name: "Access checker" }).click();
    await openScreen(page);
    await row(page, "Lee Agency").waitFor();
    expect(await row(page, "Lee Agency").locator('[data-col="reports"]').textContent()).toBe("0");
    expect(await row(page, "Lee Agency").locator('[data-col="boards"]').textContent()).toBe("1");
    expect(await pending(page, "lee.agency@gmail.com").count()).toBe(0);
    await pending(page, "jordan@client.example").waitFor();
  });

  it("Manage shared reports: toggles show what is shared, and saving changes the count (boards stay)", async () => {
    await page.getByRole("button", { name: "Manage Lee Agency" }).click();
    await page.getByRole("menuitem", { name: "Manage shared reports" }).click();
    const panel = page.getByRole("form", { name: "Manage shared reports" });
    const pipeline = panel.getByRole("checkbox", { name: /Pipeline/ });
    await pipeline.waitFor();
    expect(await pipeline.isChecked()).toBe(false);
    await pipeline.check();
    await panel.getByRole("checkbox", { name: /Campaign Q3/ }).check();
    await panel.getByRole("button", { name: "Save" }).click();
    await panel.getByText("Saved: Lee Agency can now access 2 reports.").waitFor();
    await expect.poll(() => row(page, "Lee Agency").locator('[data-col="reports"]').textContent()).toBe("2");
    expect(await row(page, "Lee Agency").locator('[data-col="boards"]').textContent()).toBe("1");
    // The partner sees what was shared, at once.
    const check = await ui.server.clients().permission.checkPermission({
      resource: { type: "report", id: "campaign-q3" },
      permission: "view",
      subject: { type: "user", id: "lee" },
      consistency: { requirement: { case: "fullyConsistent", value: true } },
    });
    expect(check.allowed).toBe(true);

    // Manage shared boards: the board is checked; taking it off leaves the reports.
    await page.getByRole("button", { name: "Manage Lee Agency" }).click();
    await page.getByRole("menuitem", { name: "Manage shared boards" }).click();
    const boards = page.getByRole("form", { name: "Manage shared boards" });
    const board = boards.getByRole("checkbox", { name: /Client board/ });
    await board.waitFor();
    expect(await board.isChecked()).toBe(true);
    await screenshot(page, "partner-share-access");
    await board.uncheck();
    await boards.getByRole("button", { name: "Save" }).click();
    await expect.poll(() => row(page, "Lee Agency").locator('[data-col="boards"]').textContent()).toBe("0");
    expect(await row(page, "Lee Agency").locator('[data-col="reports"]').textContent()).toBe("2");
    await boards.getByRole("button", { name: "Close" }).click();
  });

  it("Add Partner for an existing partner shares more at once, without an invitation", async () => {
    await page.getByRole("button", { name: "Add Partner" }).click();
    const form = page.getByRole("form", { name: "Add Partner" });
    await form.getByLabel("Partner", { exact: true }).selectOption({ label: "Lee Agency" });
    expect(await form.getByLabel("Partner's email address").count()).toBe(0);
    await form.getByRole("checkbox", { name: /Client board/ }).check();
    await form.getByRole("button", { name: "Share", exact: true }).click();
    await expect.poll(() => form.getByTestId("invite-outcome").textContent()).toBe("Shared with Lee Agency at once: 2 report(s), 1 board(s) in all.");
    await expect.poll(() => row(page, "Lee Agency").locator('[data-col="boards"]').textContent()).toBe("1");
    await form.getByRole("button", { name: "Close" }).click();
  });

  it("search narrows partners and pending invitations", async () => {
    await page.getByLabel("Search partners").fill("gmail");
    await pending(page, "pat.agency@gmail.com").waitFor();
    await expect.poll(() => pending(page, "jordan@client.example").count()).toBe(0);
    await page.getByLabel("Search partners").fill("");
    await pending(page, "jordan@client.example").waitFor();
  });

  it("Remove partner asks for confirmation, then all its access ends", async () => {
    await page.getByRole("button", { name: "Manage Lee Agency" }).click();
    await page.getByRole("menuitem", { name: "Remove partner" }).click();
    const dialog = page.getByRole("alertdialog", { name: "Remove partner" });
    expect(await dialog.textContent()).toContain("Remove partner Lee Agency? Its access to 2 report(s) and 1 board(s) is revoked immediately.");
    await dialog.getByRole("button", { name: "Cancel" }).click();
    expect(await row(page, "Lee Agency").count()).toBe(1);

    await page.getByRole("button", { name: "Manage Lee Agency" }).click();
    await page.getByRole("menuitem", { name: "Remove partner" }).click();
    await page.getByRole("button", { name: "Yes, remove partner" }).click();
    await page.getByText("Removed Lee Agency: its members lost access").waitFor();
    await expect.poll(() => row(page, "Lee Agency").count()).toBe(0);
    const check = await ui.server.clients().permission.checkPermission({
      resource: { type: "report", id: "pipeline" },
      permission: "view",
      subject: { type: "user", id: "lee" },
      consistency: { requirement: { case: "fullyConsistent", value: true } },
    });
    expect(check.allowed).toBe(false);
  });

  it("revokes a pending invitation", async () => {
    await page.getByRole("button", { name: "Revoke invitation pat.agency@gmail.com" }).click();
    await expect.poll(() => pending(page, "pat.agency@gmail.com").count()).toBe(0);
  });

  it("a check-scope key: the screen reads, every write button disabled with the reason", async () => {
    const checker = await ui.newPage();
    await signIn(checker, ui, { key: CHECK_KEY, actor: "alice" });
    await openScreen(checker);
    await pending(checker, "jordan@client.example").waitFor();
    const add = checker.getByRole("button", { name: "Add Partner" });
    expect(await add.isDisabled()).toBe(true);
    expect(await checker.locator(".partners-bar .readonly-reason").textContent()).toBe("this key is check-scope: read only");
    expect(await checker.getByRole("button", { name: "Revoke invitation jordan@client.example" }).isDisabled()).toBe(true);
    await checker.context().close();
  });
});
