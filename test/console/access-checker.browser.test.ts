import type { Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ADMIN_KEY, CHECK_KEY, describeBrowser, screenshot, signIn, startConsole, type ConsoleUnderTest } from "./support/browser.js";

/*
 * Issue 11's Access checker, in Chromium, on the demo tenant: a denial with
 * what exists and what is missing (seed 003: bob views q3-revenue but has
 * only VIEW on workspace emea), an allow with its path (dave, through
 * emea-analysts ⊂ analysts, editors of folder sales), and a check-scope key
 * whose write buttons are disabled with the reason.
 */

async function ask(page: Page, subject: string, permission: string, type: string, id: string): Promise<void> {
  // Content is the console's first screen; the checker is one click away in the navigation.
  await page.getByRole("navigation", { name: "screens" }).getByRole("link", { name: "Access checker" }).click();
  await page.getByLabel("subject id").fill(subject);
  await page.getByLabel("permission").fill(permission);
  await page.getByLabel("resource type").selectOption(type);
  await page.getByLabel("resource id").fill(id);
  await page.getByRole("button", { name: "Check", exact: true }).click();
}

describeBrowser("console: Access checker (issue 11)", () => {
  let ui: ConsoleUnderTest;
  let page: Page;

  beforeAll(async () => {
    ui = await startConsole();
    page = await ui.newPage();
  });
  afterAll(async () => {
    await ui?.stop();
  });

  it("signs in with the demo admin key, acting as alice; the key stays in sessionStorage only", async () => {
    await page.goto(ui.url);
    await page.getByLabel("API key").fill(ADMIN_KEY);
    await page.getByRole("button", { name: "Continue" }).click();
    // The actor picker lists the demo's users through DirectoryService/ListUsers.
    await page.getByRole("button", { name: /alice Alice Admin/ }).click();
    await expect.poll(() => page.getByLabel("Act as (user id)").inputValue()).toBe("alice");
    await screenshot(page, "sign-in");
    await page.getByRole("button", { name: "Sign in as alice" }).click();
    await expect.poll(() => page.getByTestId("who").textContent()).toContain("acting as alice");
    expect(await page.getByTestId("who").textContent()).toContain("(admin)");
    // Evaluated in the page (a string: this file is type-checked without the DOM's names).
    const storage = await page.evaluate<{ session: string; local: number; cookie: string }>(
      "({ session: JSON.stringify(sessionStorage), local: localStorage.length, cookie: document.cookie })",
    );
    expect(storage.session).toContain(ADMIN_KEY);
    expect([storage.local, storage.cookie]).toEqual([0, ""]);
  });

  it("seed 003: a denial shows what exists and what is missing, with the troubleshooting advice", async () => {
    await ask(page, "bob", "edit", "dashboard", "q3-revenue");
    const decision = page.locator(".decision");
    await expect.poll(() => decision.getAttribute("data-decision")).toBe("DENIED");
    const missing = page.getByLabel("missing");
    await missing.waitFor();
    expect(await missing.textContent()).toMatch(/ANALYZE on workspace emea/);
    const partial = page.getByLabel("partial paths");
    expect(await partial.textContent()).toContain("user:bob");
    expect(await partial.textContent()).toContain("dashboard:q3-revenue");
    expect(await page.locator(".paragraph").textContent()).toContain("User bob cannot edit dashboard q3-revenue");
    expect(await page.getByLabel("troubleshooting").textContent()).toContain("Workspace.ANALYZE");
    // An admin key may write: the grant button is enabled.
    expect(await page.getByRole("button", { name: "Share" }).isEnabled()).toBe(true);
  });

  it("an allow shows the path from subject to resource", async () => {
    await ask(page, "dave", "edit", "dashboard", "q3-revenue");
    await expect.poll(() => page.locator(".decision").getAttribute("data-decision")).toBe("ALLOWED");
    const paths = page.getByLabel("granting paths");
    await paths.waitFor();
    const text = (await paths.textContent()) ?? "";
    for (const node of ["user:dave", "group:emea-analysts", "group:analysts", "folder:sales", "dashboard:q3-revenue"]) expect(text).toContain(node);
    await screenshot(page, "access-checker");
  });

  it("shows the server's own error message for a bad question", async () => {
    await ask(page, "bob", "fly", "dashboard", "q3-revenue");
    const error = page.getByRole("alert");
    await error.waitFor();
    expect(await error.textContent()).toMatch(/InvalidArgument/);
  });

  it("a denial can be fixed from the checker (Share as alice) and the re-check sees the grant", async () => {
    await ask(page, "bob", "view", "report", "pipeline");
    await expect.poll(() => page.locator(".decision").getAttribute("data-decision")).toBe("DENIED");
    await page.getByLabel("role").selectOption({ label: "viewer (View)" });
    await page.getByRole("button", { name: "Share" }).click();
    await expect.poll(() => page.locator(".decision").getAttribute("data-decision")).toBe("ALLOWED");
  });

  it("sign-out clears sessionStorage", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("API key").waitFor();
    expect(await page.evaluate<number>("sessionStorage.length")).toBe(0);
  });

  it("a check-scope key: every write button disabled, with the reason", async () => {
    const checker = await ui.newPage();
    await signIn(checker, ui, { key: CHECK_KEY, actor: "alice" });
    expect(await checker.getByTestId("who").textContent()).toContain("this key is check-scope: read only");
    await ask(checker, "carol", "view", "workbook", "budget");
    await expect.poll(() => checker.locator(".decision").getAttribute("data-decision")).toBe("DENIED");
    const share = checker.getByRole("button", { name: "Share" });
    await share.waitFor();
    expect(await share.isDisabled()).toBe(true);
    expect(await checker.locator(".grant .readonly-reason").textContent()).toBe("this key is check-scope: read only");
    await checker.context().close();
  });

  it("a wrong key is refused by the server, in its words", async () => {
    const wrong = await ui.newPage();
    await wrong.goto(ui.url);
    await wrong.getByLabel("API key").fill("not-a-key-0123456789");
    await wrong.getByRole("button", { name: "Continue" }).click();
    await wrong.getByRole("alert").waitFor();
    expect(await wrong.getByRole("alert").textContent()).toBe("Unauthenticated unknown API key");
    await wrong.context().close();
  });
});
