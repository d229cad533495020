import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { describe } from "vitest";
import { loadDemo } from "../../../src/demo.js";
import { ADMIN_KEY, CHECK_KEY, PLATFORM_ADMIN, startTestServer, type TestServer } from "../../support/server.js";

/*
 * The console's browser tests (issue 11): a real sharegraph on a free port
 * with the demo tenant (PGlite, or TEST_DATABASE_URL's Postgres, like every
 * test server), the built console (the global setup test/console/support/
 * build-console.ts builds dist/console when stale), and the machine's
 * Chromium driven by playwright-core. One browser per test file; reuse
 * pages.
 *
 *   const ui = await startConsole();          // beforeAll
 *   const page = await ui.newPage();
 *   await signIn(page, ui, { key: ADMIN_KEY, actor: "alice" });
 *   await screenshot(page, "my-screen");     // docs/console/my-screen.png
 *   await ui.stop();                          // afterAll
 */

import { CHROMIUM_PATH, chromiumAvailable, SKIP_MESSAGE } from "./chromium.js";

export { ADMIN_KEY, CHECK_KEY };

export { CHROMIUM_PATH, chromiumAvailable };

/** describe, or describe.skip with a printed reason when there is no Chromium. */
export function describeBrowser(name: string, body: () => void): void {
  if (chromiumAvailable) {
    describe(name, body);
    return;
  }
  console.log(SKIP_MESSAGE);
  describe.skip(`${name} (${SKIP_MESSAGE})`, body);
}

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const SCREENSHOT_DIR = join(ROOT, "docs", "console");

export interface ConsoleUnderTest {
  readonly server: TestServer;
  readonly browser: Browser;
  /** http://127.0.0.1:<port>/console/ */
  readonly url: string;
  /** A page in a fresh context (its own sessionStorage), 1280×800. */
  newPage(): Promise<Page>;
  stop(): Promise<void>;
}

/** A demo-tenant server (keys ADMIN_KEY and CHECK_KEY, any actor) and a Chromium. */
export async function startConsole(): Promise<ConsoleUnderTest> {
  const server = await startTestServer({ overrides: { afterIndexReady: (domain, log) => loadDemo(domain, log, PLATFORM_ADMIN) } });
  let browser: Browser;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
  } catch (err) {
    await server.stop();
    throw err;
  }
  const url = `${server.baseUrl}/console/`;
  return {
    server,
    browser,
    url,
    async newPage() {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      // Whatever the page logs as an error shows in the test output (CSP violations among them).
      page.on("console", (m) => {
        if (m.type() === "error") console.error(`[browser] ${m.text()}`);
      });
      page.on("pageerror", (e) => console.error(`[browser] ${e.message}`));
      return page;
    },
    async stop() {
      await browser.close().catch(() => {});
      await server.stop();
    },
  };
}

/** Opens the console, pastes the key, picks the actor (typed), and waits for the shell. */
export async function signIn(page: Page, ui: ConsoleUnderTest, { key, actor }: { key: string; actor: string }): Promise<void> {
  await page.goto(ui.url);
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Continue" }).click();
  await page.getByLabel("Act as (user id)").fill(actor);
  await page.getByRole("button", { name: `Sign in as ${actor}` }).click();
  await page.getByTestId("who").waitFor();
}

/** Writes docs/console/<name>.png (the README links them). */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  // Focus rings, hover and a blinking caret would make the same screen differ from run to run.
  await page.evaluate("document.activeElement?.blur?.()");
  await page.mouse.move(0, 0);
  await page.screenshot({ path, fullPage: true, animations: "disabled", caret: "hide" });
  return path;
}
