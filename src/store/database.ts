import type { ColumnType, Generated, Insertable, Selectable, Updateable } from "kysely";

/** Timestamps are written by Postgres (default now()) and read as Date. */
type CreatedAt = ColumnType<Date, Date | undefined, never>;

export interface UsersTable {
  id: string;
  email: string;
  display_name: Generated<string>;
  created_at: CreatedAt;
}

export interface PlatformAdminsTable {
  user_id: string;
}

export interface OrganizationsTable {
  id: string;
  name: string;
  channel_partner: Generated<boolean>;
  created_at: CreatedAt;
}

export interface OrganizationMembersTable {
  organization_id: string;
  user_id: string;
  admin: Generated<boolean>;
  created_at: CreatedAt;
}

export interface GroupsTable {
  id: string;
  organization_id: string;
  name: string;
  created_at: CreatedAt;
}

/** Exactly one of user_id / member_group_id is set. */
export interface GroupMembersTable {
  id: Generated<number>;
  group_id: string;
  user_id: string | null;
  member_group_id: string | null;
  created_at: CreatedAt;
}

/**
 * The closure of group_members: every user (user_id) and every group
 * (member_group_id) that is a member of group_id directly or through nested
 * groups; exactly one of the two is set. Kept by store/groups.ts.
 */
export interface GroupClosureTable {
  group_id: string;
  user_id: string | null;
  member_group_id: string | null;
}

export interface WorkspacesTable {
  id: string;
  organization_id: string;
  parent_id: string | null;
  name: string;
  created_at: CreatedAt;
}

export type WorkspaceAccessKind = "level" | "guest" | "see";
export type WorkspaceLevelName = "view" | "analyze" | "manage";

/** A subject's standing in a workspace: a level, guest, or SEE. Exactly one of user_id / group_id. */
export interface WorkspaceAccessTable {
  id: Generated<number>;
  workspace_id: string;
  kind: WorkspaceAccessKind;
  level: WorkspaceLevelName | null;
  user_id: string | null;
  group_id: string | null;
  created_at: CreatedAt;
}

export interface EntitiesTable {
  id: string;
  organization_id: string;
  name: string;
  created_at: CreatedAt;
}

export interface EntityMembersTable {
  entity_id: string;
  user_id: string;
  created_at: CreatedAt;
}

export interface FoldersTable {
  id: string;
  workspace_id: string;
  parent_id: string | null;
  name: string;
  created_by: string | null;
  created_at: CreatedAt;
}

/** One row per (folder, ancestor): the closure of folders.parent_id. */
export interface FolderAncestorsTable {
  folder_id: string;
  ancestor_id: string;
  /** 1 for the parent, 2 for the grandparent, … */
  depth: number;
}

/** One row per (workspace, ancestor): the closure of workspaces.parent_id. */
export interface WorkspaceAncestorsTable {
  workspace_id: string;
  ancestor_id: string;
  /** 1 for the parent, 2 for the grandparent, … */
  depth: number;
}

export type ContentKind = "report" | "board" | "dashboard" | "workbook";

export interface ContentTable {
  id: string;
  kind: ContentKind;
  workspace_id: string;
  folder_id: string | null;
  name: string;
  created_by: string | null;
  created_at: CreatedAt;
}

export type RoleName = "viewer" | "sharer" | "editor" | "manager";

/** A role on a folder or a content item, for a user, a group or a whole organization. */
export interface GrantsTable {
  id: Generated<number>;
  resource_type: "folder" | ContentKind;
  folder_id: string | null;
  content_id: string | null;
  user_id: string | null;
  group_id: string | null;
  organization_id: string | null;
  role: RoleName;
  granted_by: string | null;
  created_at: CreatedAt;
}

export interface PartnershipsTable {
  id: string;
  owner_organization_id: string;
  partner_organization_id: string;
  created_at: CreatedAt;
}

export type PartnerShareKind = "report" | "board";

export interface PartnerSharesTable {
  partnership_id: string;
  content_id: string;
  kind: PartnerShareKind;
  created_at: CreatedAt;
}

/** Channel partners [004]: a customer organization and one channel-partner organization. */
export interface ChannelPartnershipsTable {
  id: string;
  customer_organization_id: string;
  partner_organization_id: string;
  created_at: CreatedAt;
}

/** A user of the partner organization the customer added (R20). */
export interface ChannelPartnerUsersTable {
  channel_partnership_id: string;
  user_id: string;
  created_at: CreatedAt;
}

/** An account owned by a (provider) organization [002]. */
export interface AccountsTable {
  id: string;
  owner_organization_id: string;
  name: string;
  created_at: CreatedAt;
}

/** A service relationship [002]: provider organization → consumer entity; ended_at set once ended. */
export interface ServicesTable {
  id: string;
  name: string;
  provider_organization_id: string;
  consumer_entity_id: string;
  ended_at: Date | null;
  created_at: CreatedAt;
}

/** An account included in a service; id "<service_id>/<account_id>". */
export interface ServiceAccountsTable {
  id: string;
  service_id: string;
  account_id: string;
  created_at: CreatedAt;
}

/** A user of the consumer entity assigned to an account of a service (R31). */
export interface AccountAssignmentsTable {
  service_account_id: string;
  user_id: string;
  created_at: CreatedAt;
}

export type InvitationStatus = "pending" | "accepted" | "revoked" | "expired";

export interface PartnerInvitationsTable {
  id: string;
  owner_organization_id: string;
  email: string;
  token_hash: string;
  status: InvitationStatus;
  invited_by: string | null;
  expires_at: Date;
  accepted_at: Date | null;
  accepted_by: string | null;
  partner_organization_id: string | null;
  created_at: CreatedAt;
}

export interface PartnerInvitationItemsTable {
  invitation_id: string;
  content_id: string;
}

export interface PartnerDomainClaimsTable {
  id: Generated<number>;
  owner_organization_id: string;
  claim_key: string;
  email: string;
  invitation_id: string | null;
  partnership_id: string | null;
  created_at: CreatedAt;
}

export type NotificationStatus = "pending" | "sent" | "failed";

export interface NotificationsTable {
  id: Generated<number>;
  kind: string;
  recipient: string;
  subject: string;
  body: string;
  status: Generated<NotificationStatus>;
  attempts: Generated<number>;
  last_error: string | null;
  next_attempt_at: Generated<Date>;
  sent_at: Date | null;
  created_at: CreatedAt;
  /** A secret the mail needs and the listing must not show (an invitation token), sealed with the server key; erased once delivered. */
  secret: string | null;
}

/** The deployment's server key (migration 0005): one row, "master". */
export interface ServerKeysTable {
  name: string;
  secret: string;
  created_at: CreatedAt;
}

/** One committed domain change's relationship updates, applied to SpiceDB in id order. */
export interface OutboxTable {
  id: Generated<number>;
  ops: ColumnType<OutboxOp[], string, string>;
  op_count: number;
  created_at: CreatedAt;
  applied_at: Date | null;
  attempts: Generated<number>;
  last_error: string | null;
  zed_token: string | null;
}

/** A relationship update as stored in the outbox: "t" touch / "d" delete, and the relationship as text. */
export interface OutboxOp {
  readonly o: "t" | "d";
  readonly r: string;
}

export interface Database {
  users: UsersTable;
  platform_admins: PlatformAdminsTable;
  organizations: OrganizationsTable;
  organization_members: OrganizationMembersTable;
  groups: GroupsTable;
  group_members: GroupMembersTable;
  group_closure: GroupClosureTable;
  workspaces: WorkspacesTable;
  workspace_access: WorkspaceAccessTable;
  workspace_ancestors: WorkspaceAncestorsTable;
  entities: EntitiesTable;
  entity_members: EntityMembersTable;
  folders: FoldersTable;
  folder_ancestors: FolderAncestorsTable;
  content: ContentTable;
  grants: GrantsTable;
  partnerships: PartnershipsTable;
  partner_shares: PartnerSharesTable;
  partner_invitations: PartnerInvitationsTable;
  partner_invitation_items: PartnerInvitationItemsTable;
  partner_domain_claims: PartnerDomainClaimsTable;
  channel_partnerships: ChannelPartnershipsTable;
  channel_partner_users: ChannelPartnerUsersTable;
  accounts: AccountsTable;
  services: ServicesTable;
  service_accounts: ServiceAccountsTable;
  account_assignments: AccountAssignmentsTable;
  notifications: NotificationsTable;
  outbox: OutboxTable;
  server_keys: ServerKeysTable;
}

export type TableName = keyof Database;
export type Row<T extends TableName> = Selectable<Database[T]>;
export type NewRow<T extends TableName> = Insertable<Database[T]>;
export type RowUpdate<T extends TableName> = Updateable<Database[T]>;
