import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";

/** Another live process holds the data directory. */
export class DataDirInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(
      `the data directory ${dataDir} is already in use by process ${pid} (another sharegraph?): stop it, or give this one another SHAREGRAPH_DATA_DIR`,
    );
    this.name = "DataDirInUseError";
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function holder(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, "utf8").trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * An exclusive lock on the embedded default's data directory: a `lock` file
 * holding this process's id, created exclusively. PGlite cannot share its
 * files between processes (a second one aborts with a bare `Aborted()`), so
 * a second server on the same directory is refused by name first. A lock
 * left by a process that no longer runs (killed) is taken over. Returns the
 * release function.
 */
export function lockDataDir(dataDir: string): () => void {
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "lock");
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, "wx", 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const pid = holder(file);
      if (pid !== undefined && pid !== process.pid && alive(pid)) throw new DataDirInUseError(dir, pid);
      // Stale (its process is gone) or half-written: take it over.
      try {
        unlinkSync(file);
      } catch {
        // Someone else took it over first; try again.
      }
      continue;
    }
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    return () => {
      try {
        if (holder(file) === process.pid) unlinkSync(file);
      } catch {
        // Already gone.
      }
    };
  }
  const pid = holder(file);
  throw pid !== undefined ? new DataDirInUseError(dir, pid) : new Error(`could not lock the data directory ${dir}`);
}
