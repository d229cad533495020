import { loadavg } from "node:os";
import type { Dataset } from "../dataset.js";
import { round } from "../lib/load.js";
import { startServer, type BenchServer } from "../lib/server.js";

/**
 * The start-up line (issue 8: ≤ 30 s and gateway RSS ≤ 1 GB at 1M
 * relationships on the real-SpiceDB engine, no rebuild; the embedded mode's
 * start-up and memory per 100k relationships).
 *
 * Time from spawning `node --import tsx src/main.ts` to its "serving" log
 * line (and to "listening", when the server logs that it listens before
 * the index is ready), taken from the log lines' own timestamps; RSS read
 * from /proc right after "serving" was seen (≤ 200 ms later).
 */

export interface StartupMeasure {
  readonly engine: "spicedb" | "embedded";
  readonly datasetScale: number;
  readonly relationships: number;
  /** Spawn → "listening; NOT_SERVING until …" (undefined: the server does not listen before it is ready). */
  readonly listeningMs?: number;
  /** Spawn → "serving" (from the log line's timestamp). */
  readonly servingMs: number;
  /** Relationships written by a rebuild at this start (undefined: none). */
  readonly rebuiltRelationships?: number;
  readonly gatewayRssMb: number;
  /** A supervised SpiceDB's RSS (0 for the embedded engine, which lives in the gateway's process). */
  readonly spicedbRssMb: number;
  readonly logFile: string;
}

export interface StartupLine {
  /** The supervised engine on the full dataset: the measured start is one whose datastore was already built. */
  readonly supervised?: { readonly measured: StartupMeasure; readonly buildingStart?: StartupMeasure };
  readonly embedded: StartupMeasure[];
  /**
   * Per 100k relationships: each size's figures divided by its size, and the
   * marginal cost between the two sizes ((b − a) / (relationships b − a)),
   * which leaves out the fixed cost of a process.
   */
  readonly embeddedPer100k?: {
    readonly perSize: Array<{ datasetScale: number; servingMs: number; rssMb: number }>;
    readonly marginal?: { servingMs: number; rssMb: number };
  };
  readonly loadavg: { start: number[]; end: number[] };
}

const KEY = "bench-startup-key-0123456789abcdef";

/** One start, measured, then stopped. */
export async function measureStart(
  dataset: Pick<Dataset, "databaseUrl" | "platformAdmin" | "scale" | "counts">,
  engine: "spicedb" | "embedded",
  env: Record<string, string>,
  logFile: string,
  during?: (server: BenchServer) => Promise<void>,
): Promise<StartupMeasure> {
  const spawnedAt = Date.now();
  const server = await startServer(
    { DATABASE_URL: dataset.databaseUrl, SHAREGRAPH_ENGINE: engine, SHAREGRAPH_API_KEYS: `${KEY}:check`, SHAREGRAPH_PLATFORM_ADMINS: dataset.platformAdmin, ...env },
    logFile,
  );
  try {
    const rss = server.rss();
    const lines = server.logLines();
    const at = (msg: RegExp) => {
      const line = lines.find((l) => msg.test(l));
      const time = line ? Number(/"time":(\d+)/.exec(line)?.[1]) : Number.NaN;
      return Number.isFinite(time) ? time - spawnedAt : undefined;
    };
    const listeningMs = at(/"msg":"listening/);
    const rebuilt = lines.map((l) => /"relationships":(\d+).*rebuilt from Postgres/.exec(l)?.[1]).find(Boolean);
    if (during) await during(server);
    return {
      engine,
      datasetScale: dataset.scale,
      relationships: dataset.counts.relationships,
      ...(listeningMs !== undefined ? { listeningMs } : {}),
      servingMs: at(/"msg":"serving"/) ?? server.startMs,
      ...(rebuilt ? { rebuiltRelationships: Number(rebuilt) } : {}),
      gatewayRssMb: rss.gatewayMb,
      spicedbRssMb: rss.childrenMb,
      logFile: server.logFile,
    };
  } finally {
    await server.stop();
  }
}

export async function startupLine(
  full: Dataset | undefined,
  spicedbEnv: Record<string, string> | undefined,
  embeddedDatasets: readonly Dataset[],
  options: { logFile: (label: string) => string; progress: (line: string) => void },
): Promise<StartupLine> {
  const start = loadavg();
  let supervised: StartupLine["supervised"];
  if (full && spicedbEnv) {
    let measured = await measureStart(full, "spicedb", spicedbEnv, options.logFile("startup-spicedb"));
    let buildingStart: StartupMeasure | undefined;
    if (measured.rebuiltRelationships) {
      // The first start built SpiceDB's datastore; the figure asked for is a start on a built one.
      options.progress(`startup: supervised start rebuilt ${measured.rebuiltRelationships} relationships in ${(measured.servingMs / 1000).toFixed(1)} s; starting again`);
      buildingStart = measured;
      measured = await measureStart(full, "spicedb", spicedbEnv, options.logFile("startup-spicedb-again"));
    }
    options.progress(`startup: supervised SpiceDB serving after ${(measured.servingMs / 1000).toFixed(1)} s, RSS gateway ${measured.gatewayRssMb} MB, SpiceDB ${measured.spicedbRssMb} MB`);
    supervised = { measured, ...(buildingStart ? { buildingStart } : {}) };
  }
  const embedded: StartupMeasure[] = [];
  for (const d of embeddedDatasets) {
    const m = await measureStart(d, "embedded", {}, options.logFile(`startup-embedded-${d.scale}`));
    options.progress(`startup: embedded (scale ${d.scale}, ${d.counts.relationships} relationships) serving after ${(m.servingMs / 1000).toFixed(1)} s, RSS ${m.gatewayRssMb} MB`);
    embedded.push(m);
  }
  const per = (x: number, m: StartupMeasure) => round((x * 100_000) / m.relationships, 1);
  const sorted = [...embedded].sort((a, b) => a.relationships - b.relationships);
  const [a, b] = [sorted[0], sorted.at(-1)];
  const embeddedPer100k =
    embedded.length > 0
      ? {
          perSize: embedded.map((m) => ({ datasetScale: m.datasetScale, servingMs: per(m.servingMs, m), rssMb: per(m.gatewayRssMb, m) })),
          ...(a && b && b.relationships > a.relationships
            ? {
                marginal: {
                  servingMs: round(((b.servingMs - a.servingMs) * 100_000) / (b.relationships - a.relationships), 1),
                  rssMb: round(((b.gatewayRssMb - a.gatewayRssMb) * 100_000) / (b.relationships - a.relationships), 1),
                },
              }
            : {}),
        }
      : undefined;
  return { ...(supervised ? { supervised } : {}), embedded, ...(embeddedPer100k ? { embeddedPer100k } : {}), loadavg: { start, end: loadavg() } };
}
