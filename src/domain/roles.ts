import type { ContentKind, RoleName } from "../store/database.js";

/** Content roles, each including the one before [001][003]. */
export const ROLES: readonly RoleName[] = ["viewer", "sharer", "editor", "manager"];

export const CONTENT_KINDS: readonly ContentKind[] = ["report", "board", "dashboard", "workbook"];

export function isContentKind(type: string): type is ContentKind {
  return (CONTENT_KINDS as readonly string[]).includes(type);
}

export function rank(role: RoleName | undefined): number {
  return role === undefined ? 0 : ROLES.indexOf(role) + 1;
}

export function higher(a: RoleName | undefined, b: RoleName | undefined): RoleName | undefined {
  return rank(a) >= rank(b) ? a : b;
}

/** The permission that proves a subject holds at least this role (before workspace caps). */
export const GRANTED_PERMISSION: Readonly<Record<RoleName, string>> = {
  viewer: "granted_view",
  sharer: "granted_share",
  editor: "granted_edit",
  manager: "granted_manage",
};

/** The same, counting only grants on the object itself (no inheritance). */
export const DIRECT_PERMISSION: Readonly<Record<RoleName, string>> = {
  viewer: "direct_view",
  sharer: "direct_share",
  editor: "direct_edit",
  manager: "direct_manage",
};

/**
 * R5: the highest role an actor may hand out, from what they can do after
 * workspace caps: manage → anything, edit → up to editor, share → up to sharer.
 */
export function shareCeiling(can: { manage: boolean; edit: boolean; share: boolean }): RoleName | undefined {
  if (can.manage) return "manager";
  if (can.edit) return "editor";
  if (can.share) return "sharer";
  return undefined;
}
