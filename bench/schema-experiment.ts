/**
 * What shape of SpiceDB data would make a cold check cheap (issue 8, "fewer
 * dispatches per question", round 4): builds one SpiceDB datastore per
 * experimental variant of the schema and of the relationships sharegraph
 * derives, so that `bench/statement-trace.ts` (relation reads per check) and
 * `npm run bench:spicedb` (CPU per check, agreement with the recursive CTE)
 * can be pointed at each with BENCH_DATASTORE_URL. Nothing here is what
 * sharegraph serves: each variant is what the gateway *would* write.
 *
 *   BENCH_SCALE=0.2 BENCH_SEED=7 BENCH_EXPERIMENTS=base,groups,union-roles npx tsx bench/schema-experiment.ts
 *
 * Variants:
 *  - base:   schema/sharegraph.zed and exactly the relationships graph.ts
 *            derives (the reference: same build path as the others);
 *  - groups: a Leopard-style group closure on top: `group#member` holds
 *            every user of the group at any nesting depth and no nested
 *            group, and the schema says `relation member: user` (not built:
 *            docs/PERFORMANCE.md, round 4);
 *  - union-roles: round 3's shape, before the cumulative role relations:
 *            each permission reads the union of the role relations
 *            (`viewer + sharer + editor + manager`, …);
 *  - union-roles-groups: that, with the group closure.
 *
 * Prints, per variant, the datastore URI and its relationship count.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import pg from "pg";
import type { Relationship } from "../src/engine/engine.js";
import { createRemoteEngine } from "../src/engine/remote.js";
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

function groupsSchema(zed: string): string {
  return edit(zed, "relation member: user | group#member\n", "relation member: user\n", 1);
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

/** group → its users at any depth (group#member@group:H#member means H's members are members). */
function transitiveMembers(relationships: readonly Relationship[]): Map<string, Set<string>> {
  const users = new Map<string, Set<string>>();
  const nested = new Map<string, string[]>();
  for (const r of relationships) {
    if (r.resource.type !== "group" || r.relation !== "member") continue;
    if (r.subject.type === "user") users.set(r.resource.id, (users.get(r.resource.id) ?? new Set()).add(r.subject.id));
    else nested.set(r.resource.id, [...(nested.get(r.resource.id) ?? []), r.subject.id]);
  }
  const closed = new Map<string, Set<string>>();
  const close = (group: string, path: Set<string>): Set<string> => {
    const done = closed.get(group);
    if (done) return done;
    if (path.has(group)) throw new Error(`group cycle through ${group}`);
    path.add(group);
    const all = new Set(users.get(group) ?? []);
    for (const inner of nested.get(group) ?? []) for (const u of close(inner, path)) all.add(u);
    path.delete(group);
    closed.set(group, all);
    return all;
  };
  for (const group of new Set([...users.keys(), ...nested.keys()])) close(group, new Set());
  return closed;
}

function withGroupClosure(relationships: readonly Relationship[]): Relationship[] {
  const members = transitiveMembers(relationships);
  const rest = relationships.filter((r) => !(r.resource.type === "group" && r.relation === "member"));
  for (const [group, users] of members) {
    for (const user of users) rest.push({ resource: { type: "group", id: group }, relation: "member", subject: { type: "user", id: user } });
  }
  return rest;
}

function withoutCumulative(relationships: readonly Relationship[]): Relationship[] {
  return relationships.filter((r) => !CUMULATIVE_RELATIONS.has(r.relation));
}

const VARIANTS: Record<string, { schema: (zed: string) => string; relationships: (all: readonly Relationship[]) => Relationship[] }> = {
  base: { schema: (z) => z, relationships: (all) => [...all] },
  groups: { schema: groupsSchema, relationships: withGroupClosure },
  "union-roles": { schema: unionRolesSchema, relationships: withoutCumulative },
  "union-roles-groups": { schema: (z) => unionRolesSchema(groupsSchema(z)), relationships: (all) => withGroupClosure(withoutCumulative(all)) },
};

const env = process.env;
const names = (env["BENCH_EXPERIMENTS"] ?? Object.keys(VARIANTS).join(",")).split(",").map((s) => s.trim());
for (const n of names) if (!VARIANTS[n]) throw new Error(`unknown experiment ${n}; known: ${Object.keys(VARIANTS).join(", ")}`);

const dataset = await ensureDataset();
const store = await Store.open({ kind: "postgres", url: dataset.databaseUrl, poolSize: 2, queryTimeoutMs: 600_000 });
const derived = await store.transaction((tx) => deriveAll(tx), "repeatable read");
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
