import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app.js";
import type { CheckItem, SubjectRef } from "../../src/engine/engine.js";
import type { SharingSubject } from "../../src/store/sharing-questions.js";
import { changeArb, playRandomTenant, setUpTenant, setupArb, USERS, type TenantState } from "../support/random-tenant.js";
import { PLATFORM_ADMIN, startTestServer, type TestServer } from "../support/server.js";

/*
 * WRITE_CHECKS_FROM=postgres answers a Share's own questions from
 * sharegraph's rows (src/store/sharing-questions.ts): what the actor may do
 * on the item (manage, edit, share after workspace caps), whether the
 * grantee is eligible on the item's workspace (R6: eligible,
 * eligible_native), and the highest role the grantee inherits from the
 * parent folder with the nearest folder granting it (R1, R2). After every
 * random change of a random tenant each of these is asked of Postgres and of
 * SpiceDB at the change's token, for every item, every user as actor and
 * every kind of grantee. They must agree. So must the directory's rights
 * that WRITE_CHECKS_FROM=postgres answers from Postgres
 * (src/store/directory-rights.ts): `manage` on organizations, groups and an
 * entity, `change_permissions` on workspaces, for every user and the
 * platform admin, objects that do not exist included.
 */

const ROLE_LEVELS = [
  ["manager", "manage"],
  ["editor", "edit"],
  ["sharer", "share"],
  ["viewer", "view"],
] as const;

let server: TestServer;
let app: App;
let partnerOrg: string;
let run = 0;

beforeAll(async () => {
  server = await startTestServer();
  app = server.app;
  partnerOrg = await setUpTenant(app);
  await app.domain.directory.createEntity("owner", "opt", { id: "opt-emea", name: "EMEA" });
});

afterAll(async () => {
  await server?.stop();
});

interface Probe {
  readonly resource: { type: string; id: string };
  readonly workspaceId: string;
  readonly baseFolderId: string | null;
  readonly parentFolderId: string | null;
  /** The parent folder and every folder above it, nearest first. */
  readonly parents: readonly string[];
}

async function probes(state: TenantState): Promise<Probe[]> {
  const read = app.domain.store.read;
  const out: Probe[] = [];
  const parentsOf = async (id: string | null) => (id ? (await read.folders.ancestry(id)).map((f) => f.id) : []);
  for (const f of await read.folders.getMany(state.folders.map((x) => x.id))) {
    out.push({ resource: { type: "folder", id: f.id }, workspaceId: f.workspace_id, baseFolderId: f.id, parentFolderId: f.parent_id, parents: await parentsOf(f.parent_id) });
  }
  for (const c of await read.content.getMany(state.contents.map((x) => x.id))) {
    out.push({ resource: { type: c.kind, id: c.id }, workspaceId: c.workspace_id, baseFolderId: c.folder_id, parentFolderId: c.folder_id, parents: await parentsOf(c.folder_id) });
  }
  return out;
}

function subjectRef(s: SharingSubject): SubjectRef {
  return s.kind === "user" ? { type: "user", id: s.id } : { type: s.kind, id: s.id, relation: "member" };
}

/** The directory's rights, asked of SpiceDB fully consistently and of Postgres: the questions on which they differ. */
async function directoryRightsDiffer(state: TenantState): Promise<string[]> {
  const resources = [
    ...["opt", partnerOrg, "no-such-org"].map((id) => ({ permission: "manage", resource: { type: "organization", id } })),
    ...[...Object.values(state.groups), "no-such-group"].map((id) => ({ permission: "manage", resource: { type: "group", id } })),
    ...["opt-emea", "no-such-entity"].map((id) => ({ permission: "manage", resource: { type: "entity", id } })),
    ...[...state.workspaces, "no-such-workspace"].map((id) => ({ permission: "change_permissions", resource: { type: "workspace", id } })),
  ];
  const items: CheckItem[] = [...USERS, PLATFORM_ADMIN].flatMap((actor) => resources.map((r) => ({ ...r, subject: { type: "user", id: actor } })));
  const spicedb = await app.domain.permissions.checkBulk(items, { kind: "fully_consistent" });
  const differ: string[] = [];
  for (const [i, item] of items.entries()) {
    const postgres = await app.domain.store.read.directoryRights.can(item.subject.id, item.permission, item.resource);
    if (postgres !== spicedb.results[i]!.allowed) {
      differ.push(`${item.subject.id} ${item.permission} on ${item.resource.type}:${item.resource.id}: SpiceDB ${spicedb.results[i]!.allowed}, Postgres ${postgres}`);
    }
  }
  return differ;
}

describe("R1, R2, R5, R6, R7, R40: a write's own questions answered from Postgres", () => {
  it("after every random change, Postgres and SpiceDB (at the change's token) agree on every actor's rights, every grantee's eligibility and inherited role, and the directory's rights", async () => {
    const { permissions } = app.domain;
    await fc.assert(
      fc.asyncProperty(setupArb, fc.array(changeArb, { minLength: 3, maxLength: 10 }), async (setup, changes) => {
        await playRandomTenant(app, partnerOrg, `s${++run}`, setup, changes, async (state, op, step, token) => {
          if (step < setup.length - 1) return;
          const grantees: SharingSubject[] = [
            ...USERS.map((id) => ({ kind: "user" as const, id })),
            ...Object.values(state.groups).map((id) => ({ kind: "group" as const, id })),
            { kind: "organization", id: "opt" },
          ];
          const consistency = token ? ({ kind: "at_least_as_fresh", token } as const) : ({ kind: "fully_consistent" } as const);
          const differ: string[] = [];
          for (const probe of await probes(state)) {
            // One question per grantee, each with an actor in turn: every actor and every grantee is asked once per item.
            const asked = grantees.map((grantee, i) => ({ actor: USERS[i % USERS.length]!, grantee }));
            const items: CheckItem[] = [];
            const at = (item: CheckItem) => items.push(item) - 1;
            const expected = asked.map(({ actor, grantee }) => {
              const subject = subjectRef(grantee);
              const ws = { type: "workspace", id: probe.workspaceId };
              return {
                manage: at({ resource: probe.resource, permission: "manage", subject: { type: "user", id: actor } }),
                edit: at({ resource: probe.resource, permission: "edit", subject: { type: "user", id: actor } }),
                share: at({ resource: probe.resource, permission: "share", subject: { type: "user", id: actor } }),
                eligible: grantee.kind === "organization" ? -1 : at({ resource: ws, permission: "eligible", subject }),
                eligibleNative: grantee.kind === "organization" ? -1 : at({ resource: ws, permission: "eligible_native", subject }),
                granted: probe.parentFolderId
                  ? ROLE_LEVELS.map(([, level]) => at({ resource: { type: "folder", id: probe.parentFolderId! }, permission: `granted_${level}`, subject }))
                  : [],
                direct: ROLE_LEVELS.map(([, level]) => probe.parents.map((id) => at({ resource: { type: "folder", id }, permission: `direct_${level}`, subject }))),
              };
            });
            const spicedb = (await permissions.checkBulk(items, consistency)).results.map((r) => r.allowed);
            for (const [i, { actor, grantee }] of asked.entries()) {
              const e = expected[i]!;
              const found = await app.domain.store.read.sharingQuestions.ask({
                itemType: probe.resource.type,
                itemId: probe.resource.id,
                workspaceId: probe.workspaceId,
                baseFolderId: probe.baseFolderId,
                actor,
                grantee,
                askEligibility: grantee.kind !== "organization",
                parentFolderId: probe.parentFolderId,
              });
              const level = e.granted.findIndex((k) => spicedb[k]);
              const inheritedRole = level < 0 ? undefined : ROLE_LEVELS[level]![0];
              const inheritedFrom = level < 0 ? undefined : probe.parents[e.direct[level]!.findIndex((k) => spicedb[k])];
              const want = {
                actorCan: { manage: spicedb[e.manage], edit: spicedb[e.edit], share: spicedb[e.share] },
                ...(grantee.kind === "organization" ? {} : { eligible: spicedb[e.eligible], eligibleNative: spicedb[e.eligibleNative] }),
                inheritedRole,
                inheritedFrom,
              };
              const got = {
                actorCan: found.actorCan,
                ...(grantee.kind === "organization" ? {} : { eligible: found.eligible, eligibleNative: found.eligibleNative }),
                inheritedRole: found.inheritedRole,
                inheritedFrom: found.inheritedFrom,
              };
              if (JSON.stringify(got) !== JSON.stringify(want)) {
                differ.push(`${probe.resource.type}:${probe.resource.id}, actor ${actor}, ${grantee.kind} ${grantee.id}: SpiceDB ${JSON.stringify(want)}, Postgres ${JSON.stringify(got)}`);
              }
            }
          }
          differ.push(...(await directoryRightsDiffer(state)));
          expect(differ, `after ${JSON.stringify(op)}`).toEqual([]);
        });
      }),
      { numRuns: 12, endOnFailure: true },
    );
  }, 600_000);
});
