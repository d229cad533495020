import { useEffect, useState, type FormEvent, type ReactNode } from "react";
import { skipToken, useMutation, useQueryClient } from "@tanstack/react-query";
import { useQuery } from "@connectrpc/connect-query";
import { createClient } from "@connectrpc/connect";
import { DirectoryService } from "../../gen/sharegraph/v1/directory_service_pb.js";
import { PartnerService, type ChannelPartner } from "../../gen/sharegraph/v1/partner_service_pb.js";
import { Busy, ErrorMessage, Outcome } from "../components/Outcome.js";
import { Pager, usePager } from "../components/Pager.js";
import { OrgPicker } from "../components/PartnersOrgPicker.js";
import { WriteButton } from "../components/WriteButton.js";
import { useSession } from "../session.js";
import "./partners.css";

/*
 * Seed 004's Partners tab, for a customer organization the actor belongs to:
 * the Partners table (PartnerService/ListChannelPartners: searchable by
 * organization name, paged with its cursors) with the "Added users" column;
 * the "Add a Partner" sidebar (AddChannelPartnerUsers: an individual user by
 * email, or an existing partner organization — DirectoryService/
 * ListOrganizations with channel_partners_only — and its users,
 * ListChannelPartnerUsers); the row's actions: "Edit partner access"
 * (checkboxes; SetChannelPartnerUsers) and "Remove partner access"
 * (RemoveChannelPartner, after "Yes, remove access").
 */

const PAGE_SIZE = 20;

type Panel = { kind: "add" } | { kind: "edit"; partner: ChannelPartner } | { kind: "remove"; partner: ChannelPartner };

export function ChannelPartners() {
  const [org, setOrg] = useState("");
  const [search, setSearch] = useState("");
  const [panel, setPanel] = useState<Panel>();
  const [confirmation, setConfirmation] = useState<string>();
  const pager = usePager();
  const list = useQuery(
    PartnerService.method.listChannelPartners,
    org ? { customerOrganizationId: org, query: search.trim(), page: { pageSize: PAGE_SIZE, pageToken: pager.token } } : skipToken,
  );
  const done = (message: string) => {
    setConfirmation(message);
    setPanel(undefined);
  };

  return (
    <section aria-labelledby="channel-title" className="partners">
      <h2 id="channel-title">Partners</h2>
      <p className="hint">
        Partner organizations you have granted access to your insights; their added users see your metrics on their Partner Dashboard. Access ends
        automatically when a user leaves the partner organization or it is no longer a channel partner.
      </p>
      <div className="partners-bar">
        <OrgPicker
          label="Customer organization"
          permission="manage_channel_partners"
          value={org}
          onChange={(id) => {
            setOrg(id);
            setPanel(undefined);
            pager.reset();
          }}
        />
        <input
          aria-label="Search partner organizations"
          type="search"
          placeholder="Search partner organizations"
          value={search}
          onChange={(e) => {
            setSearch(e.target.value);
            pager.reset();
          }}
        />
        <WriteButton
          type="button"
          className="primary"
          onClick={() => {
            setConfirmation(undefined);
            setPanel({ kind: "add" });
          }}
          disabled={!org}
        >
          Add
        </WriteButton>
      </div>
      {confirmation && (
        <div className="partners-done" role="status" data-testid="confirmation">
          {confirmation}
        </div>
      )}
      <Outcome pending={org !== "" && list.isPending} error={list.error} label="Loading partners">
        {list.data && (
          <>
            {list.data.partners.length === 0 ? (
              <p className="note">{search ? "No partner organization matches." : "No partners yet: click Add."}</p>
            ) : (
              <table className="partners-table" aria-label="Partners">
                <thead>
                  <tr>
                    <th>Partners</th>
                    <th>Added users</th>
                    <th aria-label="actions" />
                  </tr>
                </thead>
                <tbody>
                  {list.data.partners.map((p) => (
                    <tr key={p.organizationId} data-partner={p.organizationId}>
                      <td title={`since ${p.since}`}>
                        {p.organizationName} <small>({p.organizationId})</small>
                        {!p.channelPartner && <span className="partners-flag"> no longer a channel partner: its users cannot view your insights</span>}
                      </td>
                      <td data-col="added-users">{p.addedUsers}</td>
                      <td>
                        <RowActions
                          partner={p}
                          onChoose={(kind) => {
                            setConfirmation(undefined);
                            setPanel({ kind, partner: p });
                          }}
                        />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            <Pager pager={pager} nextPageToken={list.data.nextPageToken} busy={list.isFetching} />
          </>
        )}
      </Outcome>
      {panel?.kind === "add" && <AddSidebar org={org} onDone={done} onClose={() => setPanel(undefined)} />}
      {panel?.kind === "edit" && <EditSidebar key={panel.partner.organizationId} org={org} partner={panel.partner} onDone={done} onClose={() => setPanel(undefined)} />}
      {panel?.kind === "remove" && <RemoveDialog org={org} partner={panel.partner} onDone={done} onClose={() => setPanel(undefined)} />}
    </section>
  );
}

function RowActions({ partner, onChoose }: { partner: ChannelPartner; onChoose: (kind: "edit" | "remove") => void }) {
  const [open, setOpen] = useState(false);
  const choose = (kind: "edit" | "remove") => {
    setOpen(false);
    onChoose(kind);
  };
  return (
    <div className="partners-menu">
      <button type="button" aria-haspopup="menu" aria-expanded={open} aria-label={`Actions for ${partner.organizationName}`} onClick={() => setOpen(!open)}>
        ⋯
      </button>
      {open && (
        <div role="menu" className="partners-menu-items">
          <button type="button" role="menuitem" onClick={() => choose("edit")}>
            Edit partner access
          </button>
          <button type="button" role="menuitem" className="danger" onClick={() => choose("remove")}>
            Remove partner access
          </button>
        </div>
      )}
    </div>
  );
}

function Sidebar({ title, onClose, children }: { title: string; onClose: () => void; children: ReactNode }) {
  return (
    <aside className="partners-sidebar" role="dialog" aria-label={title}>
      <header>
        <h3>{title}</h3>
        <button type="button" aria-label="Close" onClick={onClose}>
          ✕
        </button>
      </header>
      {children}
    </aside>
  );
}

function useRefresh() {
  const queryClient = useQueryClient();
  return () => queryClient.invalidateQueries();
}

function addedMessage(partner: ChannelPartner | undefined, added: readonly string[]): string {
  const who = added.length === 0 ? "No new user added (already added)" : `Added ${added.join(", ")}`;
  return partner ? `${who}: ${partner.organizationName} now has ${partner.addedUsers} added user${partner.addedUsers === 1 ? "" : "s"}.` : who;
}

/** "Add a Partner": an individual user by email, or an existing partner organization and some of its users. */
function AddSidebar({ org, onDone, onClose }: { org: string; onDone: (message: string) => void; onClose: () => void }) {
  const [mode, setMode] = useState<"email" | "organization">("email");
  return (
    <Sidebar title="Add a Partner" onClose={onClose}>
      <fieldset className="partners-modes">
        <label className="inline">
          <input type="radio" name="add-mode" checked={mode === "email"} onChange={() => setMode("email")} /> Select an individual user
        </label>
        <label className="inline">
          <input type="radio" name="add-mode" checked={mode === "organization"} onChange={() => setMode("organization")} /> Select existing partner
          organization
        </label>
      </fieldset>
      {mode === "email" ? <AddByEmail org={org} onDone={onDone} /> : <AddFromOrganization org={org} onDone={onDone} />}
    </Sidebar>
  );
}

function AddByEmail({ org, onDone }: { org: string; onDone: (message: string) => void }) {
  const { actor, transport } = useSession();
  const [email, setEmail] = useState("");
  const refresh = useRefresh();
  const add = useMutation({
    mutationFn: () => createClient(PartnerService, transport).addChannelPartnerUsers({ actor, customerOrganizationId: org, email: email.trim() }),
    onSuccess: (r) => {
      void refresh();
      onDone(addedMessage(r.partner, r.addedUserIds));
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    add.mutate();
  };
  return (
    <form onSubmit={submit} aria-label="individual user">
      <label>
        Partner&apos;s email address
        <input aria-label="Partner's email address" type="email" required value={email} onChange={(e) => setEmail(e.target.value)} placeholder="nina@northwind.example" />
      </label>
      <div className="partners-actions">
        <WriteButton type="submit" disabled={add.isPending}>
          Add
        </WriteButton>
        <Busy pending={add.isPending} label="Adding" />
      </div>
      {add.error ? <ErrorMessage error={add.error} /> : null}
    </form>
  );
}

function AddFromOrganization({ org, onDone }: { org: string; onDone: (message: string) => void }) {
  const [query, setQuery] = useState("");
  const [picked, setPicked] = useState<{ id: string; name: string }>();
  const [next, setNext] = useState(false);
  const pager = usePager();
  const orgs = useQuery(DirectoryService.method.listOrganizations, { query: query.trim(), channelPartnersOnly: true, page: { pageSize: PAGE_SIZE, pageToken: pager.token } });
  if (next && picked) return <PickUsers org={org} partner={picked} onBack={() => setNext(false)} onDone={onDone} />;
  return (
    <div aria-label="existing partner organization">
      <input
        aria-label="Search partner organizations to add"
        type="search"
        placeholder="Search partner organizations"
        value={query}
        onChange={(e) => {
          setQuery(e.target.value);
          pager.reset();
        }}
      />
      <Outcome pending={orgs.isPending} error={orgs.error} label="Loading channel-partner organizations">
        <ul className="choices" aria-label="channel-partner organizations">
          {orgs.data?.organizations
            .filter((o) => o.id !== org)
            .map((o) => (
              <li key={o.id}>
                <button type="button" className={picked?.id === o.id ? "chosen" : ""} aria-pressed={picked?.id === o.id} onClick={() => setPicked({ id: o.id, name: o.name })}>
                  {o.name} <small>({o.id})</small>
                </button>
              </li>
            ))}
        </ul>
        {orgs.data?.organizations.length === 0 && <p className="note">No channel-partner organization matches.</p>}
        <Pager pager={pager} nextPageToken={orgs.data?.nextPageToken} busy={orgs.isFetching} />
      </Outcome>
      <button type="button" className="primary" disabled={!picked} onClick={() => setNext(true)}>
        Next
      </button>
    </div>
  );
}

/** The partner organization's users, with checkboxes; already-added users are checked and stay. */
function PickUsers({ org, partner, onBack, onDone }: { org: string; partner: { id: string; name: string }; onBack: () => void; onDone: (m: string) => void }) {
  const { actor, transport } = useSession();
  const pager = usePager();
  const users = useQuery(PartnerService.method.listChannelPartnerUsers, {
    customerOrganizationId: org,
    partnerOrganizationId: partner.id,
    page: { pageSize: PAGE_SIZE, pageToken: pager.token },
  });
  const [chosen, setChosen] = useState<ReadonlySet<string>>(new Set());
  const refresh = useRefresh();
  const add = useMutation({
    mutationFn: () =>
      createClient(PartnerService, transport).addChannelPartnerUsers({ actor, customerOrganizationId: org, partnerOrganizationId: partner.id, userIds: [...chosen] }),
    onSuccess: (r) => {
      void refresh();
      onDone(addedMessage(r.partner, r.addedUserIds));
    },
  });
  return (
    <form
      aria-label="partner organization users"
      onSubmit={(e) => {
        e.preventDefault();
        add.mutate();
      }}
    >
      <p>
        Users registered with <strong>{partner.name}</strong>:
      </p>
      <Outcome pending={users.isPending} error={users.error} label="Loading its users">
        {users.data && users.data.users.length === 0 && <p className="note">This organization has no users.</p>}
        <ul className="partners-checklist">
          {users.data?.users.map((u) => (
            <li key={u.userId}>
              <label className="inline">
                <input
                  type="checkbox"
                  disabled={u.selected}
                  checked={u.selected || chosen.has(u.userId)}
                  onChange={(e) => setChosen(toggled(chosen, u.userId, e.target.checked))}
                />
                <span>
                  {u.displayName || u.userId} <small>{u.email}</small>
                </span>
                {u.selected && <small className="partners-where">already added</small>}
              </label>
            </li>
          ))}
        </ul>
        <Pager pager={pager} nextPageToken={users.data?.nextPageToken} busy={users.isFetching} />
      </Outcome>
      <div className="partners-actions">
        <WriteButton type="submit" disabled={add.isPending || chosen.size === 0}>
          Add
        </WriteButton>
        <button type="button" onClick={onBack}>
          Back
        </button>
        <Busy pending={add.isPending} label="Adding" />
      </div>
      {add.error ? <ErrorMessage error={add.error} /> : null}
    </form>
  );
}

function toggled(set: ReadonlySet<string>, id: string, on: boolean): ReadonlySet<string> {
  const next = new Set(set);
  if (on) next.add(id);
  else next.delete(id);
  return next;
}

/**
 * "Edit partner access": the organization's users, checked when added. Only
 * the toggled ones are remembered; Save reads every page of the current
 * selection (ListChannelPartnerUsers) and sends the complete new set.
 */
function EditSidebar({ org, partner, onDone, onClose }: { org: string; partner: ChannelPartner; onDone: (m: string) => void; onClose: () => void }) {
  const { actor, transport } = useSession();
  const pager = usePager();
  const users = useQuery(PartnerService.method.listChannelPartnerUsers, {
    customerOrganizationId: org,
    partnerOrganizationId: partner.organizationId,
    page: { pageSize: PAGE_SIZE, pageToken: pager.token },
  });
  const [changes, setChanges] = useState<ReadonlyMap<string, boolean>>(new Map());
  const refresh = useRefresh();
  const save = useMutation({
    mutationFn: async () => {
      const client = createClient(PartnerService, transport);
      const selected = new Set<string>();
      let pageToken = "";
      do {
        const page = await client.listChannelPartnerUsers({ customerOrganizationId: org, partnerOrganizationId: partner.organizationId, page: { pageSize: 1000, pageToken } });
        for (const u of page.users) if (u.selected) selected.add(u.userId);
        pageToken = page.nextPageToken;
      } while (pageToken);
      for (const [id, on] of changes) {
        if (on) selected.add(id);
        else selected.delete(id);
      }
      return client.setChannelPartnerUsers({ actor, customerOrganizationId: org, partnerOrganizationId: partner.organizationId, userIds: [...selected].sort() });
    },
    onSuccess: (r) => {
      void refresh();
      const parts = [
        r.addedUserIds.length > 0 ? `added ${r.addedUserIds.join(", ")}` : "",
        r.removedUserIds.length > 0 ? `removed ${r.removedUserIds.join(", ")}` : "",
      ].filter(Boolean);
      onDone(
        `Saved partner access for ${partner.organizationName}${parts.length > 0 ? `: ${parts.join("; ")}` : " (no change)"}; ${r.partner?.addedUsers ?? 0} added user${r.partner?.addedUsers === 1 ? "" : "s"}.`,
      );
    },
  });
  useEffect(() => setChanges(new Map()), [partner.organizationId]);
  return (
    <Sidebar title="Edit partner access" onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          save.mutate();
        }}
      >
        <p>
          Users of <strong>{partner.organizationName}</strong> who can view your insights:
        </p>
        <Outcome pending={users.isPending} error={users.error} label="Loading its users">
          <ul className="partners-checklist">
            {users.data?.users.map((u) => (
              <li key={u.userId}>
                <label className="inline">
                  <input
                    type="checkbox"
                    checked={changes.get(u.userId) ?? u.selected}
                    onChange={(e) => setChanges(new Map(changes).set(u.userId, e.target.checked))}
                  />
                  <span>
                    {u.displayName || u.userId} <small>{u.email}</small>
                  </span>
                </label>
              </li>
            ))}
          </ul>
          <Pager pager={pager} nextPageToken={users.data?.nextPageToken} busy={users.isFetching} />
        </Outcome>
        <div className="partners-actions">
          <WriteButton type="submit" disabled={save.isPending}>
            Save
          </WriteButton>
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <Busy pending={save.isPending} label="Saving" />
        </div>
        {save.error ? <ErrorMessage error={save.error} /> : null}
      </form>
    </Sidebar>
  );
}

function RemoveDialog({ org, partner, onDone, onClose }: { org: string; partner: ChannelPartner; onDone: (m: string) => void; onClose: () => void }) {
  const { actor, transport } = useSession();
  const refresh = useRefresh();
  const remove = useMutation({
    mutationFn: () => createClient(PartnerService, transport).removeChannelPartner({ actor, customerOrganizationId: org, partnerOrganizationId: partner.organizationId }),
    onSuccess: (r) => {
      void refresh();
      onDone(`Removed partner access for ${partner.organizationName} (${r.removedUserIds.length} user${r.removedUserIds.length === 1 ? "" : "s"}).`);
    },
  });
  return (
    <div className="partners-overlay">
      <div className="card partners-confirm" role="alertdialog" aria-label="Remove partner access">
        <p>
          Remove partner access for <strong>{partner.organizationName}</strong>? Its {partner.addedUsers} added user{partner.addedUsers === 1 ? "" : "s"} will
          no longer see your insights.
        </p>
        <div className="partners-actions">
          <WriteButton type="button" className="danger" onClick={() => remove.mutate()} disabled={remove.isPending}>
            Yes, remove access
          </WriteButton>
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <Busy pending={remove.isPending} label="Removing" />
        </div>
        {remove.error ? <ErrorMessage error={remove.error} /> : null}
      </div>
    </div>
  );
}
