import { spawn, type ChildProcess } from "node:child_process";
import { openSync, closeSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { freePort } from "../../src/engine/spicedb-process.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface BenchServer {
  readonly child: ChildProcess;
  readonly port: number;
  readonly baseUrl: string;
  /** Where its log (JSON lines, stdout and stderr) goes. */
  readonly logFile: string;
  /** From spawn to the "serving" log line. */
  readonly startMs: number;
  logLines(): string[];
  /** Resident memory (MB) of the gateway and, separately, of its child processes (a supervised SpiceDB). */
  rss(): { gatewayMb: number; childrenMb: number };
  stop(): Promise<void>;
}

/**
 * BENCH_SERVER_<NAME>=value sets <NAME> for every bench server, e.g.
 * BENCH_SERVER_LOG_LEVEL=warn (the API logs every call at info by default),
 * or BENCH_SERVER_DATABASE_QUERY_TIMEOUT_MS. (Node's own flags that NODE_OPTIONS
 * refuses, such as --cpu-prof, go in BENCH_NODE_ARGS.)
 */
export function serverSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env)
      .filter((e): e is [string, string] => e[0].startsWith("BENCH_SERVER_") && e[1] !== undefined)
      .map(([k, v]) => [k.slice("BENCH_SERVER_".length), v]),
  );
}

/**
 * sharegraph as deployed: `node --import tsx src/main.ts` in a process of its
 * own, configured only by the environment, logging to a file (the API logs
 * every call at info, as it does by default). Resolves once /healthz says SERVING.
 */
export async function startServer(env: Record<string, string>, logFile: string, startTimeoutMs = 1_800_000): Promise<BenchServer> {
  const port = await freePort();
  const fd = openSync(logFile, "w");
  const started = performance.now();
  // e.g. BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof": a V8 profile of each bench server.
  const nodeArgs = (process.env["BENCH_NODE_ARGS"] ?? "").split(" ").filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", "src/main.ts"], {
    cwd: ROOT,
    env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", LOG_LEVEL: "info", ...env, SHAREGRAPH_ADDR: `127.0.0.1:${port}` },
    stdio: ["ignore", fd, fd],
  });
  closeSync(fd);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      exited = { code, signal };
      resolve();
    }),
  );
  const lines = () => readFileSync(logFile, "utf8").split("\n").filter(Boolean);
  for (;;) {
    if (exited) throw new Error(`the server exited (${exited.code ?? exited.signal}) before serving:\n${lines().slice(-20).join("\n")}`);
    if (performance.now() - started > startTimeoutMs) {
      child.kill("SIGKILL");
      throw new Error(`the server did not start in ${startTimeoutMs} ms:\n${lines().slice(-20).join("\n")}`);
    }
    const healthy = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (healthy) break;
    await sleep(200);
  }
  const startMs = Math.round(performance.now() - started);
  return {
    child,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    logFile,
    startMs,
    logLines: lines,
    rss: () => ({ gatewayMb: rssMb(child.pid!), childrenMb: childPids(child.pid!).reduce((sum, pid) => sum + rssMb(pid), 0) }),
    stop: async () => {
      if (exited) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      await exit;
      clearTimeout(timer);
    },
  };
}

/** VmRSS of a process in MB (0 when it is gone). */
export function rssMb(pid: number): number {
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb ? Math.round(Number(kb) / 1024) : 0;
  } catch {
    return 0;
  }
}

/** Every descendant process id (Linux /proc). */
export function childPids(pid: number): number[] {
  let direct: number[] = [];
  try {
    direct = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
  return direct.flatMap((c) => [c, ...childPids(c)]);
}
