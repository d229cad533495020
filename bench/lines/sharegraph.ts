import { loadavg } from "node:os";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { DirectoryService } from "../../src/gen/sharegraph/v1/directory_service_pb.js";
import type { Dataset } from "../dataset.js";
import { grpcJsClients, sharegraphChecker, sharegraphClients, sharegraphGrpcJsChecker } from "../lib/clients.js";
import { sliceSample } from "../lib/sample.js";
import { serverSettingsFromEnv, startServer } from "../lib/server.js";
import { answers, checkLines, type CheckLineOptions, type CheckLines } from "./checks.js";
import { sharegraphLookup, type LookupLine } from "./lookup.js";

const KEY = "bench-check-key-0123456789abcdef";
const ADMIN_KEY = "bench-admin-key-0123456789abcdef";

export interface SharegraphSession {
  readonly engine: "spicedb" | "embedded";
  readonly datasetScale: number;
  readonly startMs: number;
  /** From the server's log: relationships written by a rebuild at this start (undefined: none, the index was kept). */
  readonly rebuiltRelationships?: number;
  readonly rssAfter: { gatewayMb: number; childrenMb: number };
  readonly agreementAnswers: boolean[];
  readonly checks: CheckLines;
  /** Two passes per probe: the first, then the same lookup again. */
  readonly lookups: { first: LookupLine[]; again: LookupLine[] };
  readonly decisionCache: Record<string, number>;
  /** A write made through the API right after start (so that reads are pinned to a fresh snapshot), or none. */
  readonly pinWrite: { made: boolean; ms?: number };
  readonly loadavg: { start: number[]; end: number[] };
  readonly logFile: string;
  /** The client library of the check lines (BENCH_CLIENT). */
  readonly checkClient: "grpc-js" | "connect";
}

/**
 * A sharegraph server process on the dataset's database (one engine), then,
 * in order: the agreement slice (answers kept, not timed), the check lines
 * and the lookups of every probe user.
 */
export async function sharegraphSession(
  dataset: Dataset,
  engine: "spicedb" | "embedded",
  env: Record<string, string>,
  options: CheckLineOptions & { logFile: string; pinWrite: boolean; progress: (line: string) => void },
): Promise<SharegraphSession> {
  const start = loadavg();
  const server = await startServer(
    {
      DATABASE_URL: dataset.databaseUrl,
      SHAREGRAPH_ENGINE: engine,
      SHAREGRAPH_API_KEYS: `${KEY}:check,${ADMIN_KEY}:admin`,
      SHAREGRAPH_PLATFORM_ADMINS: dataset.platformAdmin,
      ...serverSettingsFromEnv(),
      ...env,
    },
    options.logFile,
  );
  try {
    const rebuilt = server
      .logLines()
      .map((l) => /"relationships":(\d+).*rebuilt from Postgres/.exec(l)?.[1])
      .find(Boolean);
    options.progress(`${engine}: serving after ${(server.startMs / 1000).toFixed(1)} s${rebuilt ? ` (rebuilt ${rebuilt} relationships)` : ""}`);
    // Reads are pinned to the snapshot of the newest write this process applied (src/sync/consistency.ts):
    // after a restart with nothing written, they are not, and neither the decision cache nor SpiceDB's
    // revision-keyed caches are used. One harmless write (a group created, deleted at the end) pins them.
    const directory = createClient(
      DirectoryService,
      createGrpcTransport({ baseUrl: server.baseUrl, interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${ADMIN_KEY}`), next(req))] }),
    );
    const pinGroup = `bench-pin-${Date.now()}`;
    let pinWrite: SharegraphSession["pinWrite"] = { made: false };
    if (options.pinWrite) {
      const t = performance.now();
      await directory.createGroup({ actor: dataset.platformAdmin, organizationId: dataset.organizationId, groupId: pinGroup, name: "bench pin (deleted at the end)" });
      pinWrite = { made: true, ms: Math.round(performance.now() - t) };
    }
    const clients = sharegraphClients(server.baseUrl, KEY, 4);
    // The check lines' client: by default @grpc/grpc-js, as the SpiceDB-alone line's authzed-node, which costs
    // this process less than half the CPU per call of Connect's Node client (0.43 vs 0.93 ms, warm probe) —
    // CPU the servers lose on a shared machine. BENCH_CLIENT=connect measures with Connect's.
    const checkClient = process.env["BENCH_CLIENT"] === "connect" ? "connect" : "grpc-js";
    const grpcJs = checkClient === "grpc-js" ? grpcJsClients(server.baseUrl, KEY, 4) : undefined;
    const check = grpcJs ? sharegraphGrpcJsChecker(grpcJs) : sharegraphChecker(clients);
    const slices = sliceSample(dataset.sample);
    let agreementAnswers: boolean[];
    let checks: CheckLines;
    try {
      agreementAnswers = await answers(check, slices.agreement);
      options.progress(`${engine}: agreement slice answered (${agreementAnswers.filter(Boolean).length}/${agreementAnswers.length} allowed)`);
      checks = await checkLines(check, slices, options);
    } finally {
      grpcJs?.close();
    }
    options.progress(`${engine}: checks done (${checkClient} client)`);
    const first: LookupLine[] = [];
    const again: LookupLine[] = [];
    for (const probe of dataset.probes) first.push(await sharegraphLookup(clients[0]!, probe));
    for (const probe of dataset.probes) again.push(await sharegraphLookup(clients[0]!, probe));
    options.progress(`${engine}: lookups done`);
    const metrics = await (await fetch(`${server.baseUrl}/metrics`)).text();
    const decisionCache = Object.fromEntries(
      [...metrics.matchAll(/^sharegraph_decision_cache_(\w+)_total (\d+)/gm)].map((m) => [m[1]!, Number(m[2])]),
    );
    if (pinWrite.made) await directory.deleteGroup({ actor: dataset.platformAdmin, groupId: pinGroup });
    return {
      engine,
      pinWrite,
      datasetScale: dataset.scale,
      startMs: server.startMs,
      ...(rebuilt ? { rebuiltRelationships: Number(rebuilt) } : {}),
      rssAfter: server.rss(),
      agreementAnswers,
      checks,
      lookups: { first, again },
      decisionCache,
      loadavg: { start, end: loadavg() },
      logFile: server.logFile,
      checkClient,
    };
  } finally {
    await server.stop();
  }
}
