import { useEffect, useState, type FormEvent } from "react";
import { skipToken, useMutation, useQueryClient } from "@tanstack/react-query";
import { useQuery } from "@connectrpc/connect-query";
import { createClient } from "@connectrpc/connect";
import { PartnerService, type Partner, type PartnerInvitation } from "../../gen/sharegraph/v1/partner_service_pb.js";
import { Busy, ErrorMessage, Outcome } from "../components/Outcome.js";
import { itemKey, useOrgReportsAndBoards, useSharedWithPartner, type ShareableItem } from "../components/PartnersCatalog.js";
import { OrgPicker } from "../components/PartnersOrgPicker.js";
import { WriteButton } from "../components/WriteButton.js";
import { useSession } from "../session.js";
import "./partners.css";

/*
 * Seed 000's "Partner share access" tab, for the actor's organization (one
 * they manage): the active partner organizations with how many reports and
 * boards each can see, pending invitations below (PartnerService/
 * ListPartners); Add Partner (InvitePartner: an email and the reports/boards
 * to share, or more items for an existing partner); the Manage menu of each
 * partner: Manage shared reports / Manage shared boards (SetPartnerShares
 * with kinds, so one leaves the other alone) and Remove partner
 * (RemovePartner, after a confirmation); a pending invitation can be revoked.
 */

type Managing = { partner: Partner; what: "report" | "board" | "remove" };

export function PartnerShareAccess() {
  const [org, setOrg] = useState("");
  const [search, setSearch] = useState("");
  const [adding, setAdding] = useState(false);
  const [managing, setManaging] = useState<Managing>();
  const list = useQuery(PartnerService.method.listPartners, org ? { ownerOrganizationId: org, query: search.trim() } : skipToken);

  return (
    <section aria-labelledby="partners-title" className="partners">
      <h2 id="partners-title">Partner share access</h2>
      <p className="hint">
        A view-only connection to chosen reports and boards for someone outside your organization. Once they accept, they create their own organization
        and immediately get access to what you shared; they can explore but never save.
      </p>
      <div className="partners-bar">
        <OrgPicker
          label="Your organization"
          permission="manage"
          value={org}
          onChange={(id) => {
            setOrg(id);
            setManaging(undefined);
          }}
        />
        <input aria-label="Search partners" type="search" placeholder="Search partners" value={search} onChange={(e) => setSearch(e.target.value)} />
        <WriteButton type="button" className="primary" onClick={() => setAdding(true)} disabled={!org || adding}>
          Add Partner
        </WriteButton>
      </div>
      {adding && org && <InviteForm org={org} partners={list.data?.partners ?? []} onClose={() => setAdding(false)} />}
      <Outcome pending={org !== "" && list.isPending} error={list.error} label="Loading partners">
        {list.data && (
          <>
            <h3>Partners</h3>
            {list.data.partners.length === 0 ? (
              <p className="note">{search ? "No partner organization matches." : "No partner organizations yet: click Add Partner."}</p>
            ) : (
              <table className="partners-table" aria-label="partners">
                <thead>
                  <tr>
                    <th>Partner organization</th>
                    <th>Shared reports</th>
                    <th>Shared boards</th>
                    <th aria-label="actions" />
                  </tr>
                </thead>
                <tbody>
                  {list.data.partners.map((p) => (
                    <tr key={p.organizationId} data-partner={p.organizationId}>
                      <td title={`organization ${p.organizationId}, partner since ${p.since}`}>{p.organizationName}</td>
                      <td data-col="reports">{p.sharedReports}</td>
                      <td data-col="boards">{p.sharedBoards}</td>
                      <td>
                        <ManageMenu partner={p} onChoose={setManaging} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            {managing && managing.what !== "remove" && (
              <ManageShares
                key={`${managing.partner.organizationId}-${managing.what}`}
                org={org}
                partner={managing.partner}
                kind={managing.what}
                onClose={() => setManaging(undefined)}
              />
            )}
            {managing?.what === "remove" && <RemovePartner org={org} partner={managing.partner} onClose={() => setManaging(undefined)} />}
            <h3>Pending invitations</h3>
            <PendingInvitations invitations={list.data.pendingInvitations} />
          </>
        )}
      </Outcome>
    </section>
  );
}

function ManageMenu({ partner, onChoose }: { partner: Partner; onChoose: (m: Managing) => void }) {
  const [open, setOpen] = useState(false);
  const choose = (what: Managing["what"]) => {
    setOpen(false);
    onChoose({ partner, what });
  };
  return (
    <div className="partners-menu">
      <button type="button" aria-haspopup="menu" aria-expanded={open} onClick={() => setOpen(!open)} aria-label={`Manage ${partner.organizationName}`}>
        Manage ▾
      </button>
      {open && (
        <div role="menu" className="partners-menu-items">
          <button type="button" role="menuitem" onClick={() => choose("report")}>
            Manage shared reports
          </button>
          <button type="button" role="menuitem" onClick={() => choose("board")}>
            Manage shared boards
          </button>
          <button type="button" role="menuitem" className="danger" onClick={() => choose("remove")}>
            Remove partner
          </button>
        </div>
      )}
    </div>
  );
}

function useRefreshPartners() {
  const queryClient = useQueryClient();
  return () => queryClient.invalidateQueries();
}

/** Add Partner: a new partner by email (an invitation), or more items for an existing partner. */
function InviteForm({ org, partners, onClose }: { org: string; partners: readonly Partner[]; onClose: () => void }) {
  const { actor, transport } = useSession();
  const catalog = useOrgReportsAndBoards(org);
  const [target, setTarget] = useState("");
  const [email, setEmail] = useState("");
  const [chosen, setChosen] = useState<ReadonlySet<string>>(new Set());
  const refresh = useRefreshPartners();
  const invite = useMutation({
    mutationFn: () => {
      const items = (catalog.data ?? []).filter((i) => chosen.has(itemKey(i))).map((i) => ({ type: i.type, id: i.id }));
      return createClient(PartnerService, transport).invitePartner({
        actor,
        ownerOrganizationId: org,
        ...(target ? { partnerOrganizationId: target } : { email: email.trim() }),
        items,
      });
    },
    onSuccess: () => {
      setChosen(new Set());
      setEmail("");
      void refresh();
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    invite.mutate();
  };
  const existing = partners.find((p) => p.organizationId === target);
  return (
    <form className="card partners-invite" aria-label="Add Partner" onSubmit={submit}>
      <h3>Share with a partner</h3>
      <label>
        Partner
        <select aria-label="Partner" value={target} onChange={(e) => setTarget(e.target.value)}>
          <option value="">A new partner (by email)</option>
          {partners.map((p) => (
            <option key={p.organizationId} value={p.organizationId}>
              {p.organizationName}
            </option>
          ))}
        </select>
      </label>
      {!target && (
        <label>
          Partner&apos;s email address
          <input aria-label="Partner's email address" type="email" value={email} onChange={(e) => setEmail(e.target.value)} placeholder="jordan@client.example" required />
        </label>
      )}
      <fieldset className="partners-picker">
        <legend>Select which reports and boards to share</legend>
        <Outcome pending={catalog.isPending} error={catalog.error} label="Loading reports and boards">
          <ItemChecklist items={catalog.data ?? []} checked={chosen} onChange={setChosen} />
        </Outcome>
      </fieldset>
      <div className="partners-actions">
        <WriteButton type="submit" disabled={invite.isPending || chosen.size === 0}>
          {target ? "Share" : "Send invitation"}
        </WriteButton>
        <button type="button" onClick={onClose}>
          Close
        </button>
        <Busy pending={invite.isPending} label={target ? "Sharing" : "Sending invitation"} />
      </div>
      {invite.error ? <ErrorMessage error={invite.error} /> : null}
      {invite.data?.invitation && (
        <div className="partners-done" role="status" data-testid="invite-outcome">
          Invitation sent to <strong>{invite.data.invitation.email}</strong>: {invite.data.invitation.status}, with {invite.data.invitation.items.length}{" "}
          item(s). They get access once they accept.
          <details>
            <summary>Invitation token (returned once; mailed to them when the server sends mail)</summary>
            <code data-testid="invitation-token">{invite.data.invitationToken}</code>
          </details>
        </div>
      )}
      {invite.data?.partner && (
        <div className="partners-done" role="status" data-testid="invite-outcome">
          Shared with <strong>{invite.data.partner.organizationName}</strong> at once: {invite.data.partner.sharedReports} report(s),{" "}
          {invite.data.partner.sharedBoards} board(s) in all.
        </div>
      )}
      {existing && <p className="note">Items already shared with {existing.organizationName} stay shared.</p>}
    </form>
  );
}

function ItemChecklist({ items, checked, onChange }: { items: readonly ShareableItem[]; checked: ReadonlySet<string>; onChange: (next: ReadonlySet<string>) => void }) {
  if (items.length === 0) return <p className="note">This organization has no reports or boards.</p>;
  const toggle = (key: string, on: boolean) => {
    const next = new Set(checked);
    if (on) next.add(key);
    else next.delete(key);
    onChange(next);
  };
  return (
    <ul className="partners-checklist">
      {items.map((i) => (
        <li key={itemKey(i)}>
          <label className="inline">
            <input type="checkbox" checked={checked.has(itemKey(i))} onChange={(e) => toggle(itemKey(i), e.target.checked)} />
            <span>
              {i.name} <small>({i.type} {i.id})</small>
            </span>
            <small className="partners-where">{i.where}</small>
          </label>
        </li>
      ))}
    </ul>
  );
}

/** Manage shared reports / boards: toggles, saved with SetPartnerShares(kinds: [kind]). */
function ManageShares({ org, partner, kind, onClose }: { org: string; partner: Partner; kind: "report" | "board"; onClose: () => void }) {
  const { actor, transport } = useSession();
  const catalog = useOrgReportsAndBoards(org);
  const items = catalog.data?.filter((i) => i.type === kind);
  const shared = useSharedWithPartner(partner.organizationId, items);
  const [checked, setChecked] = useState<ReadonlySet<string>>();
  useEffect(() => {
    if (shared.data && checked === undefined) setChecked(shared.data);
  }, [shared.data, checked]);
  const refresh = useRefreshPartners();
  const save = useMutation({
    mutationFn: () =>
      createClient(PartnerService, transport).setPartnerShares({
        actor,
        ownerOrganizationId: org,
        partnerOrganizationId: partner.organizationId,
        items: (items ?? []).filter((i) => checked?.has(itemKey(i))).map((i) => ({ type: i.type, id: i.id })),
        kinds: [kind],
      }),
    onSuccess: () => void refresh(),
  });
  const plural = kind === "report" ? "reports" : "boards";
  return (
    <form
      className="card"
      aria-label={`Manage shared ${plural}`}
      onSubmit={(e) => {
        e.preventDefault();
        save.mutate();
      }}
    >
      <h3>
        Manage shared {plural}: {partner.organizationName}
      </h3>
      <p className="note">Toggle which {plural} this partner can access. Its other shares stay as they are.</p>
      <Outcome pending={catalog.isPending || shared.isPending || checked === undefined} error={catalog.error ?? shared.error} label={`Loading ${plural}`}>
        {checked && <ItemChecklist items={items ?? []} checked={checked} onChange={setChecked} />}
      </Outcome>
      <div className="partners-actions">
        <WriteButton type="submit" disabled={save.isPending || checked === undefined}>
          Save
        </WriteButton>
        <button type="button" onClick={onClose}>
          Close
        </button>
        <Busy pending={save.isPending} label="Saving" />
      </div>
      {save.error ? <ErrorMessage error={save.error} /> : null}
      {save.data?.partner && (
        <div className="partners-done" role="status">
          Saved: {partner.organizationName} can now access {kind === "report" ? save.data.partner.sharedReports : save.data.partner.sharedBoards} {plural}.
        </div>
      )}
    </form>
  );
}

/** Remove partner, with a confirmation step. */
function RemovePartner({ org, partner, onClose }: { org: string; partner: Partner; onClose: () => void }) {
  const { actor, transport } = useSession();
  const refresh = useRefreshPartners();
  const remove = useMutation({
    mutationFn: () => createClient(PartnerService, transport).removePartner({ actor, ownerOrganizationId: org, partnerOrganizationId: partner.organizationId }),
    onSuccess: () => void refresh(),
  });
  if (remove.isSuccess)
    return (
      <div className="card partners-done" role="status">
        Removed {partner.organizationName}: its members lost access to every shared report and board.{" "}
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
    );
  return (
    <div className="card partners-confirm" role="alertdialog" aria-label="Remove partner">
      <p>
        Remove partner <strong>{partner.organizationName}</strong>? Its access to {partner.sharedReports} report(s) and {partner.sharedBoards} board(s)
        is revoked immediately.
      </p>
      <div className="partners-actions">
        <WriteButton type="button" className="danger" onClick={() => remove.mutate()} disabled={remove.isPending}>
          Yes, remove partner
        </WriteButton>
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        <Busy pending={remove.isPending} label="Removing" />
      </div>
      {remove.error ? <ErrorMessage error={remove.error} /> : null}
    </div>
  );
}

function PendingInvitations({ invitations }: { invitations: readonly PartnerInvitation[] }) {
  if (invitations.length === 0) return <p className="note">No pending invitations.</p>;
  return (
    <table className="partners-table" aria-label="pending invitations">
      <thead>
        <tr>
          <th>Email</th>
          <th>Shared</th>
          <th>Invited by</th>
          <th>Status</th>
          <th aria-label="actions" />
        </tr>
      </thead>
      <tbody>
        {invitations.map((i) => (
          <tr key={i.id} data-invitation={i.email}>
            <td>{i.email}</td>
            <td>{describeItems(i.items)}</td>
            <td>{i.invitedBy}</td>
            <td title={`expires ${i.expiresAt}`}>{i.status}</td>
            <td>
              <RevokeInvitation invitation={i} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function RevokeInvitation({ invitation }: { invitation: PartnerInvitation }) {
  const { actor, transport } = useSession();
  const refresh = useRefreshPartners();
  const revoke = useMutation({
    mutationFn: () => createClient(PartnerService, transport).revokeInvitation({ actor, invitationId: invitation.id }),
    onSuccess: () => void refresh(),
  });
  return (
    <>
      <WriteButton type="button" className="link-button" onClick={() => revoke.mutate()} disabled={revoke.isPending} aria-label={`Revoke invitation ${invitation.email}`}>
        {revoke.isPending ? "Revoking …" : "Revoke"}
      </WriteButton>
      {revoke.error ? <ErrorMessage error={revoke.error} /> : null}
    </>
  );
}

function describeItems(items: readonly { type: string; id: string }[]): string {
  const reports = items.filter((i) => i.type === "report").length;
  const boards = items.filter((i) => i.type === "board").length;
  return `${reports} report${reports === 1 ? "" : "s"}, ${boards} board${boards === 1 ? "" : "s"} (${items.map((i) => i.id).join(", ")})`;
}
