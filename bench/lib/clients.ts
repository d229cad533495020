import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { v1 } from "@authzed/authzed-node";
import { PermissionService } from "../../src/gen/sharegraph/v1/permission_service_pb.js";
import type { SamplePair } from "../dataset.js";
import type { Checker } from "../lines/checks.js";

export type PermissionClient = Client<typeof PermissionService>;

/** `connections` gRPC clients (one HTTP/2 connection each) of a sharegraph server, with an API key. */
export function sharegraphClients(baseUrl: string, key: string, connections: number): PermissionClient[] {
  return Array.from({ length: connections }, () =>
    createClient(
      PermissionService,
      createGrpcTransport({
        baseUrl,
        interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${key}`), next(req))],
      }),
    ),
  );
}

/** CheckPermission through sharegraph (default consistency: minimize_latency); client i uses connection i mod n. */
export function sharegraphChecker(clients: readonly PermissionClient[]): Checker {
  return async (pair: SamplePair, client: number) => {
    const response = await clients[client % clients.length]!.checkPermission({
      resource: pair.resource,
      permission: pair.permission,
      subject: { type: "user", id: pair.userId, relation: "" },
    });
    return response.allowed;
  };
}

/** The same check straight into SpiceDB with @authzed/authzed-node. */
export function spicedbClients(endpoint: string, token: string, connections: number): v1.ZedClientInterface[] {
  return Array.from({ length: connections }, () => v1.NewClient(token, endpoint, v1.ClientSecurity.INSECURE_PLAINTEXT_CREDENTIALS));
}

export function spicedbChecker(clients: readonly v1.ZedClientInterface[], consistency: v1.Consistency): Checker {
  return async (pair: SamplePair, client: number) => {
    const response = await clients[client % clients.length]!.promises.checkPermission(
      v1.CheckPermissionRequest.create({
        consistency,
        resource: v1.ObjectReference.create({ objectType: pair.resource.type, objectId: pair.resource.id }),
        permission: pair.permission,
        subject: v1.SubjectReference.create({ object: v1.ObjectReference.create({ objectType: "user", objectId: pair.userId }) }),
      }),
    );
    return response.permissionship === v1.CheckPermissionResponse_Permissionship.HAS_PERMISSION;
  };
}

/** minimize_latency, as a plain SpiceDB client asks. */
export const MINIMIZE_LATENCY = v1.Consistency.create({ requirement: { oneofKind: "minimizeLatency", minimizeLatency: true } });

/** One snapshot for every check, as sharegraph asks (at_exact_snapshot of the newest applied write). */
export function exactSnapshot(token: string): v1.Consistency {
  return v1.Consistency.create({ requirement: { oneofKind: "atExactSnapshot", atExactSnapshot: v1.ZedToken.create({ token }) } });
}

/** The datastore's newest snapshot, read with a fully consistent check that is always allowed (the platform admin manages the platform). */
export async function headSnapshot(client: v1.ZedClientInterface, platformAdmin: string): Promise<v1.Consistency> {
  const head = await client.promises.checkPermission(
    v1.CheckPermissionRequest.create({
      consistency: v1.Consistency.create({ requirement: { oneofKind: "fullyConsistent", fullyConsistent: true } }),
      resource: v1.ObjectReference.create({ objectType: "platform", objectId: "sharegraph" }),
      permission: "manage",
      subject: v1.SubjectReference.create({ object: v1.ObjectReference.create({ objectType: "user", objectId: platformAdmin }) }),
    }),
  );
  return exactSnapshot(head.checkedAt!.token);
}
