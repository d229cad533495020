import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { App, type AppOverrides } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { AdminService } from "../../src/gen/sharegraph/v1/admin_service_pb.js";
import { ContentService } from "../../src/gen/sharegraph/v1/content_service_pb.js";
import { DirectoryService } from "../../src/gen/sharegraph/v1/directory_service_pb.js";
import { PartnerService } from "../../src/gen/sharegraph/v1/partner_service_pb.js";
import { PermissionService } from "../../src/gen/sharegraph/v1/permission_service_pb.js";
import { ServiceRelationshipService } from "../../src/gen/sharegraph/v1/service_relationship_service_pb.js";
import { freshTarget } from "./database.js";
import { grpcJsClient } from "./grpc-js-client.js";

export const ADMIN_KEY = "test-admin-key-0123456789";
export const CHECK_KEY = "test-check-key-0123456789";
/** The platform admin every test server has. */
export const PLATFORM_ADMIN = "admin";

export interface Clients {
  readonly permission: Client<typeof PermissionService>;
  readonly directory: Client<typeof DirectoryService>;
  readonly content: Client<typeof ContentService>;
  readonly partner: Client<typeof PartnerService>;
  readonly serviceRelationship: Client<typeof ServiceRelationshipService>;
  readonly admin: Client<typeof AdminService>;
}

export type ClientKind = "connect" | "grpc-js";

export interface TestServer {
  readonly app: App;
  readonly baseUrl: string;
  readonly address: string;
  /** Clients with the admin key (or the given one; null: none), over Connect's gRPC transport or @grpc/grpc-js. */
  clients(kind?: ClientKind, apiKey?: string | null): Clients;
  stop(): Promise<void>;
}

export interface TestServerOptions {
  readonly env?: Record<string, string>;
  readonly overrides?: AppOverrides;
  /** Keep the database after stop (restart tests pass the same target again). */
  readonly database?: AppOverrides["database"];
}

/** A real sharegraph on a free port, with a fresh database and an embedded SpiceDB. */
/** Whether this environment selects the embedded engine (SPICEDB_EMBEDDED_THREAD is refused with the others). */
function embedded(env: Record<string, string> = {}): boolean {
  const engine = env["SHAREGRAPH_ENGINE"];
  return engine === "embedded" || (engine === undefined && !env["SPICEDB_ENDPOINT"]);
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const fresh = options.database ? { target: options.database, dispose: async () => {} } : await freshTarget();
  const config = loadConfig({
    SHAREGRAPH_ADDR: "127.0.0.1:0",
    SHAREGRAPH_API_KEYS: `${ADMIN_KEY}:admin,${CHECK_KEY}:check`,
    LOG_LEVEL: process.env["TEST_LOG_LEVEL"] ?? "silent",
    // In-thread by default: each engine call then costs no hop between threads, which on a
    // loaded machine adds up over a suite of servers (measured on four API files: a third to a half slower at load 7-13 on 2 cores). The thread has
    // its own tests (test/engine/threaded.test.ts, test/app-thread.test.ts, main.test.ts's
    // processes); TEST_EMBEDDED_THREAD=true runs every test server with it.
    ...(embedded(options.env) ? { SPICEDB_EMBEDDED_THREAD: process.env["TEST_EMBEDDED_THREAD"] ?? "false" } : {}),
    OUTBOX_POLL_MS: "200",
    // TEST_WRITE_CHECKS_FROM=postgres answers every test server's write checks from Postgres
    // (.ci/run does so on real Postgres); a test about either path names it in its env.
    ...(process.env["TEST_WRITE_CHECKS_FROM"] ? { WRITE_CHECKS_FROM: process.env["TEST_WRITE_CHECKS_FROM"] } : {}),
    ...options.env,
  });
  const app = await App.create(config, { database: fresh.target, ...options.overrides });
  const { port } = await app.start();
  await app.ready;
  const baseUrl = `http://127.0.0.1:${port}`;
  const closers: Array<() => void> = [];
  return {
    app,
    baseUrl,
    address: `127.0.0.1:${port}`,
    clients(kind: ClientKind = "connect", apiKey: string | null = ADMIN_KEY): Clients {
      if (kind === "connect") {
        const transport = createGrpcTransport({ baseUrl, interceptors: apiKey === null ? [] : [bearer(apiKey)] });
        return {
          permission: createClient(PermissionService, transport),
          directory: createClient(DirectoryService, transport),
          content: createClient(ContentService, transport),
          partner: createClient(PartnerService, transport),
          serviceRelationship: createClient(ServiceRelationshipService, transport),
          admin: createClient(AdminService, transport),
        };
      }
      const make = <S extends DescService>(s: S) => {
        const { client, close } = grpcJsClient(s, `127.0.0.1:${port}`, apiKey ?? undefined);
        closers.push(close);
        return client;
      };
      return { permission: make(PermissionService), directory: make(DirectoryService), content: make(ContentService),
        partner: make(PartnerService),
        serviceRelationship: make(ServiceRelationshipService),
        admin: make(AdminService),
      };
    },
    async stop() {
      for (const close of closers) close();
      await app.stop(500);
      await fresh.dispose();
    },
  };
}

export function bearer(key: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${key}`);
    return next(req);
  };
}
