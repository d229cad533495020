import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { Health } from "../gen/health/v1/health_pb.js";
import { AdminService } from "../gen/sharegraph/v1/admin_service_pb.js";
import { ContentService } from "../gen/sharegraph/v1/content_service_pb.js";
import { DirectoryService } from "../gen/sharegraph/v1/directory_service_pb.js";
import { PartnerService } from "../gen/sharegraph/v1/partner_service_pb.js";
import { PermissionService } from "../gen/sharegraph/v1/permission_service_pb.js";
import { ServiceRelationshipService } from "../gen/sharegraph/v1/service_relationship_service_pb.js";
import { reflectionRoutes } from "./reflection.js";

export interface Services {
  readonly permission: ServiceImpl<typeof PermissionService>;
  readonly directory: ServiceImpl<typeof DirectoryService>;
  readonly content: ServiceImpl<typeof ContentService>;
  readonly partner: ServiceImpl<typeof PartnerService>;
  readonly serviceRelationship: ServiceImpl<typeof ServiceRelationshipService>;
  readonly admin: ServiceImpl<typeof AdminService>;
  readonly health: ServiceImpl<typeof Health>;
}

/** Every service sharegraph serves, by name (health status and reflection list them). */
export const SERVED = [PermissionService, DirectoryService, ContentService, PartnerService, ServiceRelationshipService, AdminService] as const;

/** The routes, separate from the server that listens (connect-es style). */
export function routes(services: Services): (router: ConnectRouter) => void {
  return (router) => {
    router.service(PermissionService, services.permission);
    router.service(DirectoryService, services.directory);
    router.service(ContentService, services.content);
    router.service(PartnerService, services.partner);
    router.service(ServiceRelationshipService, services.serviceRelationship);
    router.service(AdminService, services.admin);
    router.service(Health, services.health);
    reflectionRoutes([...SERVED, Health])(router);
  };
}
