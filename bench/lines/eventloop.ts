import { existsSync, readFileSync, rmSync } from "node:fs";
import { loadavg } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { PermissionService } from "../../src/gen/sharegraph/v1/permission_service_pb.js";
import type { Dataset, SamplePair } from "../dataset.js";
import { round } from "../lib/load.js";
import { startServer, type BenchServer } from "../lib/server.js";
import { errorCode, metric, serviceClient } from "../lib/services.js";

/**
 * The event-loop line (issue 8: no engine call blocks the event loop for
 * more than 50 ms, measured with monitorEventLoopDelay during a 1,000-item
 * bulk check and during start-up). Two bulk checks per server: the first
 * in the process (its code not yet optimized), then one of 1,000 other
 * pairs, as a server that has been serving for a while sees it.
 *
 * Two instruments, side by side:
 *  - the server's own /metrics: prom-client's default metrics hold a
 *    monitorEventLoopDelay histogram (10 ms resolution) that is reset at
 *    every scrape (node_modules/prom-client/lib/metrics/eventLoopLag.js:
 *    collect() sets nodejs_eventloop_lag_{max,p99}_seconds, then
 *    histogram.reset()), so a scrape right before a call and one right
 *    after bracket it. It only exists once the server has called
 *    collectDefaultMetrics (App.start) and only answers once it listens:
 *    the start-up before that is invisible to it.
 *  - a probe preloaded into the server (bench/lib/eventloop-probe.mjs,
 *    NODE_OPTIONS=--import): the same kind of histogram from the process's
 *    first moment, bracketed by SIGUSR2 marks, plus a 250 ms timeline.
 * While the bulk call runs, /healthz is asked every 50 ms: its slowest
 * answer is what any other client would have waited.
 */

export interface LagWindow {
  /** Maximum event-loop delay in the window, ms (≈ the longest block). */
  readonly max_ms: number;
  readonly p99_ms: number;
  /** Samples (10 ms resolution) behind the figures. */
  readonly count?: number;
  /**
   * CPU time of the server's main thread in the window (probe only, 10 ms
   * ticks): a block that is work on the loop costs about its length in CPU;
   * a delay far above the CPU spent is the process waiting for a core.
   */
  readonly mainCpuMs?: number;
  /** CPU time of all the server's threads (an embedded engine works on threads of its own while the main thread waits for it). */
  readonly processCpuMs?: number;
  readonly wallMs?: number;
}

export interface BulkWindow {
  readonly items: number;
  readonly distinctSubjects: number;
  readonly ms: number;
  readonly allowed: number;
  readonly itemErrors: number;
  readonly error?: string;
  /** Scrape right before → scrape right after. */
  readonly metrics?: LagWindow;
  readonly probe?: LagWindow;
  readonly healthz: { readonly asked: number; readonly maxMs: number };
  /** The three longest delays of the 250 ms timeline during the call: ms after the call began, delay, CPU of the main thread and of the process in that tick. */
  readonly worstTicks: Array<{ atMs: number; max_ms: number; mainCpuMs: number; processCpuMs: number }>;
}

export interface EventLoopEngine {
  readonly engine: "spicedb" | "embedded";
  readonly datasetScale: number;
  readonly relationships: number;
  readonly startup: {
    readonly servingMs: number;
    /** Spawn → "serving", from the probe. */
    readonly probe?: LagWindow;
    /**
     * The three longest delays of the 250 ms timeline during start-up: when
     * the tick was written (ms after spawn), the delay, the main thread's CPU
     * in that tick, and the last log line before the delay began (the phase).
     */
    readonly worstTicks: Array<{ atMs: number; max_ms: number; mainCpuMs: number; after: string }>;
    /** From "listening" to "serving" (the server answering, NOT_SERVING, while its index is prepared), from the timeline; undefined when it does not listen first. */
    readonly whileListening?: { readonly ms: number; readonly max_ms: number };
    /** /metrics polled every 500 ms from "listening" to "serving" (empty: the server did not listen before it was ready). */
    readonly scrapes: Array<{ atMs: number } & LagWindow>;
  };
  /** The first bulk check in the process. */
  readonly bulk: BulkWindow;
  /** A second one, of other pairs (cold in SpiceDB and the decision cache; the gateway's code warm). */
  readonly bulkAgain?: BulkWindow;
  /** Settings given to this server beyond the dataset's (e.g. SPICEDB_TIMEOUT_MS). */
  readonly settings: Record<string, string>;
  readonly loadavg: { start: number[]; end: number[] };
  readonly logFile: string;
}

export interface EventLoopLine {
  readonly engines: EventLoopEngine[];
  /** The bound: no block longer than this. */
  readonly targetMaxMs: 50;
  readonly note: string;
}

const KEY = "bench-eventloop-key-0123456789abcdef";
const PROBE = fileURLToPath(new URL("../lib/eventloop-probe.mjs", import.meta.url));

interface ProbeLine {
  kind: "start" | "tick" | "mark";
  t: number;
  count?: number;
  max?: number;
  p99?: number;
  mainCpuMs?: number;
  processCpuMs?: number;
  /** Ticks only: how late the tick itself ran. */
  lateMs?: number;
}

/** A tick's delay: its histogram's max, or its own lateness when a reset made the histogram miss a block. */
const delay = (l: ProbeLine) => Math.max(l.max ?? 0, l.lateMs ?? 0);

export async function eventloopEngine(
  dataset: Dataset,
  engine: "spicedb" | "embedded",
  env: Record<string, string>,
  options: { logFile: string; probeFile: string; bulkItems: number; progress: (line: string) => void },
): Promise<EventLoopEngine> {
  const start = loadavg();
  rmSync(options.probeFile, { force: true });
  const probeLines = (): ProbeLine[] =>
    existsSync(options.probeFile)
      ? readFileSync(options.probeFile, "utf8")
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as ProbeLine)
      : [];
  const spawnedAt = Date.now();
  // /metrics during start-up: possible only once the server logs that it listens.
  const scrapes: EventLoopEngine["startup"]["scrapes"] = [];
  let started = false;
  const poller = (async () => {
    let base: string | undefined;
    while (!started) {
      if (!base && existsSync(options.logFile)) {
        const line = readFileSync(options.logFile, "utf8")
          .split("\n")
          .find((l) => l.includes('"msg":"listening'));
        const port = line && /"address":"[^"]*:(\d+)"/.exec(line)?.[1];
        if (port) base = `http://127.0.0.1:${port}`;
      }
      if (base) {
        const w = await scrape(base).catch(() => undefined);
        if (w && !started) scrapes.push({ atMs: Date.now() - spawnedAt, ...w });
      }
      await sleep(500);
    }
  })();
  let server: BenchServer;
  try {
    server = await startServer(
      {
        DATABASE_URL: dataset.databaseUrl,
        SHAREGRAPH_ENGINE: engine,
        SHAREGRAPH_API_KEYS: `${KEY}:check`,
        SHAREGRAPH_PLATFORM_ADMINS: dataset.platformAdmin,
        NODE_OPTIONS: `--import=${PROBE}`,
        BENCH_EVENTLOOP_FILE: options.probeFile,
        ...env,
      },
      options.logFile,
    );
  } finally {
    started = true;
    await poller;
  }
  try {
    const log = server
      .logLines()
      .filter((l) => !l.includes('"component":"api"'))
      .map((l) => ({ t: Number(/"time":(\d+)/.exec(l)?.[1]), msg: /"msg":"([^"]*)"/.exec(l)?.[1] ?? "" }));
    const servingAt = log.find((l) => l.msg === "serving")?.t ?? Date.now();
    const listeningAt = log.find((l) => l.msg.startsWith("listening"))?.t;
    const startupMark = await mark(server, probeLines);
    const ticks = probeLines().filter((l) => l.kind === "tick" && l.t <= servingAt + 250);
    const worstTicks = [...ticks]
      .sort((a, b) => delay(b) - delay(a))
      .slice(0, 3)
      .map((t) => ({
        atMs: t.t - spawnedAt,
        max_ms: delay(t),
        mainCpuMs: t.mainCpuMs ?? Number.NaN,
        after: log.filter((l) => l.t <= t.t - delay(t)).at(-1)?.msg ?? "(before the first log line)",
      }));
    const listeningTicks = listeningAt === undefined ? [] : ticks.filter((t) => t.t > listeningAt);
    const whileListening = listeningAt === undefined ? undefined : { ms: servingAt - listeningAt, max_ms: Math.max(0, ...listeningTicks.map(delay)) };
    options.progress(`eventloop (${engine}): serving after ${((servingAt - spawnedAt) / 1000).toFixed(1)} s; start-up max delay ${startupMark?.max_ms} ms (probe), ${scrapes.length} scrapes while starting`);

    // The bulk checks: distinct subjects where the sample allows. The first in this
    // process (its code not yet optimized by the JIT), then 1,000 other pairs (new to
    // SpiceDB and to the decision cache, the gateway's code warm), as a server that has
    // been serving for a while would see them.
    const [items, again] = pickBulks(dataset.sample, options.bulkItems);
    const client = serviceClient(PermissionService, server.baseUrl, KEY);
    await client.checkPermission({ resource: items[0]!.resource, permission: "view", subject: { type: "user", id: items[0]!.userId, relation: "" } }); // the connection, warmed
    const bulkWindow = async (pairs: readonly SamplePair[], label: string): Promise<BulkWindow> => {
      let healthzRunning = true;
      const health = { asked: 0, maxMs: 0 };
      const healthz = (async () => {
        while (healthzRunning) {
          const t = performance.now();
          await fetch(`${server.baseUrl}/healthz`).then((r) => r.text()).catch(() => "");
          health.asked++;
          health.maxMs = Math.max(health.maxMs, performance.now() - t);
          await sleep(50);
        }
      })();
      await scrape(server.baseUrl);
      await mark(server, probeLines);
      const calledAt = Date.now();
      const t = performance.now();
      let allowed = 0;
      let itemErrors = 0;
      let error: string | undefined;
      try {
        const r = await client.checkBulkPermissions(
          { items: pairs.map((p) => ({ resource: p.resource, permission: p.permission, subject: { type: "user", id: p.userId, relation: "" } })) },
          { timeoutMs: 600_000 },
        );
        allowed = r.results.filter((x) => x.allowed).length;
        itemErrors = r.results.filter((x) => x.error).length;
      } catch (err) {
        error = `${errorCode(err)}: ${err instanceof Error ? err.message : String(err)}`;
      }
      const ms = round(performance.now() - t);
      const probe = await mark(server, probeLines);
      const worstTicks = probeLines()
        .filter((l) => l.kind === "tick" && l.t > calledAt && l.t <= calledAt + ms + 300)
        .sort((a, b) => delay(b) - delay(a))
        .slice(0, 3)
        .map((l) => ({ atMs: l.t - calledAt, max_ms: delay(l), mainCpuMs: l.mainCpuMs ?? Number.NaN, processCpuMs: l.processCpuMs ?? Number.NaN }));
      const metrics = await scrape(server.baseUrl).catch(() => undefined);
      healthzRunning = false;
      await healthz;
      options.progress(`eventloop (${engine}): ${label} bulk of ${pairs.length} in ${ms} ms; max delay ${metrics?.max_ms} ms (/metrics), ${probe?.max_ms} ms (probe); /healthz slowest ${round(health.maxMs)} ms`);
      return {
        items: pairs.length,
        distinctSubjects: new Set(pairs.map((i) => i.userId)).size,
        ms,
        allowed,
        itemErrors,
        ...(error ? { error } : {}),
        ...(metrics ? { metrics } : {}),
        ...(probe ? { probe } : {}),
        healthz: { asked: health.asked, maxMs: round(health.maxMs) },
        worstTicks,
      };
    };
    const bulk = await bulkWindow(items, "first");
    const bulkAgain = again.length > 0 ? await bulkWindow(again, "second") : undefined;
    return {
      engine,
      datasetScale: dataset.scale,
      relationships: dataset.counts.relationships,
      startup: { servingMs: servingAt - spawnedAt, ...(startupMark ? { probe: startupMark } : {}), worstTicks, ...(whileListening ? { whileListening } : {}), scrapes },
      bulk,
      ...(bulkAgain ? { bulkAgain } : {}),
      settings: Object.fromEntries(Object.entries(env).filter(([k]) => k !== "SPICEDB_BINARY")),
      loadavg: { start, end: loadavg() },
      logFile: server.logFile,
    };
  } finally {
    await server.stop();
  }
}

/** GET /metrics: the event-loop delay since the previous scrape (prom-client resets its histogram at each). */
async function scrape(baseUrl: string): Promise<LagWindow | undefined> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const max = metric(text, "nodejs_eventloop_lag_max_seconds");
  const p99 = metric(text, "nodejs_eventloop_lag_p99_seconds");
  return max === undefined || p99 === undefined ? undefined : { max_ms: round(max * 1000), p99_ms: round(p99 * 1000) };
}

/** SIGUSR2 to the server: the probe writes the delay since its previous mark; waits for that line. */
async function mark(server: BenchServer, lines: () => ProbeLine[]): Promise<LagWindow | undefined> {
  // Without the probe, SIGUSR2 would end the process (its default action).
  if (!lines().some((l) => l.kind === "start")) return undefined;
  const before = lines().filter((l) => l.kind === "mark").length;
  server.child.kill("SIGUSR2");
  for (let i = 0; i < 600; i++) {
    const marks = lines().filter((l) => l.kind === "mark");
    if (marks.length > before) {
      const m = marks.at(-1)!;
      const previous = marks.at(-2)?.t ?? lines().find((l) => l.kind === "start")?.t ?? m.t;
      return { max_ms: m.max ?? Number.NaN, p99_ms: m.p99 ?? Number.NaN, ...(m.count !== undefined ? { count: m.count } : {}), mainCpuMs: m.mainCpuMs ?? Number.NaN, processCpuMs: m.processCpuMs ?? Number.NaN, wallMs: m.t - previous };
    }
    await sleep(50);
  }
  return undefined;
}

/**
 * Two sets of `n` pairs from the end of the sample (the part the check lines
 * reach last), one per user while users last, the second disjoint from the first.
 */
function pickBulks(sample: readonly SamplePair[], n: number): [SamplePair[], SamplePair[]] {
  const first = pickBulk(sample, n);
  const taken = new Set(first);
  return [first, pickBulk(sample.filter((p) => !taken.has(p)), n)];
}

/** `n` pairs from the end of the sample (the part the check lines reach last), one per user while users last. */
function pickBulk(sample: readonly SamplePair[], n: number): SamplePair[] {
  const seen = new Set<string>();
  const out: SamplePair[] = [];
  const rest: SamplePair[] = [];
  for (let i = sample.length - 1; i >= 0 && out.length < n; i--) {
    const p = sample[i]!;
    if (seen.has(p.userId)) rest.push(p);
    else {
      seen.add(p.userId);
      out.push(p);
    }
  }
  return [...out, ...rest].slice(0, n);
}

export async function eventloopLine(
  runs: ReadonlyArray<{ dataset: Dataset; engine: "spicedb" | "embedded"; env: Record<string, string> }>,
  options: { logFile: (label: string) => string; bulkItems: number; progress: (line: string) => void },
): Promise<EventLoopLine> {
  const engines: EventLoopEngine[] = [];
  for (const r of runs) {
    const label = `eventloop-${r.engine}-${r.dataset.scale}`;
    engines.push(await eventloopEngine(r.dataset, r.engine, r.env, { logFile: options.logFile(label), probeFile: options.logFile(`${label}-probe`), bulkItems: options.bulkItems, progress: options.progress }));
  }
  return {
    engines,
    targetMaxMs: 50,
    note:
      "max = the longest event-loop delay in the window (10 ms resolution). /metrics figures come from prom-client's histogram, reset at each scrape; it exists only from App.start and answers only while the server listens, so it cannot see a start-up that happens before listening. The probe (preloaded, SIGUSR2 marks) sees the whole process; its start-up window runs from the process's first moment to the \"serving\" line (module loading and transpiling by tsx included). On a shared machine a delay also includes time the process waited for a core: the CPU time in the window (probe: main thread, whole process) tells work from starvation. Resetting a monitorEventLoopDelay histogram drops its next sample, so a reset that lands between a block's end and that sample (a scrape, a mark, a tick) can lose the block from that histogram: the timeline also records each tick's own lateness and ranks ticks by the larger of the two — a delay with little CPU in the whole process is waiting for a core; the embedded engine's Go code runs on threads of its own while the main thread waits on it, so its blocks show in the process's CPU, not the main thread's.",
  };
}
