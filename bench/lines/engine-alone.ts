import { randomBytes } from "node:crypto";
import { loadavg } from "node:os";
import { v1 } from "@authzed/authzed-node";
import { describeSchema, loadSchemaText } from "../../src/engine/schema.js";
import { prepareDatastore } from "../../src/engine/spicedb-datastore.js";
import { SpiceDbProcess, freePort } from "../../src/engine/spicedb-process.js";
import { supervisedDatastoreUri } from "../../src/engine/supervised.js";
import { createLogger } from "../../src/logger.js";
import type { Dataset } from "../dataset.js";
import { MINIMIZE_LATENCY, exactSnapshot, spicedbChecker, spicedbClients } from "../lib/clients.js";
import { sliceSample } from "../lib/sample.js";
import { answers, checkLines, type CheckLineOptions, type CheckLines } from "./checks.js";

export interface EngineAloneSession {
  /** minimize_latency (a plain client), or one exact snapshot for every check (what sharegraph sends). */
  readonly consistency: "minimize_latency" | "exact_snapshot";
  readonly agreementAnswers: boolean[];
  readonly checks: CheckLines;
  /** Relationships read back from SpiceDB (every resource type of the schema), when counted. */
  readonly relationshipsInEngine?: number;
  readonly loadavg: { start: number[]; end: number[] };
}

/**
 * The supervised engine's SpiceDB alone: `spicedb serve` on the same
 * datastore with the same flags sharegraph uses (SpiceDbProcess), a key of
 * our own, and the same checks sent with @authzed/authzed-node. A process
 * of its own per call, so that each starts with cold caches.
 */
export async function engineAloneSession(
  dataset: Dataset,
  binary: string,
  options: CheckLineOptions & { consistency: EngineAloneSession["consistency"]; count: boolean; progress: (line: string) => void },
): Promise<EngineAloneSession> {
  const start = loadavg();
  const log = createLogger("warn");
  await prepareDatastore(binary, dataset.spicedbDatastoreUrl, log);
  const key = randomBytes(16).toString("hex");
  // The URI sharegraph gives its supervised SpiceDB (prepared statements; no TLS on loopback), so that only the gateway differs.
  const spicedb = new SpiceDbProcess({ binary, datastoreUri: supervisedDatastoreUri(dataset.spicedbDatastoreUrl), port: await freePort(), presharedKey: key, maxUpdatesPerWrite: 1000, poolSize: 10 }, log);
  await spicedb.start();
  const clients = spicedbClients(spicedb.endpoint, key, 4);
  try {
    let consistency = MINIMIZE_LATENCY;
    if (options.consistency === "exact_snapshot") {
      // The newest revision (sharegraph pins the revision of its newest applied write), from a fully consistent call.
      const read = await clients[0]!.promises.checkPermission(
        v1.CheckPermissionRequest.create({
          consistency: v1.Consistency.create({ requirement: { oneofKind: "fullyConsistent", fullyConsistent: true } }),
          resource: v1.ObjectReference.create({ objectType: "platform", objectId: "sharegraph" }),
          permission: "manage",
          subject: v1.SubjectReference.create({ object: v1.ObjectReference.create({ objectType: "user", objectId: dataset.platformAdmin }) }),
        }),
      );
      consistency = exactSnapshot(read.checkedAt!.token);
    }
    const check = spicedbChecker(clients, consistency);
    const slices = sliceSample(dataset.sample);
    const agreementAnswers = await answers(check, slices.agreement);
    const checks = await checkLines(check, slices, options);
    options.progress(`SpiceDB alone (${options.consistency}): checks done`);
    const relationshipsInEngine = options.count ? await countRelationships(clients[0]!) : undefined;
    if (relationshipsInEngine !== undefined) options.progress(`SpiceDB alone: ${relationshipsInEngine} relationships read back`);
    return {
      consistency: options.consistency,
      agreementAnswers,
      checks,
      ...(relationshipsInEngine !== undefined ? { relationshipsInEngine } : {}),
      loadavg: { start, end: loadavg() },
    };
  } finally {
    for (const c of clients) c.close();
    await spicedb.stop();
  }
}

async function countRelationships(client: v1.ZedClientInterface): Promise<number> {
  let n = 0;
  for (const resourceType of describeSchema(loadSchemaText()).keys()) {
    const stream = client.readRelationships(
      v1.ReadRelationshipsRequest.create({
        consistency: v1.Consistency.create({ requirement: { oneofKind: "fullyConsistent", fullyConsistent: true } }),
        relationshipFilter: v1.RelationshipFilter.create({ resourceType }),
      }),
    );
    for await (const _ of stream) n++;
  }
  return n;
}
