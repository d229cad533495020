import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app.js";
import { DomainError } from "../../src/domain/errors.js";
import type { RoleName } from "../../src/store/database.js";
import { PLATFORM_ADMIN, startTestServer, type TestServer } from "../support/server.js";

/*
 * R1/R2 as a property: for random folder trees and random share operations,
 * the effective role SpiceDB reports equals max(direct, inherited) computed
 * here independently, and a share is refused exactly when it is less
 * permissive than what the grantee inherits.
 */

const ROLES: RoleName[] = ["viewer", "sharer", "editor", "manager"];
const rank = (r: RoleName | undefined) => (r === undefined ? 0 : ROLES.indexOf(r) + 1);
const USERS = ["u1", "u2"];
/** Effective permission per role: each role is the weakest one with that permission. */
const PERMISSION_OF: Record<RoleName, string> = { viewer: "view", sharer: "share", editor: "edit", manager: "manage" };

interface Tree {
  /** parents[i]: index of folder i's parent folder (always < i), or -1 for the workspace root. */
  readonly parents: number[];
  /** dashboards[j]: index of the folder holding dashboard j, or -1 for the root. */
  readonly dashboards: number[];
}

type Target = { readonly kind: "folder" | "dashboard"; readonly index: number };
interface ShareOp {
  readonly target: Target;
  readonly user: string;
  readonly role: RoleName;
}

const treeArb: fc.Arbitrary<Tree> = fc.integer({ min: 1, max: 6 }).chain((folders) =>
  fc.record({
    parents: fc.tuple(...Array.from({ length: folders }, (_, i) => fc.integer({ min: -1, max: i - 1 }))),
    dashboards: fc.array(fc.integer({ min: -1, max: folders - 1 }), { minLength: 1, maxLength: 5 }),
  }),
);

const scenarioArb = treeArb.chain((tree) =>
  fc.record({
    tree: fc.constant(tree),
    ops: fc.array(
      fc.record({
        target: fc.oneof(
          fc.record({ kind: fc.constant("folder" as const), index: fc.integer({ min: 0, max: tree.parents.length - 1 }) }),
          fc.record({ kind: fc.constant("dashboard" as const), index: fc.integer({ min: 0, max: tree.dashboards.length - 1 }) }),
        ),
        user: fc.constantFrom(...USERS),
        role: fc.constantFrom(...ROLES),
      }),
      { minLength: 1, maxLength: 12 },
    ),
  }),
);

/** The independent model: direct grants, and inheritance computed by walking up the tree. */
class Model {
  readonly direct = new Map<string, RoleName>();

  constructor(private readonly tree: Tree) {}

  key(t: Target, user: string): string {
    return `${t.kind}:${t.index}:${user}`;
  }

  parentFolder(t: Target): number {
    return t.kind === "folder" ? this.tree.parents[t.index]! : this.tree.dashboards[t.index]!;
  }

  /** The highest direct grant on any ancestor folder. */
  inherited(t: Target, user: string): RoleName | undefined {
    let best: RoleName | undefined;
    for (let f = this.parentFolder(t); f !== -1; f = this.tree.parents[f]!) {
      const role = this.direct.get(this.key({ kind: "folder", index: f }, user));
      if (rank(role) > rank(best)) best = role;
    }
    return best;
  }

  effective(t: Target, user: string): RoleName | undefined {
    const direct = this.direct.get(this.key(t, user));
    const inherited = this.inherited(t, user);
    return rank(direct) >= rank(inherited) ? direct : inherited;
  }

  /** Applies a share as R2 says; returns whether it must be refused. */
  share(op: ShareOp): "refused" | "ok" {
    const inherited = this.inherited(op.target, op.user);
    if (rank(op.role) < rank(inherited)) return "refused";
    if (rank(op.role) === rank(inherited)) this.direct.delete(this.key(op.target, op.user));
    else this.direct.set(this.key(op.target, op.user), op.role);
    return "ok";
  }
}

let server: TestServer;
let app: App;
let run = 0;

beforeAll(async () => {
  server = await startTestServer();
  app = server.app;
  const { directory } = app.domain;
  await directory.createUser(PLATFORM_ADMIN, { id: "owner", email: "owner@prop.example", displayName: "Owner" });
  for (const u of USERS) await directory.createUser(PLATFORM_ADMIN, { id: u, email: `${u}@prop.example`, displayName: u });
  await directory.createOrganization(PLATFORM_ADMIN, { id: "prop", name: "Prop", channelPartner: false, adminUserIds: ["owner"] });
});

afterAll(async () => {
  await server?.stop();
});

describe("R1/R2 property", () => {
  it("effective role = max(direct, inherited); R2 refusals exactly when less permissive than inherited", async () => {
    const { directory, catalog, sharing, permissions } = app.domain;
    await fc.assert(
      fc.asyncProperty(scenarioArb, async ({ tree, ops }) => {
        const ws = `ws${++run}`;
        await directory.createWorkspace("owner", "prop", { id: ws, name: ws });
        // ANALYZE for everyone: workspace caps never lower a role here, so only R1/R2 are under test.
        for (const u of USERS) await directory.setWorkspacePermission("owner", ws, { kind: "user", id: u }, "analyze");
        const folderId = (i: number) => `${ws}-f${i}`;
        const dashboardId = (j: number) => `${ws}-d${j}`;
        for (const [i, parent] of tree.parents.entries()) {
          await catalog.createFolder("owner", { workspaceId: ws, id: folderId(i), name: `F${i}`, parentId: parent === -1 ? undefined : folderId(parent) });
        }
        for (const [j, folder] of tree.dashboards.entries()) {
          await catalog.createContent("owner", { kind: "dashboard", workspaceId: ws, id: dashboardId(j), name: `D${j}`, folderId: folder === -1 ? undefined : folderId(folder) });
        }
        const model = new Model(tree);
        const ref = (t: Target) => (t.kind === "folder" ? { type: "folder", id: folderId(t.index) } : { type: "dashboard", id: dashboardId(t.index) });
        let token = "";
        for (const op of ops) {
          const expected = model.share(op);
          try {
            const c = await sharing.share("owner", ref(op.target), { kind: "user", id: op.user }, op.role);
            token = c.token;
            expect(expected, `share ${op.role} on ${ref(op.target).id} to ${op.user} should be refused`).toBe("ok");
          } catch (err) {
            if (!(err instanceof DomainError) || err.reason !== "LESS_PERMISSIVE_THAN_INHERITED") throw err;
            expect(expected, `share ${op.role} on ${ref(op.target).id} to ${op.user}: ${err.message}`).toBe("refused");
          }
        }
        const targets: Target[] = [
          ...tree.parents.map((_, index) => ({ kind: "folder" as const, index })),
          ...tree.dashboards.map((_, index) => ({ kind: "dashboard" as const, index })),
        ];
        const items = targets.flatMap((t) =>
          USERS.flatMap((u) => ROLES.map((role) => ({ t, u, role, item: { resource: ref(t), permission: PERMISSION_OF[role], subject: { type: "user", id: u } } }))),
        );
        const answers = await permissions.checkBulk(
          items.map((i) => i.item),
          token ? { kind: "at_least_as_fresh", token } : { kind: "fully_consistent" },
        );
        for (const [n, { t, u, role }] of items.entries()) {
          const effective = model.effective(t, u);
          expect(answers.results[n]!.allowed, `${u} ${PERMISSION_OF[role]} on ${ref(t).id} (model: ${effective ?? "none"})`).toBe(rank(effective) >= rank(role));
        }
      }),
      { numRuns: 30 },
    );
  });
});
