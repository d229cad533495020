import { useEffect } from "react";
import { useQuery } from "@tanstack/react-query";
import { createClient } from "@connectrpc/connect";
import { DirectoryService } from "../../gen/sharegraph/v1/directory_service_pb.js";
import { PermissionService } from "../../gen/sharegraph/v1/permission_service_pb.js";
import { useSession } from "../session.js";
import { Outcome } from "./Outcome.js";

/*
 * "Your organization", for the partner screens: the organizations on which
 * the signed-in actor holds `permission` (PermissionService/LookupResources,
 * first page of PICKER_LIMIT in id order), named with
 * DirectoryService/GetOrganization. The first one is chosen by default.
 */

const PICKER_LIMIT = 100;

export interface OrgChoice {
  readonly id: string;
  readonly name: string;
}

export function useActorOrganizations(permission: string) {
  const { actor, transport } = useSession();
  return useQuery({
    queryKey: ["partners-org-picker", actor, permission],
    queryFn: async ({ signal }): Promise<OrgChoice[]> => {
      const ids: string[] = [];
      const stream = createClient(PermissionService, transport).lookupResources(
        { resourceType: "organization", permission, subject: { type: "user", id: actor }, pageSize: PICKER_LIMIT },
        { signal },
      );
      for await (const r of stream) ids.push(r.resourceId);
      const directory = createClient(DirectoryService, transport);
      return Promise.all(
        ids.map(async (id) => {
          const o = await directory.getOrganization({ organizationId: id }, { signal });
          return { id, name: o.organization?.name ?? id };
        }),
      );
    },
  });
}

/** A labelled <select> of the actor's organizations; calls onChange with the first one once they are known. */
export function OrgPicker({ label, permission, value, onChange }: { label: string; permission: string; value: string; onChange: (id: string) => void }) {
  const { actor } = useSession();
  const orgs = useActorOrganizations(permission);
  const first = orgs.data?.[0]?.id;
  useEffect(() => {
    if (!value && first) onChange(first);
  }, [value, first, onChange]);
  return (
    <Outcome pending={orgs.isPending} error={orgs.error} label="Finding your organizations">
      {orgs.data && orgs.data.length === 0 ? (
        <p className="note" role="status">
          {actor} has {permission} on no organization: sign in as one of its members.
        </p>
      ) : (
        <label className="inline partners-org">
          {label}{" "}
          <select aria-label={label} value={value} onChange={(e) => onChange(e.target.value)}>
            {orgs.data?.map((o) => (
              <option key={o.id} value={o.id}>
                {o.name} ({o.id})
              </option>
            ))}
          </select>
        </label>
      )}
    </Outcome>
  );
}
