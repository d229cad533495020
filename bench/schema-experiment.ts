/**
 * What shape of SpiceDB data would make a cold check cheap (issue 8, "fewer
 * dispatches per question", round 4): builds one SpiceDB datastore per
 * experimental variant of the schema and of the relationships sharegraph
 * derives, so that `bench/statement-trace.ts` (relation reads per check) and
 * `npm run bench:spicedb` (CPU per check, agreement with the recursive CTE)
 * can be pointed at each with BENCH_DATASTORE_URL. Nothing here is what
 * sharegraph serves: each variant is what the gateway *would* write.
 *
 *   BENCH_SCALE=0.2 BENCH_SEED=7 BENCH_EXPERIMENTS=base,nested-groups,union-roles npx tsx bench/schema-experiment.ts
 *
 * Variants:
 *  - base:   schema/sharegraph.zed and exactly the relationships graph.ts
 *            derives (what is shipped: cumulative role relations and the
 *            group closure; the reference: same build path as the others);
 *  - nested-groups: round 4's shape: group membership as written, nested
 *            groups as `group#member` subjects (the transitional schema
 *            allows them), no closure (docs/PERFORMANCE.md, round 5);
 *  - union-roles: round 3's shape, before the cumulative role relations:
 *            each permission reads the union of the role relations
 *            (`viewer + sharer + editor + manager`, …), nested groups;
 *  - union-roles-closure: that, with the group closure.
 *
 * Prints, per variant, the datastore URI and its relationship count.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import pg from "pg";
import type { Relationship } from "../src/engine/engine.js";
import { createRemoteEngine } from "../src/engine/remote.js";
import { transitionalSchema } from "../src/engine/schema.js";
import { DEFAULT_SPICEDB_BINARY } from "../src/engine/spicedb-config.js";
import { analyzeDatastore, createDatabaseIfMissing, dropDatabase, migrateDatastore } from "../src/engine/spicedb-datastore.js";
import { freePort, SpiceDbProcess } from "../src/engine/spicedb-process.js";
import { supervisedDatastoreUri } from "../src/engine/supervised.js";
import { CUMULATIVE_RELATIONS, deriveAll } from "../src/domain/graph.js";
import { createLogger } from "../src/logger.js";
import { Store } from "../src/store/store.js";
import { ensureDataset } from "./dataset.js";

/** Replaces each `from` exactly as often as `times` says (a schema edit that matches nothing is a bug here, not a no-op). */
function edit(text: string, from: string, to: string, times: number): string {
  const found = text.split(from).length - 1;
  if (found !== times) throw new Error(`schema edit expected ${times} of ${JSON.stringify(from)}, found ${found}`);
  return text.replaceAll(from, to);
}

/** Round 3's schema: each permission reads the union of the role relations, no cumulative relation. */
function unionRolesSchema(zed: string): string {
  const cumulative = "    relation view_role: user | group#member | organization#member\n    relation share_role: user | group#member | organization#member\n    relation edit_role: user | group#member | organization#member\n";
  let out = edit(zed, `\n    /** Cumulative, written beside each grant: the role or a higher one. */\n${cumulative}`, "", 5);
  out = edit(out, "permission direct_view = view_role\n", "permission direct_view = viewer + sharer + editor + manager\n", 5);
  out = edit(out, "permission direct_share = share_role\n", "permission direct_share = sharer + editor + manager\n", 5);
  out = edit(out, "permission direct_edit = edit_role\n", "permission direct_edit = editor + manager\n", 5);
  out = edit(out, "permission granted_view = view_role + folder->granted_view\n", "permission granted_view = viewer + sharer + editor + manager + folder->granted_view\n", 4);
  out = edit(out, "permission granted_share = share_role + folder->granted_share\n", "permission granted_share = sharer + editor + manager + folder->granted_share\n", 4);
  out = edit(out, "permission granted_edit = edit_role + folder->granted_edit\n", "permission granted_edit = editor + manager + folder->granted_edit\n", 4);
  out = edit(
    out,
    "\n    /** Cumulative, written beside each level: VIEW or higher; ANALYZE or higher (guests keep their own relation). */\n    relation view_level: user | group#member\n    relation analyze_level: user | group#member\n",
    "",
    1,
  );
  out = edit(out, "permission local_analyze = analyze_level + organization->admin\n", "permission local_analyze = analyst + manager + organization->admin\n", 1);
  out = edit(out, "permission local_view = view_level + guest + organization->admin\n", "permission local_view = viewer + guest + analyst + manager + organization->admin\n", 1);
  return out;
}

/** Round 4's shape: group membership as written (nested groups as `group#member` subjects), no closure, no stand-ins. */
function withNestedGroups(relationships: readonly Relationship[]): Relationship[] {
  const rest = relationships.filter((r) => !(r.resource.type === "group" && r.relation === "member"));
  for (const m of memberships) {
    const subject = m.user_id !== null ? { type: "user", id: m.user_id } : { type: "group", id: m.member_group_id ?? "", relation: "member" };
    rest.push({ resource: { type: "group", id: m.group_id }, relation: "member", subject });
  }
  return rest;
}

function withoutCumulative(relationships: readonly Relationship[]): Relationship[] {
  return relationships.filter((r) => !CUMULATIVE_RELATIONS.has(r.relation));
}

const VARIANTS: Record<string, { schema: (zed: string) => string; relationships: (all: readonly Relationship[]) => Relationship[] }> = {
  base: { schema: (z) => z, relationships: (all) => [...all] },
  "nested-groups": { schema: transitionalSchema, relationships: withNestedGroups },
  "union-roles": { schema: (z) => unionRolesSchema(transitionalSchema(z)), relationships: (all) => withNestedGroups(withoutCumulative(all)) },
  "union-roles-closure": { schema: unionRolesSchema, relationships: withoutCumulative },
};

const env = process.env;
const names = (env["BENCH_EXPERIMENTS"] ?? Object.keys(VARIANTS).join(",")).split(",").map((s) => s.trim());
for (const n of names) if (!VARIANTS[n]) throw new Error(`unknown experiment ${n}; known: ${Object.keys(VARIANTS).join(", ")}`);

const dataset = await ensureDataset();
const store = await Store.open({ kind: "postgres", url: dataset.databaseUrl, poolSize: 2, queryTimeoutMs: 600_000 });
const { derived, memberships } = await store.transaction(async (tx) => ({ derived: await deriveAll(tx), memberships: await tx.all("group_members") }), "repeatable read");
await store.close();
const zed = readFileSync(new URL("../schema/sharegraph.zed", import.meta.url), "utf8");
const log = createLogger("warn");
const binary = env["SPICEDB_BINARY"] ?? DEFAULT_SPICEDB_BINARY;

for (const name of names) {
  const variant = VARIANTS[name]!;
  const url = new URL(dataset.spicedbDatastoreUrl);
  url.pathname = `/${dataset.databaseName}_x_${name}`;
  const uri = url.toString();
  await dropDatabase(uri).catch(() => undefined);
  await createDatabaseIfMissing(uri);
  await migrateDatastore(binary, supervisedDatastoreUri(uri), log);
  const key = randomBytes(16).toString("hex");
  const port = await freePort();
  const spicedb = new SpiceDbProcess({ binary, datastoreUri: supervisedDatastoreUri(uri), port, presharedKey: key, maxUpdatesPerWrite: 1000, poolSize: 4, extraArgs: [] }, log);
  await spicedb.start();
  const relationships = variant.relationships(derived);
  try {
    const engine = await createRemoteEngine({ endpoint: spicedb.endpoint, token: key, tls: "plaintext", timeoutMs: 600_000, maxUpdatesPerWrite: 1000 });
    await engine.writeSchema(variant.schema(zed));
    for (let i = 0; i < relationships.length; i += engine.maxUpdatesPerWrite) {
      await engine.write(relationships.slice(i, i + engine.maxUpdatesPerWrite).map((relationship) => ({ op: "touch" as const, relationship })));
    }
    await engine.close();
  } finally {
    await spicedb.stop();
  }
  await analyzeDatastore(uri);
  const client = new pg.Client({ connectionString: uri });
  await client.connect();
  const count = (await client.query<{ n: string }>("select count(*) as n from relation_tuple")).rows[0]!.n;
  await client.end();
  process.stdout.write(`${name}: ${uri} — ${relationships.length} relationships written, ${count} rows\n`);
}
