import { useEffect, useId, useState, type FormEvent } from "react";
import { useQuery } from "@connectrpc/connect-query";
import { useMutation } from "@tanstack/react-query";
import { createClient } from "@connectrpc/connect";
import { Role, type SubjectRef } from "../../gen/sharegraph/v1/common_pb.js";
import { ContentService, ShareSource, type Share } from "../../gen/sharegraph/v1/content_service_pb.js";
import { DirectoryService } from "../../gen/sharegraph/v1/directory_service_pb.js";
import { PermissionService } from "../../gen/sharegraph/v1/permission_service_pb.js";
import { Outcome } from "../components/Outcome.js";
import { WriteButton } from "../components/WriteButton.js";
import { useSession } from "../session.js";

/*
 * The Share dialog (seeds 001 and 003) on a folder or an item: who has
 * access and where it comes from (ContentService/ListShares: direct, an
 * ancestor folder, the organization-wide default, the workspace, a
 * partner), sharing with users or groups (Share), the organization's
 * default role (SetOrganizationDefaultRole), changing a role and removing
 * access (Share, Unshare). Every call is made as the signed-in actor; the
 * server decides, and its refusals are shown in the dialog as it worded
 * them (R2: less than what a folder gives; R5: above your own level; R6:
 * not eligible).
 *
 * The role picker offers only roles up to the actor's own level (R5). The
 * level is the API's: CheckBulkPermissions of manage, edit and share on the
 * item for the actor (after workspace caps, as the server judges a Share).
 */

/** Something the dialog can be opened on. */
export interface Shareable {
  readonly ref: { readonly type: string; readonly id: string };
  readonly name: string;
  readonly workspaceId: string;
}

const ROLES: ReadonlyArray<{ role: Role; name: string; label: string }> = [
  { role: Role.VIEWER, name: "viewer", label: "Viewer (View)" },
  { role: Role.SHARER, name: "sharer", label: "Sharer (View & Share)" },
  { role: Role.EDITOR, name: "editor", label: "Editor (Edit & Share)" },
  { role: Role.MANAGER, name: "manager", label: "Manager" },
];

const roleName = (r: Role) => ROLES.find((x) => x.role === r)?.name ?? Role[r];

/** R5's levels, from what the API says the actor can do on the item: manage → manager, edit → editor, share → sharer. */
const LEVEL_CHECKS: ReadonlyArray<{ permission: string; role: Role }> = [
  { permission: "manage", role: Role.MANAGER },
  { permission: "edit", role: Role.EDITOR },
  { permission: "share", role: Role.SHARER },
];

function useActorLevel(item: Shareable) {
  const { actor } = useSession();
  const check = useQuery(PermissionService.method.checkBulkPermissions, {
    items: LEVEL_CHECKS.map(({ permission }) => ({ resource: item.ref, permission, subject: { type: "user", id: actor } })),
    consistency: { requirement: { case: "fullyConsistent", value: true } },
  });
  const ceiling = check.data ? (LEVEL_CHECKS.find((_, i) => check.data.results[i]?.allowed)?.role ?? Role.UNSPECIFIED) : undefined;
  return { check, ceiling };
}

export function ShareDialog({ item, onClose, onChanged }: { item: Shareable; onClose: () => void; onChanged: (token: string) => void }) {
  const { actor, readOnly } = useSession();
  const titleId = useId();
  const shares = useQuery(ContentService.method.listShares, { resource: item.ref });
  const workspace = useQuery(DirectoryService.method.getWorkspace, { workspaceId: item.workspaceId });
  const level = useActorLevel(item);
  const organizationId = workspace.data?.workspace?.organizationId ?? "";

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") onClose();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onClose]);

  // Up to the actor's level; with none, the pickers show every role, disabled.
  const upToLevel = ROLES.filter((r) => level.ceiling !== undefined && r.role <= level.ceiling);
  const allowed = upToLevel.length > 0 ? upToLevel : ROLES;
  const cannotShare =
    level.ceiling === Role.UNSPECIFIED ? `${actor} may not share this ${item.ref.type}: sharing needs at least the sharer role on it` : undefined;

  return (
    <div className="share-backdrop" onClick={(e) => e.target === e.currentTarget && onClose()}>
      <div className="share-dialog card" role="dialog" aria-modal="true" aria-labelledby={titleId} data-testid="share-dialog">
        <header className="share-head">
          <h3 id={titleId}>
            Share {item.name} <small>({item.ref.type})</small>
          </h3>
          <button type="button" onClick={onClose} aria-label="Close">
            ✕
          </button>
        </header>

        <Outcome pending={level.check.isPending} error={level.check.error} label={`Asking what ${actor} may share`}>
          <p className="share-level" data-testid="share-level">
            {cannotShare ?? (
              <>
                Your level: <strong>{roleName(level.ceiling ?? Role.UNSPECIFIED)}</strong> — {actor} can share up to{" "}
                {roleName(level.ceiling ?? Role.UNSPECIFIED)}.
              </>
            )}
          </p>
        </Outcome>
        {readOnly && (
          <p className="readonly-reason share-readonly" data-testid="share-readonly">
            Sharing, changing and removing are off: {readOnly}
          </p>
        )}

        <AddForm item={item} roles={allowed} organizationId={organizationId} disabledReason={cannotShare} onChanged={onChanged} />

        {organizationId && (
          <OrganizationRow
            item={item}
            organizationId={organizationId}
            shares={shares.data?.shares ?? []}
            roles={allowed}
            disabledReason={cannotShare}
            onChanged={onChanged}
          />
        )}

        <h4>Who has access</h4>
        <Outcome pending={shares.isPending} error={shares.error} label="Listing who has access">
          {shares.data && <SharesTable item={item} shares={shares.data.shares} roles={allowed} disabledReason={cannotShare} onChanged={onChanged} />}
        </Outcome>
        <p className="hint share-note">
          The contents of a folder inherit its roles: a role inherited from a folder is changed on that folder, and a role given here can be more
          permissive than the inherited one, not less.
        </p>
      </div>
    </div>
  );
}

/** A user, or a group's members (group#member). */
function subjectOf(type: string, id: string): { type: string; id: string; relation: string } {
  return { type, id, relation: type === "user" ? "" : "member" };
}

function RolePicker({ roles, value, onChange, label, disabled }: { roles: typeof ROLES; value: Role; onChange: (r: Role) => void; label: string; disabled: boolean }) {
  return (
    <select aria-label={label} value={value} onChange={(e) => onChange(Number(e.target.value) as Role)} disabled={disabled}>
      {roles.map((r) => (
        <option key={r.role} value={r.role}>
          {r.label}
        </option>
      ))}
    </select>
  );
}

/** Seed 001: "Share with users or groups", a role, Share. */
function AddForm({
  item,
  roles,
  organizationId,
  disabledReason,
  onChanged,
}: {
  item: Shareable;
  roles: typeof ROLES;
  organizationId: string;
  disabledReason: string | undefined;
  onChanged: (token: string) => void;
}) {
  const { actor, transport, readOnly } = useSession();
  const [kind, setKind] = useState<"user" | "group">("user");
  const [id, setId] = useState("");
  const [role, setRole] = useState(Role.VIEWER);
  const listId = useId();
  const users = useQuery(DirectoryService.method.listUsers, { query: kind === "user" ? id.trim() : "", page: { pageSize: 20 } }, { enabled: kind === "user" });
  const groups = useQuery(DirectoryService.method.listGroups, { organizationId, page: { pageSize: 100 } }, { enabled: kind === "group" && organizationId !== "" });
  const share = useMutation({
    mutationFn: (v: { kind: string; id: string; role: Role }) =>
      createClient(ContentService, transport).share({ actor, resource: item.ref, subject: subjectOf(v.kind, v.id), role: v.role }),
    onSuccess: (r) => onChanged(r.consistencyToken),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    share.mutate({ kind, id: id.trim(), role });
  };
  const off = readOnly !== undefined || disabledReason !== undefined;
  return (
    <form className="share-add" aria-label="share with users or groups" onSubmit={submit}>
      <select aria-label="share with" value={kind} onChange={(e) => setKind(e.target.value as "user" | "group")} disabled={off}>
        <option value="user">user</option>
        <option value="group">group</option>
      </select>
      <input
        aria-label="user or group id"
        placeholder="Share with users or groups"
        list={listId}
        value={id}
        onChange={(e) => setId(e.target.value)}
        disabled={off}
        required
      />
      <datalist id={listId}>
        {kind === "user"
          ? users.data?.users.map((u) => (
              <option key={u.id} value={u.id}>
                {u.displayName}
              </option>
            ))
          : groups.data?.groups.map((g) => (
              <option key={g.id} value={g.id}>
                {g.name}
              </option>
            ))}
      </datalist>
      <RolePicker roles={roles} value={role} onChange={setRole} label="access role" disabled={off} />
      <WriteButton type="submit" disabled={share.isPending || disabledReason !== undefined || id.trim() === ""}>
        Share
      </WriteButton>
      <div className="share-outcome" aria-live="polite">
        <Outcome pending={share.isPending} error={share.error} label="Sharing">
          {share.data && share.variables && (
            <span className="note" data-testid="share-result">
              {share.data.noOp
                ? `nothing changed: ${share.variables.kind} ${share.variables.id} already has ${roleName(share.variables.role)} here (granted or inherited)`
                : `shared with ${share.variables.kind} ${share.variables.id} as ${roleName(share.variables.role)}`}
            </span>
          )}
        </Outcome>
      </div>
    </form>
  );
}

/** Seed 001: the organization-wide default role ("Organization" field of the Share modal). */
function OrganizationRow({
  item,
  organizationId,
  shares,
  roles,
  disabledReason,
  onChanged,
}: {
  item: Shareable;
  organizationId: string;
  shares: readonly Share[];
  roles: typeof ROLES;
  disabledReason: string | undefined;
  onChanged: (token: string) => void;
}) {
  const { actor, transport, readOnly } = useSession();
  const organization = useQuery(DirectoryService.method.getOrganization, { organizationId });
  const current = shares.find((s) => s.source === ShareSource.DIRECT && s.subject?.type === "organization" && s.subject.id === organizationId)?.role ?? Role.UNSPECIFIED;
  const [role, setRole] = useState<Role>(current);
  useEffect(() => setRole(current), [current]);
  const set = useMutation({
    mutationFn: (r: Role) => createClient(ContentService, transport).setOrganizationDefaultRole({ actor, resource: item.ref, role: r }),
    onSuccess: (r) => onChanged(r.consistencyToken),
  });
  const off = readOnly !== undefined || disabledReason !== undefined;
  return (
    <form
      className="share-org"
      aria-label="organization default role"
      onSubmit={(e) => {
        e.preventDefault();
        set.mutate(role);
      }}
    >
      <span>
        Organization <strong>{organization.data?.organization?.name ?? organizationId}</strong>: everyone in it gets
      </span>
      <select aria-label="organization role" value={role} onChange={(e) => setRole(Number(e.target.value) as Role)} disabled={off}>
        <option value={Role.UNSPECIFIED}>No access</option>
        {roles.map((r) => (
          <option key={r.role} value={r.role}>
            {r.label}
          </option>
        ))}
      </select>
      <WriteButton type="submit" disabled={set.isPending || disabledReason !== undefined || role === current}>
        Set
      </WriteButton>
      <Outcome pending={set.isPending} error={set.error} label="Setting the organization's role" />
    </form>
  );
}

function subjectLabel(s: SubjectRef | undefined): string {
  return s ? `${s.type} ${s.id}` : "?";
}

/** Where a share comes from, in the words of ListShares' source. */
function sourceLabel(s: Share): string {
  const orgWide = s.subject?.type === "organization";
  switch (s.source) {
    case ShareSource.DIRECT:
      return orgWide ? "organization default, on this item" : "direct";
    case ShareSource.FOLDER:
      return `${orgWide ? "organization default, " : ""}inherited from folder "${s.sourceName}"`;
    case ShareSource.WORKSPACE:
      if (s.sourceObject?.type === "organization") return `admin of organization "${s.sourceName}"`;
      return s.role === Role.MANAGER ? `MANAGE on workspace "${s.sourceName}"` : `guest of workspace "${s.sourceName}"`;
    case ShareSource.PARTNER:
      return `partner "${s.sourceName}"`;
    default:
      return "unknown";
  }
}

function SharesTable({
  item,
  shares,
  roles,
  disabledReason,
  onChanged,
}: {
  item: Shareable;
  shares: readonly Share[];
  roles: typeof ROLES;
  disabledReason: string | undefined;
  onChanged: (token: string) => void;
}) {
  if (shares.length === 0) return <p className="hint">Nobody has access yet.</p>;
  return (
    <table className="content-table share-table" aria-label="who has access">
      <thead>
        <tr>
          <th>User or group</th>
          <th>Role</th>
          <th>Source</th>
          <th>Granted by</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {shares.map((s, i) => (
          <ShareRow key={`${s.source}:${s.sourceObject?.type}:${s.sourceObject?.id}:${subjectLabel(s.subject)}:${i}`} item={item} share={s} roles={roles} disabledReason={disabledReason} onChanged={onChanged} />
        ))}
      </tbody>
    </table>
  );
}

/** A share: a direct one can be changed or removed here; an inherited one is changed where it comes from. */
function ShareRow({
  item,
  share,
  roles,
  disabledReason,
  onChanged,
}: {
  item: Shareable;
  share: Share;
  roles: typeof ROLES;
  disabledReason: string | undefined;
  onChanged: (token: string) => void;
}) {
  const { actor, transport, readOnly } = useSession();
  const [role, setRole] = useState(share.role);
  useEffect(() => setRole(share.role), [share.role]);
  const client = createClient(ContentService, transport);
  const subject = share.subject;
  const change = useMutation({
    mutationFn: (r: Role) => client.share({ actor, resource: item.ref, ...(subject ? { subject } : {}), role: r }),
    onSuccess: (r) => onChanged(r.consistencyToken),
  });
  const remove = useMutation({
    mutationFn: () => client.unshare({ actor, resource: item.ref, ...(subject ? { subject } : {}) }),
    onSuccess: (r) => onChanged(r.consistencyToken),
  });
  const direct = share.source === ShareSource.DIRECT;
  const off = readOnly !== undefined || disabledReason !== undefined;
  // A direct grant above the actor's level still shows its own role in the picker.
  const choices = roles.some((r) => r.role === share.role) ? roles : [...roles, ...ROLES.filter((r) => r.role === share.role)];
  const label = subjectLabel(subject);
  return (
    <>
      <tr data-testid={`share:${label}`} data-source={ShareSource[share.source]}>
        <td>{label}</td>
        <td>
          {direct ? (
            <RolePicker roles={choices} value={role} onChange={setRole} label={`role of ${label}`} disabled={off || change.isPending} />
          ) : (
            roleName(share.role)
          )}
        </td>
        <td className="share-source">{sourceLabel(share)}</td>
        <td>{share.grantedBy}</td>
        <td className="content-actions">
          {direct && (
            <>
              <WriteButton type="button" onClick={() => change.mutate(role)} disabled={role === share.role || change.isPending || disabledReason !== undefined} aria-label={`Change ${label}`}>
                Change
              </WriteButton>
              <WriteButton type="button" onClick={() => remove.mutate()} disabled={remove.isPending || disabledReason !== undefined} aria-label={`Remove ${label}`}>
                Remove
              </WriteButton>
            </>
          )}
        </td>
      </tr>
      {(change.isPending || change.error || remove.isPending || remove.error) && (
        <tr className="share-row-outcome">
          <td colSpan={5}>
            <Outcome pending={change.isPending} error={change.error} label="Changing the role" />
            <Outcome pending={remove.isPending} error={remove.error} label="Removing access" />
          </td>
        </tr>
      )}
    </>
  );
}
