#!/usr/bin/env node
// The `sharegraph` command (package.json "bin"). In a checkout with the dev
// dependencies it runs the TypeScript source through tsx, so it is never
// stale; otherwise (an installed or deployed build) the compiled dist/.
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const source = `${root}src/cli/main.ts`;
const built = `${root}dist/cli/main.js`;

/** @returns {Promise<{ run: (argv: readonly string[]) => Promise<number> }>} */
async function load() {
  if (existsSync(source)) {
    try {
      const { register } = await import("tsx/esm/api");
      register();
      return await import(pathToFileURL(source).href);
    } catch (err) {
      if (!(err instanceof Error && "code" in err && err.code === "ERR_MODULE_NOT_FOUND")) throw err;
    }
  }
  if (existsSync(built)) return import(pathToFileURL(built).href);
  console.error("sharegraph: the command line is not built: run `npm run build` (or `npx tsx src/cli/main.ts …` in a checkout)");
  process.exit(2);
}

const { run } = await load();
process.exitCode = await run(process.argv.slice(2));
