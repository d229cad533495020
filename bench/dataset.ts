/**
 * The benchmark tenant, in a Postgres database of its own.
 *
 *   const dataset = await ensureDataset({ scale: 0.1 });
 *   // → { databaseUrl, counts, probes, sample, platformAdmin, … }
 *
 * ensureDataset plans the tenant deterministically (bench/dataset/plan.ts:
 * a seeded PRNG; scale 1 = 10,000 users, 1,000 groups nested up to 4 deep,
 * 50 workspaces, 10,000 folders up to 8 deep, 100,000 items, ~1M
 * relationships) and writes it through the store and the outbox
 * (bench/dataset/load.ts) into `sg_bench_<hash of version, scale, seed>`.
 * A database that holds a complete dataset (its `bench_dataset` row) is
 * reused as is; an incomplete one is dropped and generated again, together
 * with the supervised SpiceDB's datastore beside it (`<name>_spicedb`), whose
 * index would otherwise no longer match.
 *
 * Scale: options.scale, else BENCH_SCALE, else 1. Seed: options.seed, else
 * BENCH_SEED, else 1.
 */
import { createHash } from "node:crypto";
import pg from "pg";
import { defaultDatastoreUri } from "../src/engine/spicedb-config.js";
import { Store } from "../src/store/store.js";
import { loadPlan } from "./dataset/load.js";
import { planDataset, type Probe, type SamplePair } from "./dataset/plan.js";

export type { Probe, SamplePair } from "./dataset/plan.js";

/** Bump when the plan or the loader changes what is generated: a new database name follows. */
export const GENERATOR_VERSION = 2;

export const DEFAULT_BASE_URL = "postgres://postgres@127.0.0.1:5432/postgres";

export interface DatasetCounts {
  readonly users: number;
  readonly groups: number;
  readonly groupMembers: number;
  readonly workspaces: number;
  readonly workspacePermissions: number;
  readonly folders: number;
  readonly folderAncestors: number;
  readonly maxFolderDepth: number;
  readonly content: number;
  readonly grants: number;
  /** Relationship updates in the outbox, as generated (every one a TOUCH of a distinct relationship). */
  readonly relationships: number;
  readonly outboxBatches: number;
}

export interface Dataset {
  readonly databaseUrl: string;
  readonly databaseName: string;
  /** Where the supervised engine (SHAREGRAPH_ENGINE=spicedb) keeps SpiceDB's datastore by default. */
  readonly spicedbDatastoreUrl: string;
  readonly scale: number;
  readonly seed: number;
  readonly generatorVersion: number;
  readonly organizationId: string;
  /** An existing user for SHAREGRAPH_PLATFORM_ADMINS. */
  readonly platformAdmin: string;
  readonly counts: DatasetCounts;
  /** Users planted to see exactly `expected` items (≈10, ≈1,000, ≈10,000 at scale 1). */
  readonly probes: readonly Probe[];
  /** Distinct (user, item, view) checks, shuffled: slice it for cold runs. */
  readonly sample: readonly SamplePair[];
  /** How long generating it took (when it was generated, possibly by an earlier run). */
  readonly generationMs: number;
  readonly generatedAt: string;
  /** True when this call found it complete and generated nothing. */
  readonly reused: boolean;
}

export interface EnsureDatasetOptions {
  /** Any database on the Postgres server to use (the dataset gets a database of its own there). */
  readonly baseUrl?: string;
  readonly scale?: number;
  readonly seed?: number;
  /** Progress lines; default: stderr. */
  readonly log?: (line: string) => void;
}

export function scaleFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const scale = Number(env["BENCH_SCALE"] ?? 1);
  if (!(scale > 0 && scale <= 1)) throw new Error(`BENCH_SCALE must be a number in (0, 1], got ${env["BENCH_SCALE"]}`);
  return scale;
}

/** BENCH_SEED: another tenant of the same shape, in a database of its own (default 1). */
export function seedFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const seed = Number(env["BENCH_SEED"] ?? 1);
  if (!Number.isInteger(seed) || seed < 1) throw new Error(`BENCH_SEED must be a positive integer, got ${env["BENCH_SEED"]}`);
  return seed;
}

export function datasetDatabaseName(scale: number, seed: number): string {
  const hash = createHash("sha256").update(`v${GENERATOR_VERSION}|scale=${scale}|seed=${seed}`).digest("hex").slice(0, 10);
  return `sg_bench_${hash}`;
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on("error", () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

interface Marker {
  version: number;
  scale: number;
  seed: number;
  organization_id: string;
  platform_admin: string;
  counts: DatasetCounts;
  probes: Probe[];
  sample: SamplePair[];
  generation_ms: number;
  generated_at: Date;
}

async function readMarker(url: string): Promise<Marker | undefined> {
  return withClient(url, async (client) => {
    const table = await client.query("select to_regclass('bench_dataset') as t");
    if (!table.rows[0]?.t) return undefined;
    const result = await client.query<Marker>("select * from bench_dataset");
    return result.rows[0];
  });
}

export async function ensureDataset(options: EnsureDatasetOptions = {}): Promise<Dataset> {
  const baseUrl = options.baseUrl ?? process.env["BENCH_DATABASE_URL"] ?? DEFAULT_BASE_URL;
  const scale = options.scale ?? scaleFromEnv();
  const seed = options.seed ?? seedFromEnv();
  const log = options.log ?? ((line: string) => process.stderr.write(`[dataset] ${line}\n`));
  const databaseName = datasetDatabaseName(scale, seed);
  const databaseUrl = withDatabase(baseUrl, databaseName);
  const spicedbDatastoreUrl = defaultDatastoreUri(databaseUrl);

  const exists = await withClient(baseUrl, async (c) => Boolean((await c.query("select 1 from pg_database where datname = $1", [databaseName])).rowCount));
  let marker = exists ? await readMarker(databaseUrl) : undefined;
  let reused = true;
  if (!marker) {
    reused = false;
    await withClient(baseUrl, async (c) => {
      // An interrupted generation, and any SpiceDB index built from it, start over.
      await c.query(`drop database if exists "${databaseName}" with (force)`);
      await c.query(`drop database if exists "${databaseName}_spicedb" with (force)`);
      await c.query(`create database "${databaseName}"`);
    });
    log(`generating scale ${scale} (seed ${seed}) into ${databaseName}`);
    const started = performance.now();
    const plan = planDataset(scale, seed);
    log(`planned in ${((performance.now() - started) / 1000).toFixed(1)} s: ${plan.users.length} users, ${plan.groups.length} groups, ${plan.workspaces.length} workspaces, ${plan.folders.length} folders, ${plan.content.length} items, ${plan.grants.length} grants, ${plan.sample.length} sample checks`);
    const store = await Store.open({ kind: "postgres", url: databaseUrl, poolSize: 4, queryTimeoutMs: 600_000 });
    try {
      await store.migrate();
      const loaded = await loadPlan(store, plan, { progress: log });
      const counts = await countRows(databaseUrl);
      if (counts.relationships !== loaded.relationships) throw new Error(`outbox holds ${counts.relationships} relationship updates, the loader appended ${loaded.relationships}`);
      const generationMs = Math.round(performance.now() - started);
      await withClient(databaseUrl, async (c) => {
        await c.query(`create table bench_dataset (
          singleton boolean primary key default true check (singleton),
          version integer not null, scale double precision not null, seed integer not null,
          organization_id text not null, platform_admin text not null,
          counts jsonb not null, probes jsonb not null, sample jsonb not null,
          generation_ms integer not null, generated_at timestamptz not null default now()
        )`);
        await c.query(
          `insert into bench_dataset (version, scale, seed, organization_id, platform_admin, counts, probes, sample, generation_ms)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
          [GENERATOR_VERSION, scale, seed, plan.organizationId, plan.platformAdmin, JSON.stringify(counts), JSON.stringify(plan.probes), JSON.stringify(plan.sample), generationMs],
        );
        await c.query("analyze");
      });
      log(`generated in ${(generationMs / 1000).toFixed(1)} s: ${counts.relationships} relationships in ${counts.outboxBatches} outbox batches`);
    } finally {
      await store.close();
    }
    marker = await readMarker(databaseUrl);
    if (!marker) throw new Error(`the dataset marker of ${databaseName} is missing right after generation`);
  } else {
    log(`reusing ${databaseName} (scale ${marker.scale}, ${marker.counts.relationships} relationships, generated ${marker.generated_at.toISOString()})`);
  }
  return {
    databaseUrl,
    databaseName,
    spicedbDatastoreUrl,
    scale,
    seed,
    generatorVersion: marker.version,
    organizationId: marker.organization_id,
    platformAdmin: marker.platform_admin,
    counts: marker.counts,
    probes: marker.probes,
    sample: marker.sample,
    generationMs: marker.generation_ms,
    generatedAt: marker.generated_at.toISOString(),
    reused,
  };
}

async function countRows(url: string): Promise<DatasetCounts> {
  return withClient(url, async (c) => {
    const n = async (q: string) => Number((await c.query<{ n: string }>(q)).rows[0]!.n);
    return {
      users: await n("select count(*) as n from users"),
      groups: await n("select count(*) as n from groups"),
      groupMembers: await n("select count(*) as n from group_members"),
      workspaces: await n("select count(*) as n from workspaces"),
      workspacePermissions: await n("select count(*) as n from workspace_access"),
      folders: await n("select count(*) as n from folders"),
      folderAncestors: await n("select count(*) as n from folder_ancestors"),
      maxFolderDepth: await n("select coalesce(max(depth), 0) + 1 as n from folder_ancestors"),
      content: await n("select count(*) as n from content"),
      grants: await n("select count(*) as n from grants"),
      relationships: await n("select coalesce(sum(op_count), 0) as n from outbox"),
      outboxBatches: await n("select count(*) as n from outbox"),
    };
  });
}
