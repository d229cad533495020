import type { Relationship } from "../engine/engine.js";
import { groupStandIn } from "../engine/group-subjects.js";
import type { ChangedRow, RemovedRow } from "../store/cascade.js";
import type { Row, TableName } from "../store/database.js";
import type { Repositories } from "../store/store.js";

/**
 * How rows of the system of record become relationships in the permission
 * index. This is the only place that knows it: writes, rebuild and reconcile
 * all derive from here.
 *
 * Invariant: every relationship is derived from exactly one row, and only
 * from that row's own columns. Then a row's change maps to a precise set of
 * updates, and applying batches in commit order reproduces Postgres.
 */

/** The single platform object; its admins operate the directory. */
export const PLATFORM_ID = "sharegraph";

function rel(resourceType: string, resourceId: string, relation: string, subjectType: string, subjectId: string, subjectRelation?: string): Relationship {
  return {
    resource: { type: resourceType, id: resourceId },
    relation,
    subject: subjectRelation ? { type: subjectType, id: subjectId, relation: subjectRelation } : { type: subjectType, id: subjectId },
  };
}

/** The relation each workspace level is written on. */
export const WORKSPACE_LEVEL_RELATION = { view: "viewer", analyze: "analyst", manage: "manager" } as const;

/**
 * The cumulative relations a grant of each role is also written on (the role
 * or a higher one), so that the schema's permissions read one relation each
 * instead of a union of four: a cold check reads about half as many
 * relations (docs/PERFORMANCE.md, round 4). `manager` is its own.
 */
export const CUMULATIVE_ROLE_RELATIONS: Readonly<Record<string, readonly string[]>> = {
  viewer: ["view_role"],
  sharer: ["view_role", "share_role"],
  editor: ["view_role", "share_role", "edit_role"],
  manager: ["view_role", "share_role", "edit_role"],
};

/**
 * The same for workspace levels: VIEW or higher, ANALYZE or higher. Guests
 * keep their own relation: a subject can be a guest and hold a level at
 * once, and each relationship must come from one row only.
 */
export const CUMULATIVE_WORKSPACE_RELATIONS: Readonly<Record<string, readonly string[]>> = {
  viewer: ["view_level"],
  analyst: ["view_level", "analyze_level"],
  manager: ["view_level", "analyze_level"],
};

/** Every cumulative relation, of content, folders and workspaces. */
export const CUMULATIVE_RELATIONS: ReadonlySet<string> = new Set([...Object.values(CUMULATIVE_ROLE_RELATIONS), ...Object.values(CUMULATIVE_WORKSPACE_RELATIONS)].flat());

/** A relationship written on its own relation and on each cumulative one it implies. */
function withCumulative(r: Relationship, cumulative: Readonly<Record<string, readonly string[]>>): Relationship[] {
  return [r, ...(cumulative[r.relation] ?? []).map((relation) => ({ ...r, relation }))];
}

const GRANTABLE_TYPES = new Set(["folder", "report", "board", "dashboard", "workbook"]);

/**
 * A relationship and the cumulative ones sharegraph writes beside it, when
 * it is a grant or a workspace level: for relationships written by hand
 * (tests, fixtures) as the store would derive them.
 */
export function withCumulativeRelations(r: Relationship): Relationship[] {
  if (GRANTABLE_TYPES.has(r.resource.type)) return withCumulative(r, CUMULATIVE_ROLE_RELATIONS);
  if (r.resource.type === "workspace") return withCumulative(r, CUMULATIVE_WORKSPACE_RELATIONS);
  return [r];
}

type Derivations = { readonly [T in TableName]: (row: Row<T>) => Relationship[] };

export const derive: Derivations = {
  users: () => [],
  platform_admins: (r) => [rel("platform", PLATFORM_ID, "admin", "user", r.user_id)],
  organizations: (r) => [
    rel("organization", r.id, "platform", "platform", PLATFORM_ID),
    ...(r.channel_partner ? [rel("organization", r.id, "channel_partner", "user", "*")] : []),
  ],
  organization_members: (r) => [
    rel("organization", r.organization_id, "member", "user", r.user_id),
    ...(r.admin ? [rel("organization", r.organization_id, "admin", "user", r.user_id)] : []),
  ],
  groups: (r) => [
    rel("group", r.id, "organization", "organization", r.organization_id),
    // The group's stand-in (engine/group-subjects.ts) is a member of the group itself…
    rel("group", r.id, "member", "user", groupStandIn(r.id)),
  ],
  // Membership reaches the index through its closure (group_closure), so
  // that a check reads one relation per group instead of walking nested
  // groups (docs/PERFORMANCE.md, round 5): the rows as written imply nothing.
  group_members: () => [],
  group_closure: (r) =>
    r.user_id !== null
      ? [rel("group", r.group_id, "member", "user", r.user_id)]
      : r.member_group_id !== null
        ? // …and of every group containing it.
          [rel("group", r.group_id, "member", "user", groupStandIn(r.member_group_id))]
        : [],
  workspaces: (r) => [
    rel("workspace", r.id, "organization", "organization", r.organization_id),
    // The closure's reflexive part (the rest comes from workspace_ancestors).
    rel("workspace", r.id, "ancestor_or_self", "workspace", r.id),
    rel("workspace", r.id, "descendant_or_self", "workspace", r.id),
    rel("workspace", r.id, "relative", "workspace", r.id),
    ...(r.parent_id !== null
      ? [rel("workspace", r.id, "parent", "workspace", r.parent_id), rel("workspace", r.parent_id, "child", "workspace", r.id)]
      : []),
  ],
  workspace_ancestors: (r) => [
    rel("workspace", r.workspace_id, "ancestor_or_self", "workspace", r.ancestor_id),
    rel("workspace", r.ancestor_id, "descendant_or_self", "workspace", r.workspace_id),
    rel("workspace", r.workspace_id, "relative", "workspace", r.ancestor_id),
    rel("workspace", r.ancestor_id, "relative", "workspace", r.workspace_id),
  ],
  workspace_access: (r) => {
    const relation = r.kind === "level" && r.level ? WORKSPACE_LEVEL_RELATION[r.level] : r.kind;
    if (r.user_id !== null) return withCumulative(rel("workspace", r.workspace_id, relation, "user", r.user_id), CUMULATIVE_WORKSPACE_RELATIONS);
    if (r.group_id !== null) return withCumulative(rel("workspace", r.workspace_id, relation, "group", r.group_id, "member"), CUMULATIVE_WORKSPACE_RELATIONS);
    return [];
  },
  entities: (r) => [rel("entity", r.id, "organization", "organization", r.organization_id)],
  entity_members: (r) => [rel("entity", r.entity_id, "member", "user", r.user_id)],
  folders: (r) => [
    rel("folder", r.id, "workspace", "workspace", r.workspace_id),
    ...(r.parent_id !== null
      ? [rel("folder", r.id, "parent", "folder", r.parent_id), rel("folder", r.parent_id, "child_folder", "folder", r.id)]
      : []),
    ...(r.created_by !== null ? [rel("folder", r.id, "creator", "user", r.created_by)] : []),
  ],
  folder_ancestors: (r) => [rel("folder", r.folder_id, "ancestor", "folder", r.ancestor_id)],
  content: (r) => [
    rel(r.kind, r.id, "workspace", "workspace", r.workspace_id),
    ...(r.folder_id !== null
      ? [rel(r.kind, r.id, "folder", "folder", r.folder_id), rel("folder", r.folder_id, `child_${r.kind}`, r.kind, r.id)]
      : []),
    ...(r.created_by !== null ? [rel(r.kind, r.id, "creator", "user", r.created_by)] : []),
  ],
  grants: (r) => {
    // A content grant names its kind through the content row; the row keeps
    // the resource type so that the derivation needs no other row.
    const resource = r.folder_id !== null ? { type: "folder", id: r.folder_id } : { type: r.resource_type, id: r.content_id ?? "" };
    const written =
      r.user_id !== null ? rel(resource.type, resource.id, r.role, "user", r.user_id)
      : r.group_id !== null ? rel(resource.type, resource.id, r.role, "group", r.group_id, "member")
      : r.organization_id !== null ? rel(resource.type, resource.id, r.role, "organization", r.organization_id, "member")
      : undefined;
    return written ? withCumulative(written, CUMULATIVE_ROLE_RELATIONS) : [];
  },
  partnerships: (r) => [
    rel("partnership", r.id, "owner", "organization", r.owner_organization_id),
    rel("partnership", r.id, "partner", "organization", r.partner_organization_id),
  ],
  partner_shares: (r) => [rel(r.kind, r.content_id, "partner_share", "partnership", r.partnership_id)],
  channel_partnerships: (r) => [
    rel("organization", r.customer_organization_id, "channel_partnership", "channel_partnership", r.id),
    rel("channel_partnership", r.id, "customer", "organization", r.customer_organization_id),
    rel("channel_partnership", r.id, "partner", "organization", r.partner_organization_id),
  ],
  channel_partner_users: (r) => [rel("channel_partnership", r.channel_partnership_id, "partner_user", "user", r.user_id)],
  accounts: (r) => [rel("account", r.id, "owner", "organization", r.owner_organization_id)],
  services: (r) => [
    rel("service", r.id, "provider", "organization", r.provider_organization_id),
    // R33: the consumer link exists only while the service is active.
    ...(r.ended_at === null ? [rel("service", r.id, "consumer", "entity", r.consumer_entity_id)] : []),
  ],
  service_accounts: (r) => [
    rel("service_account", r.id, "service", "service", r.service_id),
    rel("account", r.account_id, "service_link", "service_account", r.id),
  ],
  account_assignments: (r) => [rel("service_account", r.service_account_id, "assignee", "user", r.user_id)],
  partner_invitations: () => [],
  partner_invitation_items: () => [],
  partner_domain_claims: () => [],
  notifications: () => [],
  outbox: () => [],
  server_keys: () => [],
};

export function deriveRow<T extends TableName>(table: T, row: Row<T>): Relationship[] {
  return (derive[table] as (row: Row<T>) => Relationship[])(row);
}

export function deriveRemoved(removed: readonly RemovedRow[]): Relationship[] {
  return removed.flatMap((r) => deriveRow(r.table, r.row));
}

export function deriveChanged(changed: readonly ChangedRow[]): { before: Relationship[]; after: Relationship[] } {
  return {
    before: changed.flatMap((c) => deriveRow(c.table, c.before)),
    after: changed.flatMap((c) => deriveRow(c.table, c.after)),
  };
}

/** Tables whose rows imply no relationship: not read at all by rebuild. */
const NO_RELATIONSHIPS = new Set<TableName>(["users", "group_members", "outbox", "partner_invitations", "partner_invitation_items", "partner_domain_claims", "notifications", "server_keys"]);

/** Every relationship the store implies (rebuild, reconcile). */
export async function deriveAll(tx: Repositories): Promise<Relationship[]> {
  const all: Relationship[] = [];
  for (const table of Object.keys(derive) as TableName[]) {
    if (NO_RELATIONSHIPS.has(table)) continue;
    for (const row of await tx.all(table)) all.push(...deriveRow(table, row));
  }
  return all;
}

/** The same relationships as deriveAll, a batch of rows at a time (rebuild: memory bounded by the batch). */
export async function* deriveBatches(tx: Repositories, rowsPerBatch = 5_000): AsyncGenerator<Relationship[]> {
  for (const table of Object.keys(derive) as TableName[]) {
    if (NO_RELATIONSHIPS.has(table)) continue;
    for await (const rows of tx.batches(table, rowsPerBatch)) yield rows.flatMap((row) => deriveRow(table, row));
  }
}
