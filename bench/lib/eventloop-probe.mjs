/**
 * Preloaded into a sharegraph server by the bench (NODE_OPTIONS="--import=…"):
 * the event loop's delay from the first moment of the process, as
 * monitorEventLoopDelay measures it (10 ms resolution, like prom-client's
 * default metrics), written as JSON lines to BENCH_EVENTLOOP_FILE:
 *  - {"kind":"tick", …} every BENCH_EVENTLOOP_TICK_MS (default 250): the
 *    delay since the previous tick (a timeline);
 *  - {"kind":"mark", …} on SIGUSR2: the delay since the previous mark (or
 *    since the process started), so the bench can bracket a window exactly.
 * A blocked loop delays the tick and the signal handler themselves, so a
 * block always lands in the window that was open while it happened.
 * Each line also has mainCpuMs (CPU time of the main thread in that window)
 * and processCpuMs (all the process's threads).
 * Values in ms. Plain JS: it runs before tsx is loaded.
 */
import { appendFileSync, readFileSync } from "node:fs";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import process from "node:process";
import { setInterval } from "node:timers";

const file = process.env.BENCH_EVENTLOOP_FILE;
if (file) {
  const tick = monitorEventLoopDelay({ resolution: 10 });
  const mark = monitorEventLoopDelay({ resolution: 10 });
  tick.enable();
  mark.enable();
  /** @param {number} ns */
  const ms = (ns) => Math.round(ns / 1e4) / 100;
  /** @param {import("node:perf_hooks").IntervalHistogram} h */
  const stats = (h) => ({ count: h.count, max: ms(h.max), p99: ms(h.percentile(99)), p50: ms(h.percentile(50)), mean: h.count ? ms(h.mean) : 0 });
  // CPU time of the main thread alone (utime + stime of /proc/self/task/<pid>, clock ticks of 10 ms): a
  // block that is work on the loop shows as CPU ≈ its length; a process starved by a loaded machine does not.
  const mainCpuMs = () => {
    try {
      const fields = (readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8").split(") ")[1] ?? "").split(" ");
      return (Number(fields[11]) + Number(fields[12])) * 10;
    } catch {
      return Number.NaN;
    }
  };
  // The whole process (every thread: libuv's pool, GC, an embedded engine's own threads).
  const processCpuMs = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const cpuAt = { tick: mainCpuMs(), mark: mainCpuMs() };
  const processAt = { tick: processCpuMs(), mark: processCpuMs() };
  /**
   * @param {"tick" | "mark"} kind
   * @param {import("node:perf_hooks").IntervalHistogram} h
   * @param {Record<string, unknown>} [extra]
   */
  const write = (kind, h, extra = {}) => {
    const cpu = mainCpuMs();
    const all = processCpuMs();
    appendFileSync(file, `${JSON.stringify({ kind, t: Date.now(), pid: process.pid, ...stats(h), mainCpuMs: cpu - cpuAt[kind], processCpuMs: Math.round(all - processAt[kind]), ...extra })}\n`);
    cpuAt[kind] = cpu;
    processAt[kind] = all;
    h.reset();
  };
  appendFileSync(file, `${JSON.stringify({ kind: "start", t: Date.now(), pid: process.pid })}\n`);
  // lateMs: how late this tick itself ran. A reset between a block's end and the histogram's next
  // sample loses that block from the histogram (Node skips the first delta after a reset); lateness cannot.
  const every = Number(process.env.BENCH_EVENTLOOP_TICK_MS ?? 250);
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    const lateMs = Math.max(0, Math.round(now - last - every));
    last = now;
    write("tick", tick, { lateMs });
  }, every).unref();
  process.on("SIGUSR2", () => write("mark", mark));
}
