import { useCallback, useEffect, useState, type FormEvent } from "react";
import { keepPreviousData, useMutation, useQuery as useTanstackQuery, useQueryClient } from "@tanstack/react-query";
import { createConnectQueryKey, useQuery } from "@connectrpc/connect-query";
import { createClient } from "@connectrpc/connect";
import { DirectoryService } from "../../gen/sharegraph/v1/directory_service_pb.js";
import { PermissionService } from "../../gen/sharegraph/v1/permission_service_pb.js";
import {
  AssignmentMode,
  ServiceRelationshipService,
  type AssignableUser,
  type GetServiceResponse,
  type ServiceRelationship,
} from "../../gen/sharegraph/v1/service_relationship_service_pb.js";
import { ErrorMessage, Outcome } from "../components/Outcome.js";
import { Pager, usePager } from "../components/Pager.js";
import { WriteButton } from "../components/WriteButton.js";
import { useSession } from "../session.js";
import "./PartnerAccounts.css";

/*
 * Seed 002, Partner accounts (R30–R32, R40): the Services available to the
 * actor's organisation (ServiceRelationshipService/ListServices on the
 * consumer side: partner organisation = account owner, number of accounts);
 * a Service's details (GetService: its accounts and the users assigned to
 * each); select accounts, then "Add user" / "Remove user" lists the consumer
 * entity's users with "Current access" (ListAssignableUsers: the grant list
 * leaves out users holding every selected account, the revoke list users
 * holding none), searchable by name or email and paged with the API's
 * cursors; "Grant access" / "Revoke access", confirmed, as the signed-in
 * actor (GrantAccountAccess / RevokeAccountAccess), then a confirmation
 * banner. Refusals (an actor who is not an admin of the entity's
 * organisation, a user no longer in the entity …) show the server's words.
 *
 * "Your organisation": the organisations the actor belongs to or
 * administers, composed from existing RPCs — PermissionService/
 * LookupResources for organization#manage_channel_partners (member + manage;
 * every organisation for a platform admin), named with GetOrganization.
 */

const PAGE_SIZE = 20;
const ORGANISATIONS_SHOWN = 50;

export function PartnerAccounts() {
  const [organisation, setOrganisation] = useState<string>();
  const [serviceId, setServiceId] = useState<string>();
  const chooseOrganisation = useCallback((id: string) => {
    setOrganisation(id);
    setServiceId(undefined);
  }, []);
  return (
    <section aria-labelledby="partner-accounts-title" className="partner-accounts">
      <h2 id="partner-accounts-title">Partner accounts</h2>
      <p className="hint">
        Manage access to accounts owned by another organisation, shared with your organisation through a Service relationship. Only users in the
        Service&apos;s entity can be assigned; assigning or removing a user applies to the selected accounts of that Service.
      </p>
      <OrganisationPicker value={organisation} onChange={chooseOrganisation} />
      {organisation && <ServicesTable organisationId={organisation} selected={serviceId} onSelect={setServiceId} />}
      {serviceId && <ServiceDetails key={serviceId} serviceId={serviceId} onClose={() => setServiceId(undefined)} />}
    </section>
  );
}

/** The actor's organisations (member or admin), the first chosen by default. */
function OrganisationPicker({ value, onChange }: { value: string | undefined; onChange: (id: string) => void }) {
  const { actor, transport } = useSession();
  const organisations = useTanstackQuery({
    queryKey: ["partner-accounts", "organisations", actor],
    queryFn: async ({ signal }) => {
      const ids: string[] = [];
      const lookup = createClient(PermissionService, transport).lookupResources(
        {
          resourceType: "organization",
          permission: "manage_channel_partners",
          subject: { type: "user", id: actor },
          consistency: { requirement: { case: "fullyConsistent", value: true } },
          pageSize: ORGANISATIONS_SHOWN,
        },
        { signal },
      );
      for await (const r of lookup) ids.push(r.resourceId);
      const directory = createClient(DirectoryService, transport);
      const named = await Promise.all(ids.map(async (id) => ({ id, name: (await directory.getOrganization({ organizationId: id }, { signal })).organization?.name ?? id })));
      return named;
    },
  });
  const list = organisations.data ?? [];
  const first = list[0]?.id;
  useEffect(() => {
    if (value === undefined && first !== undefined) onChange(first);
  }, [value, first, onChange]);
  return (
    <div className="pa-org-picker">
      <Outcome pending={organisations.isPending} error={organisations.error} label="Finding your organisations">
        {list.length === 0 ? (
          <p className="note">
            {actor} is a member of no organisation: no Services to show. Sign in as a member or admin of the consumer organisation.
          </p>
        ) : (
          <label className="inline">
            Your organisation&nbsp;
            <select aria-label="Your organisation" value={value ?? ""} onChange={(e) => onChange(e.target.value)}>
              {list.map((o) => (
                <option key={o.id} value={o.id}>
                  {o.name} ({o.id})
                </option>
              ))}
            </select>
            {list.length >= ORGANISATIONS_SHOWN && <span className="note">the first {ORGANISATIONS_SHOWN} by id</span>}
          </label>
        )}
      </Outcome>
    </div>
  );
}

/** R30: the Services available to the organisation, with the partner organisation and the number of accounts. */
function ServicesTable({ organisationId, selected, onSelect }: { organisationId: string; selected: string | undefined; onSelect: (id: string) => void }) {
  const [query, setQuery] = useState("");
  const pager = usePager();
  const services = useQuery(
    ServiceRelationshipService.method.listServices,
    { consumerOrganizationId: organisationId, query, page: { pageSize: PAGE_SIZE, pageToken: pager.token } },
    // While a search or another page loads, the rows shown stay (dimmed) rather than flash.
    { placeholderData: keepPreviousData },
  );
  return (
    <div className="card">
      <div className="pa-toolbar">
        <h3>Services</h3>
        <input
          type="search"
          aria-label="Search services"
          placeholder="Search services or partner organisations"
          value={query}
          onChange={(e) => {
            setQuery(e.target.value);
            pager.reset();
          }}
        />
      </div>
      <Outcome pending={services.isPending} error={services.error} label="Loading services">
        <table className="pa-table" aria-label="Services" aria-busy={services.isPlaceholderData}>
          <thead>
            <tr>
              <th>Service</th>
              <th>Partner organisation (account owner)</th>
              <th>Entity</th>
              <th className="num">Accounts</th>
            </tr>
          </thead>
          <tbody>
            {services.data?.services.map((s) => (
              <tr key={s.serviceId} aria-selected={s.serviceId === selected} className={s.serviceId === selected ? "chosen" : undefined}>
                <td>
                  <button type="button" className="pa-link" onClick={() => onSelect(s.serviceId)}>
                    {s.name || s.serviceId}
                  </button>
                </td>
                <td>{s.providerOrganizationName || s.providerOrganizationId}</td>
                <td>{s.consumerEntityName || s.consumerEntityId}</td>
                <td className="num">{s.accountCount}</td>
              </tr>
            ))}
            {services.data?.services.length === 0 && (
              <tr>
                <td colSpan={4} className="note">
                  {query ? `No Service matches “${query}”.` : "No Services are shared with this organisation."}
                </td>
              </tr>
            )}
          </tbody>
        </table>
        <Pager pager={pager} nextPageToken={services.data?.nextPageToken} busy={services.isFetching} />
      </Outcome>
    </div>
  );
}

type Mode = AssignmentMode.GRANT | AssignmentMode.REVOKE;

/** R30: the Service's accounts and the users assigned to each; select accounts, then Add user / Remove user. */
function ServiceDetails({ serviceId, onClose }: { serviceId: string; onClose: () => void }) {
  const detail = useQuery(ServiceRelationshipService.method.getService, { serviceId });
  const [selected, setSelected] = useState<readonly string[]>([]);
  const [mode, setMode] = useState<Mode>();
  const [banner, setBanner] = useState<string>();
  const service = detail.data?.service;
  const accounts = detail.data?.accounts ?? [];
  const toggle = (id: string, on: boolean) => {
    setBanner(undefined);
    setSelected((s) => (on ? [...s.filter((x) => x !== id), id] : s.filter((x) => x !== id)));
  };
  const openList = (m: Mode) => {
    setBanner(undefined);
    setMode(m);
  };
  const allSelected = accounts.length > 0 && accounts.every((a) => selected.includes(a.account?.accountId ?? ""));
  // In the service's order, so the lists and messages name them the same way.
  const selection = accounts.map((a) => a.account?.accountId ?? "").filter((id) => selected.includes(id));

  return (
    <div className="card pa-details" aria-label="Service details">
      <Outcome pending={detail.isPending} error={detail.error} label="Loading the Service">
        {service && (
          <>
            <div className="pa-toolbar">
              <h3>{service.name || service.serviceId}</h3>
              <button type="button" onClick={onClose}>
                Close
              </button>
            </div>
            <ServiceFacts service={service} />
            {banner && (
              <div className="pa-banner" role="status" aria-label="confirmation">
                <span>✔ {banner}</span>
                <button type="button" aria-label="Dismiss" onClick={() => setBanner(undefined)}>
                  ×
                </button>
              </div>
            )}
            <table className="pa-table" aria-label="Accounts">
              <thead>
                <tr>
                  <th className="pick">
                    <input
                      type="checkbox"
                      aria-label="Select all accounts"
                      checked={allSelected}
                      onChange={(e) => {
                        setBanner(undefined);
                        setSelected(e.target.checked ? accounts.map((a) => a.account?.accountId ?? "") : []);
                      }}
                    />
                  </th>
                  <th>Account</th>
                  <th>Assigned users</th>
                </tr>
              </thead>
              <tbody>
                {accounts.map((a) => {
                  const id = a.account?.accountId ?? "";
                  const name = a.account?.name || id;
                  return (
                    <tr key={id} data-account={id}>
                      <td className="pick">
                        <input type="checkbox" aria-label={`Select account ${name}`} checked={selected.includes(id)} onChange={(e) => toggle(id, e.target.checked)} />
                      </td>
                      <td>
                        {name} <code className="pa-id">{id}</code>
                      </td>
                      <td className="pa-assigned" data-testid={`assigned-${id}`}>
                        {a.assignedUsers.length === 0 ? (
                          <span className="note">nobody</span>
                        ) : (
                          a.assignedUsers.map((u) => (
                            <span key={u.userId} className="pa-chip" title={u.email}>
                              {u.displayName || u.userId}
                            </span>
                          ))
                        )}
                        {a.assignedUserCount > a.assignedUsers.length && <span className="note"> and {a.assignedUserCount - a.assignedUsers.length} more</span>}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
            <div className="pa-actions">
              <span className="note">
                {selection.length === 0 ? "Select one or more accounts." : `${selection.length} of ${accounts.length} accounts selected`}
              </span>
              <button type="button" disabled={selection.length === 0} aria-pressed={mode === AssignmentMode.GRANT} onClick={() => openList(AssignmentMode.GRANT)}>
                Add user
              </button>
              <button type="button" disabled={selection.length === 0} aria-pressed={mode === AssignmentMode.REVOKE} onClick={() => openList(AssignmentMode.REVOKE)}>
                Remove user
              </button>
            </div>
            {mode !== undefined && selection.length > 0 && (
              <UserList
                key={mode}
                mode={mode}
                serviceId={serviceId}
                accounts={selection.map((id) => ({ id, name: accountName(detail.data, id) }))}
                onClose={() => setMode(undefined)}
                onEdit={() => setBanner(undefined)}
                onChanged={setBanner}
              />
            )}
          </>
        )}
      </Outcome>
    </div>
  );
}

function ServiceFacts({ service }: { service: ServiceRelationship }) {
  return (
    <dl className="pa-facts">
      <dt>Partner organisation (account owner)</dt>
      <dd>{service.providerOrganizationName || service.providerOrganizationId}</dd>
      <dt>Entity</dt>
      <dd>{service.consumerEntityName || service.consumerEntityId}</dd>
      <dt>Accounts</dt>
      <dd>{service.accountCount}</dd>
      {service.endedAt && (
        <>
          <dt>Status</dt>
          <dd>ended: it can no longer change</dd>
        </>
      )}
    </dl>
  );
}

function accountName(detail: GetServiceResponse | undefined, id: string): string {
  const a = detail?.accounts.find((x) => x.account?.accountId === id)?.account;
  return a?.name || id;
}

const WORDS = {
  [AssignmentMode.GRANT]: { title: "Add user", action: "Grant access", confirm: "Confirm: grant access", to: "to" },
  [AssignmentMode.REVOKE]: { title: "Remove user", action: "Revoke access", confirm: "Confirm: revoke access", to: "from" },
} as const;

/**
 * R32: the entity's users for the selected accounts, with "Current access";
 * choose users, Grant/Revoke access, confirm (R31: users × accounts in one
 * call, as the signed-in actor).
 */
function UserList({
  mode,
  serviceId,
  accounts,
  onClose,
  onEdit,
  onChanged,
}: {
  mode: Mode;
  serviceId: string;
  accounts: readonly { id: string; name: string }[];
  onClose: () => void;
  /** A new selection starts: the last confirmation banner goes. */
  onEdit: () => void;
  onChanged: (banner: string) => void;
}) {
  const { actor, transport } = useSession();
  const queryClient = useQueryClient();
  const words = WORDS[mode];
  const [search, setSearch] = useState("");
  const [query, setQuery] = useState("");
  const pager = usePager();
  const [chosen, setChosen] = useState<ReadonlyMap<string, AssignableUser>>(new Map());
  const [confirming, setConfirming] = useState(false);
  const accountIds = accounts.map((a) => a.id);
  const users = useQuery(
    ServiceRelationshipService.method.listAssignableUsers,
    { serviceId, accountIds, mode, query, page: { pageSize: PAGE_SIZE, pageToken: pager.token } },
    { placeholderData: keepPreviousData },
  );

  const change = useMutation({
    mutationFn: async (userIds: readonly string[]) => {
      const client = createClient(ServiceRelationshipService, transport);
      const request = { actor, serviceId, accountIds, userIds: [...userIds] };
      return mode === AssignmentMode.GRANT ? { count: (await client.grantAccountAccess(request)).granted } : { count: (await client.revokeAccountAccess(request)).revoked };
    },
    onSuccess: async ({ count }, userIds) => {
      // The Service's details, counts and lists read again (from the store, which the change was committed to);
      // lists not shown are dropped, so none is ever shown from before the change.
      const queryKey = createConnectQueryKey({ schema: ServiceRelationshipService, cardinality: undefined });
      queryClient.removeQueries({ queryKey, type: "inactive" });
      await queryClient.invalidateQueries({ queryKey });
      const who = userIds.map((id) => label(chosen.get(id)) ?? id).join(", ");
      const where = accounts.map((a) => a.name).join(", ");
      onChanged(
        mode === AssignmentMode.GRANT
          ? `Access granted: ${who} assigned to ${where} (${count} new ${count === 1 ? "assignment" : "assignments"}).`
          : `Access updated: ${who} removed from ${where} (${count} ${count === 1 ? "assignment" : "assignments"} removed).`,
      );
      setChosen(new Map());
      setConfirming(false);
    },
  });

  const pick = (u: AssignableUser, on: boolean) => {
    change.reset();
    onEdit();
    setConfirming(false);
    setChosen((m) => {
      const next = new Map(m);
      if (on) next.set(u.userId, u);
      else next.delete(u.userId);
      return next;
    });
  };
  const submitSearch = (e: FormEvent) => {
    e.preventDefault();
    setQuery(search.trim());
    pager.reset();
  };
  const selectedCount = users.data?.selectedAccounts ?? accounts.length;

  return (
    <div className="pa-users" aria-label={`${words.title} list`}>
      <div className="pa-toolbar">
        <h3>
          {words.title} — {accounts.length} selected {accounts.length === 1 ? "account" : "accounts"}
        </h3>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
      <p className="note">
        {mode === AssignmentMode.GRANT
          ? "Users of the entity with no or partial access to the selected accounts (users assigned to all of them are not listed)."
          : "Users with full or partial access to the selected accounts (users assigned to none of them are not listed)."}
      </p>
      <form className="pa-search" onSubmit={submitSearch} role="search">
        <input type="search" aria-label="Search users" placeholder="Search by name or email address" value={search} onChange={(e) => setSearch(e.target.value)} />
        <button type="submit">Search</button>
      </form>
      <Outcome pending={users.isPending} error={users.error} label="Loading users">
        <table className="pa-table" aria-label="Users" aria-busy={users.isPlaceholderData}>
          <thead>
            <tr>
              <th className="pick" />
              <th>Name</th>
              <th>Email</th>
              <th className="num">Current access</th>
            </tr>
          </thead>
          <tbody>
            {users.data?.users.map((u) => (
              <tr key={u.userId} data-user={u.userId}>
                <td className="pick">
                  <input type="checkbox" aria-label={`Select user ${u.userId}`} checked={chosen.has(u.userId)} onChange={(e) => pick(u, e.target.checked)} />
                </td>
                <td>
                  {u.displayName || u.userId} <code className="pa-id">{u.userId}</code>
                </td>
                <td>{u.email}</td>
                <td className="num" data-testid={`current-access-${u.userId}`}>
                  {u.currentAccess} of {selectedCount}
                </td>
              </tr>
            ))}
            {users.data?.users.length === 0 && (
              <tr>
                <td colSpan={4} className="note">
                  {query
                    ? `No user matches “${query}”.`
                    : mode === AssignmentMode.GRANT
                      ? "Every user of the entity already has access to all the selected accounts."
                      : "No user has access to any of the selected accounts."}
                </td>
              </tr>
            )}
          </tbody>
        </table>
        <Pager pager={pager} nextPageToken={users.data?.nextPageToken} busy={users.isFetching} />
      </Outcome>
      <div className="pa-actions">
        <span className="note">{chosen.size === 0 ? "Select one or more users." : `${chosen.size} ${chosen.size === 1 ? "user" : "users"} selected`}</span>
        <WriteButton type="button" className="pa-primary" disabled={chosen.size === 0 || change.isPending} onClick={() => setConfirming(true)}>
          {words.action}
        </WriteButton>
      </div>
      {confirming && chosen.size > 0 && (
        <div className="pa-confirm" role="dialog" aria-label="Confirm your selection">
          <p>
            {mode === AssignmentMode.GRANT ? "Grant" : "Revoke"} access for <strong>{[...chosen.values()].map((u) => label(u)).join(", ")}</strong> {words.to}{" "}
            <strong>{accounts.map((a) => a.name).join(", ")}</strong>, as {actor}?
          </p>
          <WriteButton type="button" className="pa-primary" disabled={change.isPending} onClick={() => change.mutate([...chosen.keys()])}>
            {words.confirm}
          </WriteButton>
          <button type="button" disabled={change.isPending} onClick={() => setConfirming(false)}>
            Cancel
          </button>
        </div>
      )}
      {change.isPending && (
        <div className="busy" role="status">
          {mode === AssignmentMode.GRANT ? "Granting access" : "Revoking access"} …
        </div>
      )}
      {change.error ? <ErrorMessage error={change.error} /> : null}
    </div>
  );
}

function label(u: AssignableUser | undefined): string | undefined {
  return u ? u.displayName || u.userId : undefined;
}
