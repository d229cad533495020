import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { v1 } from "@authzed/authzed-node";
import { credentials, makeGenericClientConstructor, Metadata, type Client as GrpcClient, type ServiceError } from "@grpc/grpc-js";
import {
  CheckPermissionRequestSchema,
  CheckPermissionResponseSchema,
  PermissionService,
  type CheckPermissionRequest,
  type CheckPermissionResponse,
} from "../../src/gen/sharegraph/v1/permission_service_pb.js";
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

const checkPermission = {
  path: "/sharegraph.v1.PermissionService/CheckPermission",
  requestStream: false,
  responseStream: false,
  requestSerialize: (m: CheckPermissionRequest) => Buffer.from(toBinary(CheckPermissionRequestSchema, m)),
  requestDeserialize: (b: Buffer) => fromBinary(CheckPermissionRequestSchema, b),
  responseSerialize: (m: CheckPermissionResponse) => Buffer.from(toBinary(CheckPermissionResponseSchema, m)),
  responseDeserialize: (b: Buffer) => fromBinary(CheckPermissionResponseSchema, b),
};

export interface GrpcJsClients {
  check(client: number, init: MessageInitShape<typeof CheckPermissionRequestSchema>): Promise<CheckPermissionResponse>;
  close(): void;
}

type Unary = (req: CheckPermissionRequest, md: Metadata, cb: (err: ServiceError | null, res?: CheckPermissionResponse) => void) => void;

/**
 * CheckPermission through @grpc/grpc-js — the library @authzed/authzed-node
 * uses — so that the load generator costs the same per call whether it asks
 * sharegraph or SpiceDB alone (on a shared 2-core machine its CPU is the
 * servers' loss).
 */
export function grpcJsClients(baseUrl: string, key: string, connections: number): GrpcJsClients {
  const Ctor = makeGenericClientConstructor({ checkPermission }, "PermissionService");
  const target = new URL(baseUrl).host;
  const md = new Metadata();
  md.set("authorization", `Bearer ${key}`);
  const clients = Array.from(
    { length: connections },
    // A distinct channel per client: grpc-js shares subchannels between clients with equal options otherwise.
    (_, i) => new Ctor(target, credentials.createInsecure(), { "grpc.primary_user_agent": `bench-${i}` }) as unknown as GrpcClient & { checkPermission: Unary },
  );
  return {
    check(client: number, init: MessageInitShape<typeof CheckPermissionRequestSchema>): Promise<CheckPermissionResponse> {
      const c = clients[client % clients.length]!;
      return new Promise((resolve, reject) =>
        c.checkPermission(create(CheckPermissionRequestSchema, init), md, (err, res) => (err ? reject(err) : resolve(res!))),
      );
    },
    close() {
      for (const c of clients) c.close();
    },
  };
}

/** CheckPermission through sharegraph with grpc-js clients (see grpcJsClients). */
export function sharegraphGrpcJsChecker(clients: GrpcJsClients): Checker {
  return async (pair: SamplePair, client: number) => {
    const response = await clients.check(client, {
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
