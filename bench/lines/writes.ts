import { loadavg } from "node:os";
import pg from "pg";
import { AdminService } from "../../src/gen/sharegraph/v1/admin_service_pb.js";
import { Role } from "../../src/gen/sharegraph/v1/common_pb.js";
import { ContentService } from "../../src/gen/sharegraph/v1/content_service_pb.js";
import { DirectoryService } from "../../src/gen/sharegraph/v1/directory_service_pb.js";
import { databaseNameOf } from "../../src/engine/spicedb-config.js";
import type { Dataset } from "../dataset.js";
import { percentile, round } from "../lib/load.js";
import { serverSettingsFromEnv, startServer } from "../lib/server.js";
import { StatementCounter } from "../lib/statements.js";
import { errorCode, serviceClient } from "../lib/services.js";

/**
 * The writes line (issue 8: Share/Unshare and group membership at 16
 * writers, p99 ≤ 100 ms, no call waiting behind unrelated writes).
 *
 * A sharegraph server process on the dataset's database with the given
 * engine (the bench runs it with the supervised SpiceDB), then two timed
 * passes of `seconds` each: 1 writer, then `writers` writers. Every writer
 * repeats a cycle on objects no other writer touches:
 *   Share(item, user, viewer) → Unshare(item, user) → AddGroupMember(group, user') → RemoveGroupMember(group, user')
 * (its own items, its own group), acting as an organization admin. The
 * pairs are picked from Postgres so that each write really changes
 * something and the cycle restores it: the user has VIEW on the item's
 * workspace (eligible), no direct grant on the item and no grant on any of
 * its folders (directly, through a group, or organization-wide: nothing
 * inherited); the member is not a direct member of the group.
 *
 * When Postgres has pg_stat_statements (shared_preload_libraries, and
 * `create extension pg_stat_statements` in the dataset's database), each pass
 * also reports the statements per write in sharegraph's database and in
 * SpiceDB's datastore.
 *
 * Afterwards: anything a failed call may have left is removed through the
 * API, the grants and memberships are counted again, and a Reconcile dry run
 * (AdminService) compares SpiceDB with Postgres: 0 missing / 0 extra means
 * the reused dataset is as it was for the other lines.
 */

export type WriteOp = "share" | "unshare" | "addGroupMember" | "removeGroupMember";
const OPS: readonly WriteOp[] = ["share", "unshare", "addGroupMember", "removeGroupMember"];

export interface OpStats {
  readonly calls: number;
  readonly errors: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly max_ms: number;
}

export interface WritePass {
  readonly writers: number;
  readonly seconds: number;
  /** Successful write calls (all four kinds). */
  readonly calls: number;
  readonly perSecond: number;
  readonly p50_ms: number;
  readonly p90_ms: number;
  readonly p99_ms: number;
  readonly max_ms: number;
  readonly errors: number;
  readonly errorsByCode: Record<string, number>;
  readonly firstError?: string;
  /** Shares answered no_op (nothing written; the pair's filter missed an inherited role). */
  readonly shareNoOps: number;
  readonly byOp: Record<WriteOp, OpStats>;
  /**
   * Statements per successful write in sharegraph's database and in SpiceDB's
   * datastore, when pg_stat_statements is there (see bench/lib/statements.ts).
   */
  readonly statementsPerWrite?: { readonly sharegraph: number; readonly spicedb: number };
}

export interface WritesLine {
  readonly engine: string;
  readonly startMs: number;
  readonly rebuiltRelationships?: number;
  readonly actor: string;
  readonly pairs: { shares: number; memberships: number; perWriter: number };
  readonly one: WritePass;
  readonly concurrent: WritePass;
  /** p50 and p99 at `writers` writers over p50 and p99 at 1 (1 ≈ nobody waits for anybody; ≈ writers: fully serialized). */
  readonly latencyRatio: { p50: number; p99: number };
  /** Throughput at `writers` writers over throughput at 1. */
  readonly throughputRatio: number;
  readonly restore: {
    /** Rows a failed call left behind, removed through the API after the passes. */
    readonly leftoverGrants: number;
    readonly leftoverMemberships: number;
    readonly countsBefore: { grants: number; groupMembers: number };
    readonly countsAfter: { grants: number; groupMembers: number };
    readonly reconcile: { ms: number; expected: number; actual: number; missing: number; extra: number; missingExamples: string[]; extraExamples: string[] } | { error: string };
    /** Counts equal and the dry run found 0 missing, 0 extra. */
    readonly restored: boolean;
  };
  readonly loadavg: { start: number[]; afterPasses: number[]; end: number[] };
  readonly logFile: string;
}

const KEY = "bench-writes-key-0123456789abcdef";

interface SharePair {
  readonly kind: string;
  readonly id: string;
  readonly userId: string;
}
interface MemberPair {
  readonly groupId: string;
  readonly userId: string;
}

export async function writesLine(
  dataset: Dataset,
  engine: "spicedb" | "embedded",
  env: Record<string, string>,
  options: { writers: number; seconds: number; logFile: string; progress: (line: string) => void },
): Promise<WritesLine> {
  const start = loadavg();
  const db = new pg.Client({ connectionString: dataset.databaseUrl });
  db.on("error", () => {});
  await db.connect();
  try {
    const perWriter = 24;
    const plan = await planPairs(db, options.writers, perWriter);
    options.progress(`writes: ${plan.shares.flat().length} share pairs, ${plan.members.flat().length} membership pairs for ${options.writers} writers; actor ${plan.actor}`);
    const countsBefore = await counts(db);
    const server = await startServer(
      {
        DATABASE_URL: dataset.databaseUrl,
        SHAREGRAPH_ENGINE: engine,
        SHAREGRAPH_API_KEYS: `${KEY}:admin`,
        SHAREGRAPH_PLATFORM_ADMINS: dataset.platformAdmin,
        // The Reconcile at the end derives and reads every relationship (≈1M): not a 60 s call.
        CALL_TIMEOUT_MS: "1800000",
        DATABASE_QUERY_TIMEOUT_MS: "1800000",
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
      options.progress(`writes (${engine}): serving after ${(server.startMs / 1000).toFixed(1)} s${rebuilt ? ` (rebuilt ${rebuilt} relationships)` : ""}`);
      const clients = Array.from({ length: options.writers }, () => ({
        content: serviceClient(ContentService, server.baseUrl, KEY),
        directory: serviceClient(DirectoryService, server.baseUrl, KEY),
      }));
      // Statements per write, when pg_stat_statements is loaded and created in the dataset's database.
      const datastoreName = databaseNameOf(dataset.spicedbDatastoreUrl);
      const counter = new StatementCounter(db, [dataset.databaseName, datastoreName]);
      const counted = async (writers: typeof clients): Promise<WritePass> => {
        const counting = await counter.start();
        const result = await pass(writers, plan, options.seconds);
        if (!counting || result.calls === 0) return result;
        const { byDatabase } = await counter.read();
        const per = (name: string) => round((byDatabase[name] ?? 0) / result.calls, 1);
        return { ...result, statementsPerWrite: { sharegraph: per(dataset.databaseName), spicedb: per(datastoreName) } };
      };
      const one = await counted(clients.slice(0, 1));
      options.progress(`writes: 1 writer: ${one.perSecond}/s, p50 ${one.p50_ms} ms, p99 ${one.p99_ms} ms, ${one.errors} errors`);
      const concurrent = await counted(clients);
      options.progress(`writes: ${options.writers} writers: ${concurrent.perSecond}/s, p50 ${concurrent.p50_ms} ms, p99 ${concurrent.p99_ms} ms, ${concurrent.errors} errors`);
      const afterPasses = loadavg();

      // Whatever a failed call may have committed, removed the way a user would.
      const actor = plan.actor;
      const shares = plan.shares.flat();
      const members = plan.members.flat();
      const leftGrants = await db.query<{ content_id: string; user_id: string }>(
        "select content_id, user_id from grants where (content_id, user_id) in (select * from unnest($1::text[], $2::text[]))",
        [shares.map((s) => s.id), shares.map((s) => s.userId)],
      );
      for (const row of leftGrants.rows) {
        const pair = shares.find((s) => s.id === row.content_id && s.userId === row.user_id)!;
        await clients[0]!.content.unshare({ actor, resource: { type: pair.kind, id: pair.id }, subject: { type: "user", id: pair.userId, relation: "" } });
      }
      const leftMembers = await db.query<{ group_id: string; user_id: string }>(
        "select group_id, user_id from group_members where (group_id, user_id) in (select * from unnest($1::text[], $2::text[]))",
        [members.map((m) => m.groupId), members.map((m) => m.userId)],
      );
      for (const row of leftMembers.rows) {
        await clients[0]!.directory.removeGroupMember({ actor, groupId: row.group_id, member: { type: "user", id: row.user_id, relation: "" } });
      }
      const countsAfter = await counts(db);
      options.progress(`writes: ${leftGrants.rowCount} grants and ${leftMembers.rowCount} memberships left by failed calls removed; Reconcile dry run…`);
      const admin = serviceClient(AdminService, server.baseUrl, KEY);
      let reconcile: WritesLine["restore"]["reconcile"];
      const t = performance.now();
      try {
        const r = await admin.reconcile({ dryRun: true }, { timeoutMs: 1_800_000 });
        reconcile = {
          ms: Math.round(performance.now() - t),
          expected: r.expectedRelationships,
          actual: r.actualRelationships,
          missing: r.missing,
          extra: r.extra,
          missingExamples: r.missingExamples,
          extraExamples: r.extraExamples,
        };
      } catch (err) {
        reconcile = { error: `${errorCode(err)}: ${err instanceof Error ? err.message : String(err)}` };
      }
      const restored =
        "missing" in reconcile && reconcile.missing === 0 && reconcile.extra === 0 && countsAfter.grants === countsBefore.grants && countsAfter.groupMembers === countsBefore.groupMembers;
      options.progress(`writes: Reconcile dry run ${JSON.stringify(reconcile)}; restored: ${restored}`);
      return {
        engine,
        startMs: server.startMs,
        ...(rebuilt ? { rebuiltRelationships: Number(rebuilt) } : {}),
        actor,
        pairs: { shares: shares.length, memberships: members.length, perWriter },
        one,
        concurrent,
        latencyRatio: { p50: round(concurrent.p50_ms / one.p50_ms, 2), p99: round(concurrent.p99_ms / one.p99_ms, 2) },
        throughputRatio: round(concurrent.perSecond / one.perSecond, 2),
        restore: { leftoverGrants: leftGrants.rowCount ?? 0, leftoverMemberships: leftMembers.rowCount ?? 0, countsBefore, countsAfter, reconcile, restored },
        loadavg: { start, afterPasses, end: loadavg() },
        logFile: server.logFile,
      };
    } finally {
      await server.stop();
    }
  } finally {
    await db.end().catch(() => {});
  }
}

type Clients = ReadonlyArray<{ content: ReturnType<typeof serviceClient<typeof ContentService>>; directory: ReturnType<typeof serviceClient<typeof DirectoryService>> }>;

/** `clients.length` writers for `seconds`; writer i cycles through its own pairs. A started cycle is finished (its undo is part of the pass). */
async function pass(clients: Clients, plan: Plan, seconds: number): Promise<WritePass> {
  const latencies: Record<WriteOp, number[]> = { share: [], unshare: [], addGroupMember: [], removeGroupMember: [] };
  const errors: Record<WriteOp, number> = { share: 0, unshare: 0, addGroupMember: 0, removeGroupMember: 0 };
  const errorsByCode: Record<string, number> = {};
  let firstError: string | undefined;
  let shareNoOps = 0;
  const timed = async <T>(op: WriteOp, call: () => Promise<T>): Promise<T | undefined> => {
    const t = performance.now();
    try {
      const value = await call();
      latencies[op].push(performance.now() - t);
      return value;
    } catch (err) {
      errors[op]++;
      const code = errorCode(err);
      errorsByCode[code] = (errorsByCode[code] ?? 0) + 1;
      firstError ??= `${op}: ${err instanceof Error ? err.message : String(err)}`;
      return undefined;
    }
  };
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    clients.map(async ({ content, directory }, w) => {
      const shares = plan.shares[w]!;
      const members = plan.members[w]!;
      const actor = plan.actor;
      for (let k = 0; performance.now() < deadline; k++) {
        const s = shares[k % shares.length]!;
        const resource = { type: s.kind, id: s.id };
        const subject = { type: "user", id: s.userId, relation: "" };
        const shared = await timed("share", () => content.share({ actor, resource, subject, role: Role.VIEWER }));
        if (shared?.noOp) shareNoOps++;
        else if (shared) await timed("unshare", () => content.unshare({ actor, resource, subject }));
        const m = members[k % members.length]!;
        const member = { type: "user", id: m.userId, relation: "" };
        const added = await timed("addGroupMember", () => directory.addGroupMember({ actor, groupId: m.groupId, member }));
        if (added) await timed("removeGroupMember", () => directory.removeGroupMember({ actor, groupId: m.groupId, member }));
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const all = OPS.flatMap((op) => latencies[op]).sort((a, b) => a - b);
  const stats = (op: WriteOp): OpStats => {
    const l = latencies[op].sort((a, b) => a - b);
    return { calls: l.length, errors: errors[op], p50_ms: percentile(l, 0.5), p99_ms: percentile(l, 0.99), max_ms: round(l.at(-1) ?? Number.NaN) };
  };
  const errorCount = OPS.reduce((sum, op) => sum + errors[op], 0);
  return {
    writers: clients.length,
    seconds: round(elapsed),
    calls: all.length,
    perSecond: round(all.length / elapsed, 1),
    p50_ms: percentile(all, 0.5),
    p90_ms: percentile(all, 0.9),
    p99_ms: percentile(all, 0.99),
    max_ms: round(all.at(-1) ?? Number.NaN),
    errors: errorCount,
    errorsByCode,
    ...(firstError ? { firstError } : {}),
    shareNoOps,
    byOp: { share: stats("share"), unshare: stats("unshare"), addGroupMember: stats("addGroupMember"), removeGroupMember: stats("removeGroupMember") },
  };
}

interface Plan {
  readonly actor: string;
  /** Per writer: its own items (each with a user who can receive a viewer grant that changes something). */
  readonly shares: SharePair[][];
  /** Per writer: its own group and users who are not direct members of it. */
  readonly members: MemberPair[][];
}

/** Deterministic pairs from the dataset's rows (see the module comment). */
async function planPairs(db: pg.Client, writers: number, perWriter: number): Promise<Plan> {
  const admin = await db.query<{ user_id: string; organization_id: string }>(
    "select user_id, organization_id from organization_members where admin order by organization_id, user_id limit 1",
  );
  const actor = admin.rows[0]?.user_id;
  const organizationId = admin.rows[0]?.organization_id;
  if (!actor) throw new Error("writes: the dataset has no organization admin to act as");

  const viewers = (
    await db.query<{ workspace_id: string; user_id: string }>(
      "select workspace_id, user_id from workspace_access where kind = 'level' and level = 'view' and user_id is not null order by workspace_id, user_id",
    )
  ).rows;
  const viewerIds = [...new Set(viewers.map((v) => v.user_id))];
  const groupsOf = new Map<string, Set<string>>();
  for (const r of (
    await db.query<{ user_id: string; group_id: string }>(
      `with recursive ug(user_id, group_id) as (
         select user_id, group_id from group_members where user_id = any($1)
         union
         select ug.user_id, gm.group_id from ug join group_members gm on gm.member_group_id = ug.group_id)
       select user_id, group_id from ug`,
      [viewerIds],
    )
  ).rows) {
    if (!groupsOf.has(r.user_id)) groupsOf.set(r.user_id, new Set());
    groupsOf.get(r.user_id)!.add(r.group_id);
  }
  const items = (
    await db.query<{ id: string; kind: string; workspace_id: string; chain: string[] }>(
      `select c.id, c.kind, c.workspace_id, c.folder_id || array(select fa.ancestor_id from folder_ancestors fa where fa.folder_id = c.folder_id) as chain
       from (select *, row_number() over (partition by workspace_id order by id) as n from content where folder_id is not null) c
       where c.n <= $1 order by c.id`,
      [Math.max(8, Math.ceil((4 * writers * perWriter) / 50))],
    )
  ).rows;
  const folderGrants = new Map<string, Array<{ user_id: string | null; group_id: string | null; organization_id: string | null }>>();
  for (const g of (
    await db.query<{ folder_id: string; user_id: string | null; group_id: string | null; organization_id: string | null }>(
      "select folder_id, user_id, group_id, organization_id from grants where folder_id = any($1)",
      [[...new Set(items.flatMap((i) => i.chain))]],
    )
  ).rows) {
    if (!folderGrants.has(g.folder_id)) folderGrants.set(g.folder_id, []);
    folderGrants.get(g.folder_id)!.push(g);
  }
  const direct = new Set(
    (
      await db.query<{ content_id: string; user_id: string }>("select content_id, user_id from grants where content_id = any($1) and user_id is not null", [items.map((i) => i.id)])
    ).rows.map((r) => `${r.content_id}|${r.user_id}`),
  );
  const viewersOf = new Map<string, string[]>();
  for (const v of viewers) viewersOf.set(v.workspace_id, [...(viewersOf.get(v.workspace_id) ?? []), v.user_id]);
  const inherits = (chain: readonly string[], userId: string) =>
    chain.some((f) => (folderGrants.get(f) ?? []).some((g) => g.user_id === userId || g.organization_id !== null || (g.group_id !== null && groupsOf.get(userId)?.has(g.group_id))));
  const pool: SharePair[] = [];
  for (const item of items) {
    const userId = (viewersOf.get(item.workspace_id) ?? []).find((u) => !direct.has(`${item.id}|${u}`) && !inherits(item.chain, u));
    if (userId) pool.push({ kind: item.kind, id: item.id, userId });
  }
  if (pool.length < writers) throw new Error(`writes: only ${pool.length} share pairs found for ${writers} writers`);
  const shares = Array.from({ length: writers }, (_, w) => pool.filter((_, i) => i % writers === w).slice(0, perWriter));

  const groups = (
    await db.query<{ id: string }>("select id from groups where organization_id = $1 order by id limit $2", [organizationId, writers])
  ).rows.map((r) => r.id);
  if (groups.length < writers) throw new Error(`writes: only ${groups.length} groups for ${writers} writers`);
  const memberRows = await db.query<{ group_id: string; user_id: string }>("select group_id, user_id from group_members where group_id = any($1) and user_id is not null", [groups]);
  const isMember = new Set(memberRows.rows.map((r) => `${r.group_id}|${r.user_id}`));
  const candidates = (
    await db.query<{ user_id: string }>("select user_id from organization_members where organization_id = $1 and not admin order by user_id", [organizationId])
  ).rows.map((r) => r.user_id);
  // Distinct users across writers while there are enough (a small tenant repeats them: still other groups' rows).
  const members = groups.map((groupId, w) => {
    const out: MemberPair[] = [];
    for (let i = 0; i < candidates.length && out.length < perWriter; i++) {
      const userId = candidates[(w * perWriter + i) % candidates.length]!;
      if (!isMember.has(`${groupId}|${userId}`)) out.push({ groupId, userId });
    }
    if (out.length === 0) throw new Error(`writes: every user is already a member of ${groupId}`);
    return out;
  });
  return { actor, shares, members };
}

async function counts(db: pg.Client): Promise<{ grants: number; groupMembers: number }> {
  const r = await db.query<{ grants: string; members: string }>("select (select count(*) from grants) as grants, (select count(*) from group_members) as members");
  return { grants: Number(r.rows[0]!.grants), groupMembers: Number(r.rows[0]!.members) };
}
