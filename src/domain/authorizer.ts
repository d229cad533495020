import type { Engine, ObjectRef } from "../engine/engine.js";
import { denied } from "./errors.js";

/**
 * R40: every mutating call names an actor, and the actor's right to make the
 * change is a question to the permission graph, asked fully consistently so
 * that a right revoked a moment ago is not used.
 */
export class Authorizer {
  constructor(private readonly engine: Engine) {}

  async can(actor: string, permission: string, resource: ObjectRef): Promise<boolean> {
    const result = await this.engine.check(
      { resource, permission, subject: { type: "user", id: actor } },
      { kind: "fully_consistent" },
    );
    return result.allowed;
  }

  /** Throws PERMISSION_DENIED: "user bob may not <action>: needs <permission> on <resource>". */
  async require(actor: string, permission: string, resource: ObjectRef, action: string): Promise<void> {
    if (!(await this.can(actor, permission, resource))) {
      throw denied(`user ${actor} may not ${action}: that needs ${permission} on ${resource.type} ${resource.id}`);
    }
  }
}
