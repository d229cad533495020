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
 * Values in ms. Plain JS: it runs before tsx is loaded.
 */
import { appendFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import process from "node:process";
import { setInterval } from "node:timers";

const file = process.env.BENCH_EVENTLOOP_FILE;
if (file) {
  const tick = monitorEventLoopDelay({ resolution: 10 });
  const mark = monitorEventLoopDelay({ resolution: 10 });
  tick.enable();
  mark.enable();
  const ms = (ns) => Math.round(ns / 1e4) / 100;
  const stats = (h) => ({ count: h.count, max: ms(h.max), p99: ms(h.percentile(99)), p50: ms(h.percentile(50)), mean: h.count ? ms(h.mean) : 0 });
  const write = (kind, h) => {
    appendFileSync(file, `${JSON.stringify({ kind, t: Date.now(), pid: process.pid, ...stats(h) })}\n`);
    h.reset();
  };
  appendFileSync(file, `${JSON.stringify({ kind: "start", t: Date.now(), pid: process.pid })}\n`);
  setInterval(() => write("tick", tick), Number(process.env.BENCH_EVENTLOOP_TICK_MS ?? 250)).unref();
  process.on("SIGUSR2", () => write("mark", mark));
}
