import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export interface FirstHourLine {
  /** bench/results/first-hour.json as bench/first-hour.ts wrote it. */
  readonly report?: unknown;
  /** Its table, without the title line. */
  readonly markdown: string;
  readonly error?: string;
}

/**
 * Issue 10's first-hour figures (install, first start, later starts) as a
 * line of `npm run bench`: bench/first-hour.ts in a process of its own (it
 * clones HEAD and runs npm there), its results read back.
 */
export function firstHourLine(progress: (line: string) => void): FirstHourLine {
  progress("first hour: npm install and npm start -- --demo in a fresh clone (bench/first-hour.ts)");
  const script = fileURLToPath(new URL("../first-hour.ts", import.meta.url));
  const run = spawnSync(process.execPath, ["--import", "tsx", script], { stdio: ["ignore", "ignore", "inherit"], env: process.env });
  if (run.status !== 0) return { markdown: "", error: `bench/first-hour.ts exited with ${run.status ?? run.signal}` };
  const results = new URL("../results/", import.meta.url);
  const md = readFileSync(new URL("first-hour.md", results), "utf8");
  return {
    report: JSON.parse(readFileSync(new URL("first-hour.json", results), "utf8")) as unknown,
    markdown: md.split("\n").filter((line) => !line.startsWith("# ")).join("\n").trim(),
  };
}
