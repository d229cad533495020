import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app.js";
import { LookupCursors } from "../../src/domain/lookup-pages.js";
import { Permissions } from "../../src/domain/permissions.js";
import { ViewDecisionCache } from "../../src/domain/view-decisions.js";
import type { CheckItem } from "../../src/engine/engine.js";
import { describeSchema, loadSchemaText } from "../../src/engine/schema.js";
import { changeArb, KINDS, playRandomTenant, setUpTenant, setupArb, USERS } from "../support/random-tenant.js";
import { startTestServer, type TestServer } from "../support/server.js";

/*
 * VIEW_CHECKS_FROM=postgres answers `view` on content from sharegraph's own
 * rows (src/store/content-view.ts); SpiceDB answers it from the
 * relationships derived from the same rows. Here a random tenant
 * (test/support/random-tenant.ts) goes through the domain, and after every
 * change each user's `view` of every item is asked of both: of SpiceDB at
 * the change's token, and of Postgres. They must agree — and so must
 * Postgres's answers remembered under their token (src/domain/view-decisions.ts),
 * asked twice at minimize_latency with a staleness bound of a minute: only the
 * token moving with every change keeps them fresh.
 */

let server: TestServer;
let app: App;
let partnerOrg: string;
let run = 0;

beforeAll(async () => {
  server = await startTestServer();
  app = server.app;
  partnerOrg = await setUpTenant(app);
});

afterAll(async () => {
  await server?.stop();
});

describe("R1, R7, R12: view on content answered from Postgres", () => {
  it("after every random change, Postgres and SpiceDB (at the change's token) give every user the same view of every item, one by one and as lookups", async () => {
    const { permissions } = app.domain;
    const remembered = new ViewDecisionCache({ maxEntries: 100_000, maxAgeMs: 60_000 });
    const fromPostgres = new Permissions(
      app.domain.engine,
      app.domain.tokens,
      describeSchema(loadSchemaText()),
      permissions.limits,
      new LookupCursors({ tag: () => Buffer.alloc(32), verify: () => false }),
      app.domain.store.read.contentView,
      remembered,
    );
    await fc.assert(
      fc.asyncProperty(setupArb, fc.array(changeArb, { minLength: 3, maxLength: 12 }), async (setup, changes) => {
        await playRandomTenant(app, partnerOrg, `v${++run}`, setup, changes, async ({ contents }, op, step, token) => {
          if (step < setup.length - 1 || contents.length === 0) return;
          const items: CheckItem[] = contents.flatMap((c) => USERS.map((u) => ({ resource: { type: c.type, id: c.id }, permission: "view", subject: { type: "user", id: u } })));
          const spicedb = await permissions.checkBulk(items, token ? { kind: "at_least_as_fresh", token } : { kind: "fully_consistent" });
          const postgres = await app.domain.store.read.contentView.canView(items.map((i) => ({ userId: i.subject.id, kind: i.resource.type, contentId: i.resource.id })));
          const differ = items.flatMap((item, i) =>
            spicedb.results[i]!.allowed === postgres[i]
              ? []
              : [`${item.subject.id} view ${item.resource.type}:${item.resource.id}: SpiceDB ${spicedb.results[i]!.allowed}, Postgres ${postgres[i]}`],
          );
          expect(differ, `after ${JSON.stringify(op)}`).toEqual([]);
          for (const time of ["first", "again"]) {
            const answers = (await fromPostgres.checkBulk(items, { kind: "minimize_latency" })).results.map((r) => r.allowed);
            expect(answers, `remembered answers (${time}) after ${JSON.stringify(op)}`).toEqual(spicedb.results.map((r) => r.allowed));
          }
          // LookupResources: each user's viewable items of each kind (of this run's), as SpiceDB allowed them one by one.
          const ours = new Set(contents.map((c) => c.id));
          for (const u of USERS) {
            for (const kind of KINDS) {
              const found = (await app.domain.store.read.contentView.viewable(u, kind)).filter((id) => ours.has(id));
              expect(new Set(found).size, `${u} ${kind}: each once`).toBe(found.length);
              const allowed = items.flatMap((item, i) => (item.subject.id === u && item.resource.type === kind && spicedb.results[i]!.allowed ? [item.resource.id] : []));
              expect(found.sort(), `${u} may view these ${kind}s, after ${JSON.stringify(op)}`).toEqual(allowed.sort());
            }
          }
        });
      }),
      { numRuns: 30, endOnFailure: true },
    );
    expect(remembered.stats.hits).toBeGreaterThan(0);
  }, 600_000);
});
