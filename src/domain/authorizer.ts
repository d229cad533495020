import type { Engine, ObjectRef } from "../engine/engine.js";
import type { ConsistencyTokens } from "../sync/consistency.js";
import { denied } from "./errors.js";

/**
 * Rights answered from Postgres (src/store/directory-rights.ts) for
 * WRITE_CHECKS_FROM=postgres; undefined for a question it does not answer.
 */
export interface RightsIndex {
  can(actor: string, permission: string, resource: ObjectRef): Promise<boolean | undefined>;
}

/**
 * R40: every mutating call names an actor, and the actor's right to make the
 * change is a question to the permission graph, asked fully consistently —
 * after every committed change has reached SpiceDB — so that a right revoked
 * a moment ago is not used. With a RightsIndex, the questions it answers are
 * asked of Postgres, which holds every committed change.
 */
export class Authorizer {
  constructor(
    private readonly engine: Engine,
    private readonly tokens: ConsistencyTokens,
    private readonly index?: RightsIndex,
  ) {}

  async can(actor: string, permission: string, resource: ObjectRef): Promise<boolean> {
    const indexed = await this.index?.can(actor, permission, resource);
    if (indexed !== undefined) return indexed;
    const consistency = await this.tokens.resolve({ kind: "fully_consistent" });
    const result = await this.engine.check({ resource, permission, subject: { type: "user", id: actor } }, consistency);
    return result.allowed;
  }

  /** Throws PERMISSION_DENIED: "user bob may not <action>: needs <permission> on <resource>". */
  async require(actor: string, permission: string, resource: ObjectRef, action: string): Promise<void> {
    if (!(await this.can(actor, permission, resource))) {
      throw denied(`user ${actor} may not ${action}: that needs ${permission} on ${resource.type} ${resource.id}`);
    }
  }
}
