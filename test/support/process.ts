import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { dropSchema } from "../../src/store/connect.js";
import { TEST_DATABASE_URL } from "./database.js";

/*
 * sharegraph as its own process — `node --import tsx src/main.ts`, exactly
 * what `npm run dev` runs (or `node dist/main.js`, what `npm start` runs) —
 * for tests about signals, exit codes and the build. Its JSON
 * log lines are collected; the port comes from its "serving" line.
 */

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly baseUrl: string;
  /** Every JSON log line so far. */
  readonly lines: Array<Record<string, unknown>>;
  /** Resolves with the first line (past or future) matching. */
  line(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Kills it if still running and removes its data. */
  dispose(): Promise<void>;
}

/**
 * Starts the server with `env` on a free port, with a fresh data directory
 * (PGlite), or a fresh schema of TEST_DATABASE_URL (through `databaseUrl`
 * when given, e.g. a proxy in front of it).
 */
export async function spawnServer(
  env: Record<string, string>,
  options: {
    databaseUrl?: (schemaUrl: string) => string;
    /** Run the build (`node dist/main.js`, as `npm start`) instead of the source. */
    dist?: boolean;
    /** Command-line arguments (e.g. --demo). */
    args?: readonly string[];
  } = {},
): Promise<ServerProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), "sharegraph-process-"));
  let schema: string | undefined;
  const database: Record<string, string> = {};
  if (TEST_DATABASE_URL) {
    schema = `p_${Math.random().toString(16).slice(2, 10)}`;
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    await client.query(`create schema ${schema}`);
    await client.end();
    const url = new URL(TEST_DATABASE_URL);
    url.searchParams.set("options", `-c search_path=${schema}`);
    database["DATABASE_URL"] = options.databaseUrl ? options.databaseUrl(url.toString()) : url.toString();
  }
  const child = spawn(process.execPath, [...(options.dist ? ["dist/main.js"] : ["--import", "tsx", "src/main.ts"]), ...(options.args ?? [])], {
    cwd: ROOT,
    env: {
      PATH: process.env["PATH"] ?? "",
      SHAREGRAPH_ADDR: "127.0.0.1:0",
      SHAREGRAPH_DATA_DIR: dataDir,
      LOG_LEVEL: "info",
      SHAREGRAPH_PLATFORM_ADMINS: "admin",
      ...database,
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<{ match: (line: Record<string, unknown>) => boolean; resolve: (line: Record<string, unknown>) => void }> = [];
  let buffer = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    buffer += chunk.toString("utf8");
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const text = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        continue;
      }
      lines.push(line);
      for (const w of waiters.splice(0)) {
        if (w.match(line)) w.resolve(line);
        else waiters.push(w);
      }
    }
  });
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const line = (match: (line: Record<string, unknown>) => boolean) => {
    const seen = lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise<Record<string, unknown>>((resolve) => waiters.push({ match, resolve }));
  };
  const dispose = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
    await rm(dataDir, { recursive: true, force: true });
    if (schema && TEST_DATABASE_URL) await dropSchema(TEST_DATABASE_URL, schema).catch(() => {});
  };
  const serving = await Promise.race([
    line((l) => l["msg"] === "serving"),
    exited.then(({ code }) => {
      throw new Error(`sharegraph exited (${code}) before serving:\n${stderr}\n${lines.map((l) => JSON.stringify(l)).join("\n")}`);
    }),
  ]);
  const port = Number(String(serving["address"]).split(":").at(-1));
  return { child, port, baseUrl: `http://127.0.0.1:${port}`, lines, line, exited, dispose };
}

/**
 * A TCP proxy to `target` that can freeze: from then on it forwards nothing
 * in either direction and accepts new connections without ever answering —
 * a dependency that stops answering without closing anything.
 */
export class FreezableProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #frozen = false;

  private constructor(server: net.Server) {
    this.#server = server;
  }

  static async start(target: { host: string; port: number }): Promise<FreezableProxy> {
    const holder: { proxy?: FreezableProxy } = {};
    const server = net.createServer((client) => {
      const proxy = holder.proxy!;
      proxy.#sockets.add(client);
      client.on("error", () => {});
      client.once("close", () => proxy.#sockets.delete(client));
      if (proxy.#frozen) {
        client.pause();
        return;
      }
      const upstream = net.connect(target.port, target.host);
      proxy.#sockets.add(upstream);
      upstream.on("error", () => client.destroy());
      upstream.once("close", () => proxy.#sockets.delete(upstream));
      client.on("data", (d: Buffer) => void (proxy.#frozen || upstream.write(d)));
      upstream.on("data", (d: Buffer) => void (proxy.#frozen || client.write(d)));
      client.once("close", () => upstream.destroy());
      upstream.once("close", () => client.destroy());
    });
    const proxy = new FreezableProxy(server);
    holder.proxy = proxy;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  freeze(): void {
    this.#frozen = true;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
