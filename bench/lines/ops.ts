import { ensureDataset, type Dataset } from "../dataset.js";
import { eventloopLine, type EventLoopLine } from "./eventloop.js";
import { startupLine, type StartupLine } from "./startup.js";
import { writesLine, type WritesLine } from "./writes.js";

/**
 * The operational lines of issue 8, run after the others when selected in
 * BENCH_LINES: writes, startup, eventloop (see each module).
 *
 * Knobs: BENCH_WRITERS (16), BENCH_STARTUP_EMBEDDED_SCALES (the embedded
 * engine's sizes for start-up and memory, default "0.01,0.1", those not
 * above BENCH_SCALE), BENCH_BULK_ITEMS (1000); the embedded event-loop run
 * uses the embedded line's dataset (BENCH_EMBEDDED_SCALE; "off" skips it).
 */
export interface OpsLines {
  readonly writes?: WritesLine;
  readonly startup?: StartupLine;
  readonly eventloop?: EventLoopLine;
}

export async function opsLines(context: {
  readonly dataset: Dataset;
  readonly lines: ReadonlySet<string>;
  /** The SpiceDB binary, when there is one. */
  readonly binary: string | undefined;
  readonly seconds: number;
  readonly embeddedSetting: string;
  readonly name: string;
  readonly resultsDir: URL;
  readonly progress: (line: string) => void;
  readonly notes: string[];
}): Promise<OpsLines> {
  const { dataset, lines, binary, progress, notes } = context;
  const env = process.env;
  const logFile = (label: string) => new URL(`${context.name}-${label}.log`, context.resultsDir).pathname;
  const spicedbEnv = binary ? { SPICEDB_BINARY: binary } : undefined;
  const out: { -readonly [K in keyof OpsLines]: OpsLines[K] } = {};
  const datasets = new Map<number, Dataset>([[dataset.scale, dataset]]);
  const datasetAt = async (scale: number) => {
    if (!datasets.has(scale)) datasets.set(scale, await ensureDataset({ scale }));
    return datasets.get(scale)!;
  };

  if (lines.has("writes")) {
    if (spicedbEnv) {
      out.writes = await writesLine(dataset, "spicedb", spicedbEnv, { writers: Number(env["BENCH_WRITERS"] ?? 16), seconds: context.seconds, logFile: logFile("writes"), progress });
    } else notes.push("writes: no SpiceDB binary; the line did not run");
  }
  if (lines.has("startup")) {
    const scales = (env["BENCH_STARTUP_EMBEDDED_SCALES"] ?? "0.01,0.1")
      .split(",")
      .map(Number)
      .filter((s) => s > 0 && s <= dataset.scale);
    const embedded: Dataset[] = [];
    for (const s of scales) embedded.push(await datasetAt(s));
    if (!spicedbEnv) notes.push("startup: no SpiceDB binary; only the embedded engine was measured");
    out.startup = await startupLine(spicedbEnv ? dataset : undefined, spicedbEnv, embedded, { logFile, progress });
  }
  if (lines.has("eventloop")) {
    const runs: Array<{ dataset: Dataset; engine: "spicedb" | "embedded"; env: Record<string, string> }> = [];
    // A 1,000-item bulk check can take SpiceDB longer than the engine's default deadline (SPICEDB_TIMEOUT_MS, 10 s): the window measured is the whole call.
    if (spicedbEnv) runs.push({ dataset, engine: "spicedb", env: { ...spicedbEnv, SPICEDB_TIMEOUT_MS: env["BENCH_BULK_SPICEDB_TIMEOUT_MS"] ?? "300000" } });
    if (context.embeddedSetting !== "off") runs.push({ dataset: await datasetAt(Number(context.embeddedSetting)), engine: "embedded", env: {} });
    out.eventloop = await eventloopLine(runs, { logFile, bulkItems: Number(env["BENCH_BULK_ITEMS"] ?? 1000), progress });
  }
  return out;
}
