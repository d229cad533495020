// @ts-check
/**
 * `npm start`'s prestart: builds dist/ only when something it is built from
 * changed since the last build (a source file, a tsconfig, the lockfile), so
 * a later `npm start` does not wait for tsc. When it does build, tsc builds
 * incrementally (dist/.tsbuildinfo). Then the same for the admin console
 * (src/console and the generated clients it uses → dist/console, with
 * Vite). Plain JavaScript: it must run before anything is compiled.
 *
 * --force builds both; --console builds only the console (when stale, or
 * with --force too): the browser tests' global setup.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const STAMP = join(ROOT, "dist", ".build-stamp");
const INPUTS = ["src", "tsconfig.json", "tsconfig.build.json", "package-lock.json"];
const CONSOLE_DIR = join(ROOT, "src", "console");
const CONSOLE_STAMP = join(ROOT, "dist", "console", ".build-stamp");
const CONSOLE_INPUTS = ["src/console", "src/gen", "package-lock.json"];
const force = process.argv.includes("--force");

/**
 * The newest modification time under path (directories count too: a deleted file changes its directory's).
 * @param {string} path
 * @returns {number}
 */
function newest(path, skip = "") {
  if (path === skip) return 0;
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return 0;
  }
  let latest = stat.mtimeMs;
  if (stat.isDirectory()) for (const name of readdirSync(path)) latest = Math.max(latest, newest(join(path, name), skip));
  return latest;
}

/** @param {string} path */
function stampTime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

if (!process.argv.includes("--console")) {
  // The console is not part of the server's build (tsconfig.build.json leaves it out).
  const inputs = Math.max(...INPUTS.map((p) => newest(join(ROOT, p), CONSOLE_DIR)));
  if (force || stampTime(STAMP) < inputs) {
    const started = Date.now();
    process.stderr.write(`sharegraph: building dist/${force ? "" : " (sources changed since the last build)"} …\n`);
    const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
    const result = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: ROOT, stdio: "inherit" });
    if (result.status !== 0) process.exit(result.status ?? 1);
    writeFileSync(STAMP, `${new Date().toISOString()}\n`);
    process.stderr.write(`sharegraph: built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  }
}

const consoleInputs = Math.max(...CONSOLE_INPUTS.map((p) => newest(join(ROOT, p))));
if (force || stampTime(CONSOLE_STAMP) < consoleInputs) {
  const vite = join(ROOT, "node_modules", "vite", "bin", "vite.js");
  if (!existsSync(vite)) {
    // Installed without dev dependencies: the server still starts; /console/ answers 503 saying to build.
    process.stderr.write("sharegraph: not building the console (dist/console): vite is not installed (npm install installs it)\n");
  } else {
    const started = Date.now();
    process.stderr.write(`sharegraph: building the console (dist/console)${force ? "" : " (sources changed since the last build)"} …\n`);
    const result = spawnSync(process.execPath, [vite, "build", "--config", join(CONSOLE_DIR, "vite.config.ts")], { cwd: ROOT, stdio: "inherit" });
    if (result.status !== 0) process.exit(result.status ?? 1);
    writeFileSync(CONSOLE_STAMP, `${new Date().toISOString()}\n`);
    process.stderr.write(`sharegraph: console built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  }
}
