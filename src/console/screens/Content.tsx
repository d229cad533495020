import { useEffect, useState } from "react";
import { useQuery } from "@connectrpc/connect-query";
import { keepPreviousData, useQuery as useTanstackQuery, useQueryClient } from "@tanstack/react-query";
import { createClient, type Transport } from "@connectrpc/connect";
import { ContentService, type Content as ContentItem, type FolderEntry } from "../../gen/sharegraph/v1/content_service_pb.js";
import { DirectoryService, type Workspace } from "../../gen/sharegraph/v1/directory_service_pb.js";
import { PermissionService } from "../../gen/sharegraph/v1/permission_service_pb.js";
import { Outcome } from "../components/Outcome.js";
import { Pager, usePager } from "../components/Pager.js";
import { useSession } from "../session.js";
import { ShareDialog, type Shareable } from "./ContentShareDialog.js";
import "./Content.css";

/*
 * Content (issue 11, seeds 001 and 003): workspaces → folders → items as
 * the signed-in actor sees them, their private items, and the Share dialog.
 *
 * Nothing here decides who sees what. The workspaces are the API's own
 * lookup (PermissionService/LookupResources: the workspaces whose content
 * the actor can view, `view_in_tree`, paged with its cursors); a folder's
 * listing is ContentService/ListFolder for the actor, which applies R3
 * itself (a folder shows, name only, where something inside is viewable);
 * the private items are ContentService/ListPrivateContent (R4).
 */

const WORKSPACES_PER_PAGE = 20;

type Fresh = { requirement: { case: "atLeastAsFresh"; value: string } } | { requirement: { case: undefined } };

export function Content() {
  const { actor } = useSession();
  const [tab, setTab] = useState<"browse" | "private">("browse");
  const [workspace, setWorkspace] = useState<Workspace>();
  const [folderId, setFolderId] = useState("");
  const [sharing, setSharing] = useState<Shareable>();
  // After a write, listings read at least as fresh as it (its consistency token; never shown).
  const [token, setToken] = useState("");
  const queryClient = useQueryClient();
  const fresh: Fresh = token ? { requirement: { case: "atLeastAsFresh", value: token } } : { requirement: { case: undefined } };

  const changed = (writeToken: string) => {
    if (writeToken) setToken(writeToken);
    void queryClient.invalidateQueries({ queryKey: ["connect-query"] });
  };

  return (
    <section aria-labelledby="content-title" className="content-screen">
      <h2 id="content-title">Content</h2>
      <p className="hint">
        Workspaces, folders and items as <strong>{actor}</strong> sees them. A folder shows where something inside is viewable; inside it,{" "}
        {actor} sees only the content they have access to.
      </p>
      <div className="content-tabs" role="tablist" aria-label="content views">
        <button type="button" role="tab" aria-selected={tab === "browse"} onClick={() => setTab("browse")}>
          All content
        </button>
        <button type="button" role="tab" aria-selected={tab === "private"} onClick={() => setTab("private")}>
          Private
        </button>
      </div>
      {tab === "browse" ? (
        <div className="content-browser">
          <Workspaces
            selected={workspace?.id}
            onSelect={(w) => {
              setWorkspace(w);
              setFolderId("");
            }}
          />
          {workspace ? (
            <FolderListing workspace={workspace} folderId={folderId} fresh={fresh} onOpen={setFolderId} onShare={setSharing} />
          ) : (
            <p className="hint content-pick">Pick a workspace.</p>
          )}
        </div>
      ) : (
        <PrivateItems onShare={setSharing} />
      )}
      {sharing && <ShareDialog item={sharing} onClose={() => setSharing(undefined)} onChanged={changed} />}
    </section>
  );
}

/** One page of the workspaces the actor can view content in: a paged LookupResources, then each one's name. */
async function lookupWorkspaces(transport: Transport, actor: string, cursor: string, signal: AbortSignal): Promise<{ workspaces: Workspace[]; next: string }> {
  const found: Array<{ id: string; cursor: string }> = [];
  const stream = createClient(PermissionService, transport).lookupResources(
    // One more than a page: when it comes, there is a next page, resumed from the last one shown.
    { resourceType: "workspace", permission: "view_in_tree", subject: { type: "user", id: actor }, pageSize: WORKSPACES_PER_PAGE + 1, cursor },
    { signal },
  );
  for await (const r of stream) found.push({ id: r.resourceId, cursor: r.cursor });
  const shown = found.slice(0, WORKSPACES_PER_PAGE);
  const next = found.length > WORKSPACES_PER_PAGE ? (shown[shown.length - 1]?.cursor ?? "") : "";
  const directory = createClient(DirectoryService, transport);
  const workspaces = await Promise.all(
    shown.map(async ({ id }) => {
      const r = await directory.getWorkspace({ workspaceId: id }, { signal });
      if (!r.workspace) throw new Error(`GetWorkspace returned no workspace for ${id}`);
      return r.workspace;
    }),
  );
  return { workspaces, next };
}

function Workspaces({ selected, onSelect }: { selected: string | undefined; onSelect: (w: Workspace) => void }) {
  const { actor, transport } = useSession();
  const pager = usePager();
  const page = useTanstackQuery({
    queryKey: ["content-workspaces", actor, pager.token],
    queryFn: ({ signal }) => lookupWorkspaces(transport, actor, pager.token, signal),
    placeholderData: keepPreviousData,
  });
  // The first workspace opens by itself, as in any file browser.
  const first = page.data?.workspaces[0];
  useEffect(() => {
    if (!selected && first) onSelect(first);
  }, [selected, first, onSelect]);
  return (
    <nav className="card content-workspaces" aria-label="workspaces">
      <h3>Workspaces</h3>
      <Outcome pending={page.isPending} error={page.error} label="Looking up workspaces">
        {page.data?.workspaces.length === 0 && <p className="hint">{actor} has no permission on any workspace.</p>}
        <ul>
          {page.data?.workspaces.map((w) => (
            <li key={w.id}>
              <button type="button" className={w.id === selected ? "chosen" : ""} aria-current={w.id === selected ? "true" : undefined} onClick={() => onSelect(w)}>
                {w.name}
                {w.parentWorkspaceId && <small> in {w.parentWorkspaceId}</small>}
              </button>
            </li>
          ))}
        </ul>
      </Outcome>
      {(pager.page > 1 || page.data?.next) && <Pager pager={pager} nextPageToken={page.data?.next} busy={page.isFetching} />}
    </nav>
  );
}

function FolderListing({
  workspace,
  folderId,
  fresh,
  onOpen,
  onShare,
}: {
  workspace: Workspace;
  folderId: string;
  fresh: Fresh;
  onOpen: (folderId: string) => void;
  onShare: (item: Shareable) => void;
}) {
  const { actor } = useSession();
  const listing = useQuery(ContentService.method.listFolder, { userId: actor, workspaceId: workspace.id, folderId, consistency: fresh });
  const path = listing.data?.path ?? [];
  const current = path[path.length - 1];
  return (
    <div className="card content-listing" data-testid="content-listing">
      <nav className="content-path" aria-label="folder path">
        <button type="button" className="crumb" onClick={() => onOpen("")}>
          {workspace.name}
        </button>
        {path.map((p) => (
          <span key={p.id}>
            <span className="sep">/</span>
            <button type="button" className="crumb" onClick={() => onOpen(p.id)}>
              {p.name}
            </button>
          </span>
        ))}
        {folderId && current && (
          <button type="button" className="content-share-here" onClick={() => onShare({ ref: { type: "folder", id: current.id }, name: current.name, workspaceId: workspace.id })}>
            Share folder
          </button>
        )}
      </nav>
      <Outcome pending={listing.isPending} error={listing.error} label="Listing">
        {listing.data && (
          <Listing
            folders={listing.data.folders}
            items={listing.data.items}
            onOpen={onOpen}
            onShare={(item) => onShare({ ...item, workspaceId: workspace.id })}
            nameOnlyHere={Boolean(folderId && current && !current.canOpen)}
          />
        )}
      </Outcome>
    </div>
  );
}

function Listing({
  folders,
  items,
  onOpen,
  onShare,
  nameOnlyHere,
}: {
  folders: readonly FolderEntry[];
  items: readonly ContentItem[];
  onOpen: (folderId: string) => void;
  onShare: (item: Omit<Shareable, "workspaceId">) => void;
  nameOnlyHere: boolean;
}) {
  const { actor } = useSession();
  if (folders.length === 0 && items.length === 0) return <p className="hint">Nothing here that {actor} can view.</p>;
  return (
    <>
      {nameOnlyHere && (
        <p className="hint">
          This folder is not shared with {actor}; its name shows because something inside is. Only what {actor} has access to is listed.
        </p>
      )}
      <table className="content-table" aria-label="folders and items">
        <thead>
          <tr>
            <th>Name</th>
            <th>Type</th>
            <th>Access</th>
            <th>Created by</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {folders.map((f) => (
            <tr key={`folder:${f.id}`} data-testid={`folder:${f.id}`}>
              <td>
                <button type="button" className="content-open" onClick={() => onOpen(f.id)}>
                  <span aria-hidden="true">▸ </span>
                  {f.name}
                </button>
              </td>
              <td>folder</td>
              <td>{f.canOpen ? "viewable" : <span className="content-name-only">name only: something inside is viewable</span>}</td>
              <td />
              <td className="content-actions">
                <button type="button" onClick={() => onShare({ ref: { type: "folder", id: f.id }, name: f.name })} aria-label={`Share ${f.name}`}>
                  Share
                </button>
              </td>
            </tr>
          ))}
          {items.map((c) => (
            <tr key={`${c.ref?.type}:${c.ref?.id}`} data-testid={`${c.ref?.type}:${c.ref?.id}`}>
              <td>{c.name}</td>
              <td>{c.ref?.type}</td>
              <td>viewable</td>
              <td>{c.createdBy}</td>
              <td className="content-actions">
                {c.ref && (
                  <button type="button" onClick={() => onShare({ ref: c.ref!, name: c.name })} aria-label={`Share ${c.name}`}>
                    Share
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

/** Seed 003's PRIVATE tab: content whose only grant holder is the actor (R4). */
function PrivateItems({ onShare }: { onShare: (item: Shareable) => void }) {
  const { actor } = useSession();
  const list = useQuery(ContentService.method.listPrivateContent, { userId: actor });
  return (
    <div className="card" data-testid="private-items">
      <h3>Private items of {actor}</h3>
      <p className="hint">
        Items {actor} created and has not shared with anyone else. An item is private when only a single user has permission to access it, and that
        user is {actor}; the workspace&apos;s MANAGE holders can still open it.
      </p>
      <Outcome pending={list.isPending} error={list.error} label="Listing private items">
        {list.data?.items.length === 0 ? (
          <p className="hint">{actor} has no private items.</p>
        ) : (
          <table className="content-table" aria-label="private items">
            <thead>
              <tr>
                <th>Name</th>
                <th>Type</th>
                <th>Workspace</th>
                <th>Folder</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {list.data?.items.map((c) => (
                <tr key={`${c.ref?.type}:${c.ref?.id}`} data-testid={`${c.ref?.type}:${c.ref?.id}`}>
                  <td>{c.name}</td>
                  <td>{c.ref?.type}</td>
                  <td>
                    <WorkspaceName id={c.workspaceId} />
                  </td>
                  <td>{c.folderId ? <FolderName id={c.folderId} /> : <span className="hint">(workspace root)</span>}</td>
                  <td className="content-actions">
                    {c.ref && (
                      <button type="button" onClick={() => onShare({ ref: c.ref!, name: c.name, workspaceId: c.workspaceId })} aria-label={`Share ${c.name}`}>
                        Share
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Outcome>
    </div>
  );
}

function WorkspaceName({ id }: { id: string }) {
  const w = useQuery(DirectoryService.method.getWorkspace, { workspaceId: id });
  return <>{w.data?.workspace?.name ?? id}</>;
}

/** Folder names on the path to content one can view are always visible (R3). */
function FolderName({ id }: { id: string }) {
  const f = useQuery(ContentService.method.getFolder, { folderId: id });
  return <>{f.data?.folder?.name ?? id}</>;
}
