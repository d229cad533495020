import { useQuery } from "@tanstack/react-query";
import { createClient } from "@connectrpc/connect";
import { ContentService, ShareSource } from "../../gen/sharegraph/v1/content_service_pb.js";
import { DirectoryService } from "../../gen/sharegraph/v1/directory_service_pb.js";
import { useSession } from "../session.js";

/*
 * The reports and boards of an organization, for Partner share access's
 * picker [000], composed from existing reads: its workspaces
 * (DirectoryService/ListWorkspaces, every page) and what the actor sees in
 * each folder (ContentService/ListFolder, fully consistent, from each
 * workspace's root down). Managing partners needs manage on the organization,
 * and its admins manage everything in it, so the actor sees them all.
 */

export interface ShareableItem {
  readonly type: "report" | "board";
  readonly id: string;
  readonly name: string;
  /** "EMEA / Sales": where it is. */
  readonly where: string;
}

export function useOrgReportsAndBoards(organizationId: string) {
  const { actor, transport } = useSession();
  return useQuery({
    queryKey: ["partners-catalog", organizationId, actor],
    enabled: organizationId !== "",
    queryFn: async ({ signal }): Promise<ShareableItem[]> => {
      const directory = createClient(DirectoryService, transport);
      const content = createClient(ContentService, transport);
      const workspaces: { id: string; name: string }[] = [];
      let pageToken = "";
      do {
        const page = await directory.listWorkspaces({ organizationId, page: { pageSize: 1000, pageToken } }, { signal });
        workspaces.push(...page.workspaces.map((w) => ({ id: w.id, name: w.name })));
        pageToken = page.nextPageToken;
      } while (pageToken);
      const found: ShareableItem[] = [];
      for (const w of workspaces) {
        const queue: { folderId: string; where: string }[] = [{ folderId: "", where: w.name }];
        while (queue.length > 0) {
          const { folderId, where } = queue.shift()!;
          const listing = await content.listFolder(
            { userId: actor, workspaceId: w.id, folderId, consistency: { requirement: { case: "fullyConsistent", value: true } } },
            { signal },
          );
          for (const f of listing.folders) queue.push({ folderId: f.id, where: `${where} / ${f.name}` });
          for (const c of listing.items) {
            const type = c.ref?.type;
            if (type === "report" || type === "board") found.push({ type, id: c.ref!.id, name: c.name, where });
          }
        }
      }
      return found.sort((a, b) => a.type.localeCompare(b.type) || a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    },
  });
}

/**
 * Which of `items` are shared with the partner organization now: each item's
 * ContentService/ListShares, keeping the partner shares (source PARTNER) whose
 * subject is that organization.
 */
export function useSharedWithPartner(partnerOrganizationId: string, items: readonly ShareableItem[] | undefined) {
  const { transport } = useSession();
  return useQuery({
    queryKey: ["partners-shared-with", partnerOrganizationId, items?.map((i) => `${i.type}:${i.id}`).join(",")],
    enabled: items !== undefined,
    queryFn: async ({ signal }): Promise<Set<string>> => {
      const content = createClient(ContentService, transport);
      const shared = new Set<string>();
      for (const item of items ?? []) {
        const r = await content.listShares({ resource: { type: item.type, id: item.id } }, { signal });
        const hit = r.shares.some((s) => s.source === ShareSource.PARTNER && s.subject?.type === "organization" && s.subject.id === partnerOrganizationId);
        if (hit) shared.add(`${item.type}:${item.id}`);
      }
      return shared;
    },
  });
}

export const itemKey = (i: { type: string; id: string }) => `${i.type}:${i.id}`;
