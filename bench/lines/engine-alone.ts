import { randomBytes } from "node:crypto";
import { loadavg } from "node:os";
import { v1 } from "@authzed/authzed-node";
import { describeSchema, loadSchemaText } from "../../src/engine/schema.js";
import { prepareDatastore } from "../../src/engine/spicedb-datastore.js";
import { SpiceDbProcess, freePort } from "../../src/engine/spicedb-process.js";
import { createLogger } from "../../src/logger.js";
import type { Dataset } from "../dataset.js";
import { spicedbChecker, spicedbClients } from "../lib/clients.js";
import { sliceSample } from "../lib/sample.js";
import { answers, checkLines, type CheckLineOptions, type CheckLines } from "./checks.js";

export interface EngineAloneSession {
  readonly agreementAnswers: boolean[];
  readonly checks: CheckLines;
  /** Relationships read back from SpiceDB (every resource type of the schema). */
  readonly relationshipsInEngine: number;
  readonly loadavg: { start: number[]; end: number[] };
}

/**
 * The supervised engine's SpiceDB alone: `spicedb serve` on the same
 * datastore with the same flags sharegraph uses (SpiceDbProcess), a key of
 * our own, and the same checks sent with @authzed/authzed-node.
 */
export async function engineAloneSession(dataset: Dataset, binary: string, options: CheckLineOptions & { progress: (line: string) => void }): Promise<EngineAloneSession> {
  const start = loadavg();
  const log = createLogger("warn");
  await prepareDatastore(binary, dataset.spicedbDatastoreUrl, log);
  const key = randomBytes(16).toString("hex");
  const spicedb = new SpiceDbProcess({ binary, datastoreUri: dataset.spicedbDatastoreUrl, port: await freePort(), presharedKey: key, maxUpdatesPerWrite: 1000, poolSize: 10 }, log);
  await spicedb.start();
  const clients = spicedbClients(spicedb.endpoint, key, 4);
  try {
    const check = spicedbChecker(clients);
    const slices = sliceSample(dataset.sample);
    const agreementAnswers = await answers(check, slices.agreement);
    const checks = await checkLines(check, slices, options);
    options.progress("SpiceDB alone: checks done");
    const relationshipsInEngine = await countRelationships(clients[0]!);
    options.progress(`SpiceDB alone: ${relationshipsInEngine} relationships read back`);
    return { agreementAnswers, checks, relationshipsInEngine, loadavg: { start, end: loadavg() } };
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
