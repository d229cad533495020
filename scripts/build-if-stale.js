// @ts-check
/**
 * `npm start`'s prestart: builds dist/ only when something it is built from
 * changed since the last build (a source file, a tsconfig, the lockfile), so
 * a later `npm start` does not wait for tsc. When it does build, tsc builds
 * incrementally (dist/.tsbuildinfo). Plain JavaScript: it must run before
 * anything is compiled.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const STAMP = join(ROOT, "dist", ".build-stamp");
const INPUTS = ["src", "tsconfig.json", "tsconfig.build.json", "package-lock.json"];

/**
 * The newest modification time under path (directories count too: a deleted file changes its directory's).
 * @param {string} path
 * @returns {number}
 */
function newest(path) {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return 0;
  }
  let latest = stat.mtimeMs;
  if (stat.isDirectory()) for (const name of readdirSync(path)) latest = Math.max(latest, newest(join(path, name)));
  return latest;
}

function stampTime() {
  try {
    return statSync(STAMP).mtimeMs;
  } catch {
    return -1;
  }
}

const inputs = Math.max(...INPUTS.map((p) => newest(join(ROOT, p))));
if (process.argv.includes("--force") || stampTime() < inputs) {
  const started = Date.now();
  process.stderr.write(`sharegraph: building dist/${process.argv.includes("--force") ? "" : " (sources changed since the last build)"} …\n`);
  const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
  const result = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: ROOT, stdio: "inherit" });
  if (result.status !== 0) process.exit(result.status ?? 1);
  writeFileSync(STAMP, `${new Date().toISOString()}\n`);
  process.stderr.write(`sharegraph: built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}
