import { Role } from "../../src/gen/sharegraph/v1/common_pb.js";
import { WorkspaceLevel } from "../../src/gen/sharegraph/v1/directory_service_pb.js";
import { FaultyEngine } from "./faulty-engine.js";
import { user } from "./rpc.js";
import { PLATFORM_ADMIN, startTestServer, type Clients, type TestServer } from "./server.js";

export interface AcmeSharingTenant {
  readonly server: TestServer;
  readonly clients: Clients;
  /** The engine the server asks, counting its bulk checks and able to fail writes. */
  readonly engine: FaultyEngine;
}

export interface AcmeSharingOptions {
  readonly env: Record<string, string>;
  /** Users who view workspace sales; bob and dave are always among them. */
  readonly viewers: readonly string[];
  /** Users created with nothing on the workspace. */
  readonly outsiders?: readonly string[];
}

/**
 * The sharing scenes' tenant: ann administers Acme (so manages everything);
 * the viewers view workspace sales; folder q3 holds dashboard pipeline, on
 * which bob is sharer, and dave inherits editor on it from q3.
 */
export async function startAcmeSharingTenant(options: AcmeSharingOptions): Promise<AcmeSharingTenant> {
  const engine = await FaultyEngine.create();
  const server = await startTestServer({ env: options.env, overrides: { engine: async () => engine } });
  const c = server.clients();
  const viewers = [...new Set(["bob", "dave", ...options.viewers])];
  for (const id of ["ann", ...viewers, ...(options.outsiders ?? [])]) await c.directory.createUser({ actor: PLATFORM_ADMIN, userId: id, email: `${id}@acme.example` });
  await c.directory.createOrganization({ actor: PLATFORM_ADMIN, organizationId: "acme", name: "Acme", adminUserIds: ["ann"] });
  await c.directory.createWorkspace({ actor: "ann", organizationId: "acme", workspaceId: "sales", name: "Sales" });
  for (const u of viewers) await c.directory.setWorkspacePermission({ actor: "ann", workspaceId: "sales", subject: user(u), level: WorkspaceLevel.VIEW });
  await c.content.createFolder({ actor: "ann", workspaceId: "sales", folderId: "q3", name: "Q3" });
  await c.content.createContent({ actor: "ann", kind: "dashboard", contentId: "pipeline", name: "Pipeline", workspaceId: "sales", folderId: "q3" });
  await c.content.share({ actor: "ann", resource: { type: "dashboard", id: "pipeline" }, subject: user("bob"), role: Role.SHARER });
  await c.content.share({ actor: "ann", resource: { type: "folder", id: "q3" }, subject: user("dave"), role: Role.EDITOR });
  return { server, clients: c, engine };
}
