import { sql, type Kysely } from "kysely";
import type { Database, NewRow, Row } from "./database.js";
import { likePattern, pageOf, type Page, type PageOf } from "./paging.js";

export type AccountRow = Row<"accounts">;
export type ServiceRow = Row<"services">;
export type ServiceAccountRow = Row<"service_accounts">;
export type AccountAssignmentRow = Row<"account_assignments">;

/** A row of the Partner Accounts table [002] (R30). */
export interface ServiceSummary {
  readonly service: ServiceRow;
  readonly provider_name: string;
  readonly consumer_name: string;
  readonly consumer_organization_id: string;
  readonly account_count: number;
}

/** A user of the consumer entity and how many of the selected accounts they hold (R32). */
export interface AssignableUser {
  readonly id: string;
  readonly email: string;
  readonly display_name: string;
  readonly current_access: number;
}

export type AssignableMode = "grant" | "revoke";

/** The permission index's object id of an account in a service. */
export function serviceAccountId(serviceId: string, accountId: string): string {
  return `${serviceId}/${accountId}`;
}

const CHUNK = 5_000;

export class ServicesRepo {
  constructor(private readonly db: Kysely<Database>) {}

  // ---- accounts ----

  async accounts(ids: readonly string[]): Promise<AccountRow[]> {
    if (ids.length === 0) return [];
    return this.db.selectFrom("accounts").selectAll().where("id", "in", ids).execute();
  }

  async insertAccounts(rows: ReadonlyArray<NewRow<"accounts">>): Promise<AccountRow[]> {
    if (rows.length === 0) return [];
    return this.db.insertInto("accounts").values([...rows]).returningAll().execute();
  }

  // ---- services ----

  async insert(row: NewRow<"services">): Promise<ServiceRow> {
    return this.db.insertInto("services").values(row).returningAll().executeTakeFirstOrThrow();
  }

  async get(id: string, lock = false): Promise<ServiceRow | undefined> {
    const q = this.db.selectFrom("services").selectAll().where("id", "=", id);
    return (lock ? q.forUpdate() : q).executeTakeFirst();
  }

  async end(id: string): Promise<ServiceRow | undefined> {
    return this.db.updateTable("services").set({ ended_at: sql<Date>`now()` }).where("id", "=", id).returningAll().executeTakeFirst();
  }

  /** R30: services of a consumer organization (its entities) or of a provider organization, by id. */
  async summaries(
    filter: { consumerOrganizationId?: string | undefined; providerOrganizationId?: string | undefined; serviceId?: string | undefined; query?: string | undefined; includeEnded?: boolean },
    page: Page,
  ): Promise<PageOf<ServiceSummary>> {
    let q = this.db
      .selectFrom("services as s")
      .innerJoin("organizations as p", "p.id", "s.provider_organization_id")
      .innerJoin("entities as e", "e.id", "s.consumer_entity_id")
      .selectAll("s")
      .select([
        "p.name as provider_name",
        "e.name as consumer_name",
        "e.organization_id as consumer_organization_id",
        (eb) =>
          eb
            .selectFrom("service_accounts as sa")
            .select(sql<number>`count(*)::int`.as("n"))
            .whereRef("sa.service_id", "=", "s.id")
            .as("account_count"),
      ])
      .orderBy("s.id")
      .limit(page.limit + 1);
    if (filter.consumerOrganizationId) q = q.where("e.organization_id", "=", filter.consumerOrganizationId);
    if (filter.providerOrganizationId) q = q.where("s.provider_organization_id", "=", filter.providerOrganizationId);
    if (filter.serviceId) q = q.where("s.id", "=", filter.serviceId);
    if (!filter.includeEnded) q = q.where("s.ended_at", "is", null);
    if (filter.query) {
      const pattern = likePattern(filter.query);
      q = q.where((eb) => eb.or([eb("s.name", "ilike", pattern), eb("p.name", "ilike", pattern)]));
    }
    if (page.after !== undefined) q = q.where("s.id", ">", page.after);
    const rows = await q.execute();
    return pageOf(
      rows.map(({ provider_name, consumer_name, consumer_organization_id, account_count, ...service }) => ({
        service,
        provider_name,
        consumer_name,
        consumer_organization_id,
        account_count: account_count ?? 0,
      })),
      page.limit,
      (s) => s.service.id,
    );
  }

  // ---- accounts of a service ----

  async serviceAccounts(serviceId: string): Promise<Array<ServiceAccountRow & { name: string }>> {
    return this.db
      .selectFrom("service_accounts as sa")
      .innerJoin("accounts as a", "a.id", "sa.account_id")
      .selectAll("sa")
      .select("a.name")
      .where("sa.service_id", "=", serviceId)
      .orderBy("sa.account_id")
      .execute();
  }

  async addServiceAccounts(serviceId: string, accountIds: readonly string[]): Promise<ServiceAccountRow[]> {
    if (accountIds.length === 0) return [];
    return this.db
      .insertInto("service_accounts")
      .values(accountIds.map((account_id) => ({ id: serviceAccountId(serviceId, account_id), service_id: serviceId, account_id })))
      .onConflict((oc) => oc.doNothing())
      .returningAll()
      .execute();
  }

  // ---- assignments ----

  /** Assigned users of each account of the service: at most `perAccount` users each, by user id, and the count. */
  async assigned(
    serviceId: string,
    perAccount: number,
  ): Promise<Map<string, { users: Array<{ id: string; email: string; display_name: string }>; count: number }>> {
    const rows = await this.db
      .selectFrom((eb) =>
        eb
          .selectFrom("account_assignments as aa")
          .innerJoin("service_accounts as sa", "sa.id", "aa.service_account_id")
          .innerJoin("users as u", "u.id", "aa.user_id")
          .select([
            "sa.account_id",
            "u.id",
            "u.email",
            "u.display_name",
            sql<number>`row_number() over (partition by sa.account_id order by u.id)::int`.as("n"),
            sql<number>`count(*) over (partition by sa.account_id)::int`.as("total"),
          ])
          .where("sa.service_id", "=", serviceId)
          .as("x"),
      )
      .selectAll()
      .where("x.n", "<=", perAccount)
      .orderBy("x.account_id")
      .orderBy("x.id")
      .execute();
    const out = new Map<string, { users: Array<{ id: string; email: string; display_name: string }>; count: number }>();
    for (const r of rows) {
      const entry = out.get(r.account_id) ?? { users: [], count: r.total };
      entry.users.push({ id: r.id, email: r.email, display_name: r.display_name });
      out.set(r.account_id, entry);
    }
    return out;
  }

  async assign(pairs: ReadonlyArray<{ service_account_id: string; user_id: string }>): Promise<AccountAssignmentRow[]> {
    const out: AccountAssignmentRow[] = [];
    for (let i = 0; i < pairs.length; i += CHUNK) {
      const rows = await this.db
        .insertInto("account_assignments")
        .values(pairs.slice(i, i + CHUNK))
        .onConflict((oc) => oc.doNothing())
        .returningAll()
        .execute();
      out.push(...rows);
    }
    return out;
  }

  async unassign(serviceAccountIds: readonly string[], userIds: readonly string[]): Promise<AccountAssignmentRow[]> {
    if (serviceAccountIds.length === 0 || userIds.length === 0) return [];
    const out: AccountAssignmentRow[] = [];
    for (let i = 0; i < userIds.length; i += CHUNK) {
      const rows = await this.db
        .deleteFrom("account_assignments")
        .where("service_account_id", "in", serviceAccountIds)
        .where("user_id", "in", userIds.slice(i, i + CHUNK))
        .returningAll()
        .execute();
      out.push(...rows);
    }
    return out;
  }

  /** Every assignment through the service's accounts (ending a service removes them, R33). */
  async unassignAll(serviceId: string): Promise<AccountAssignmentRow[]> {
    return this.db
      .deleteFrom("account_assignments")
      .where("service_account_id", "in", (eb) => eb.selectFrom("service_accounts").select("id").where("service_id", "=", serviceId))
      .returningAll()
      .execute();
  }

  /**
   * R32: users of the consumer entity with how many of the selected accounts
   * each holds; "grant" leaves out those holding all of them, "revoke" those
   * holding none. Keyset paging on user id; `query` matches names and emails.
   */
  async assignableUsers(
    entityId: string,
    serviceAccountIds: readonly string[],
    mode: AssignableMode,
    query: string,
    page: Page,
  ): Promise<PageOf<AssignableUser>> {
    const current = sql<number>`count(aa.user_id)::int`;
    let q = this.db
      .selectFrom("entity_members as m")
      .innerJoin("users as u", "u.id", "m.user_id")
      .leftJoin("account_assignments as aa", (join) =>
        join.onRef("aa.user_id", "=", "u.id").on("aa.service_account_id", "in", [...serviceAccountIds]),
      )
      .select(["u.id", "u.email", "u.display_name", current.as("current_access")])
      .where("m.entity_id", "=", entityId)
      .groupBy(["u.id", "u.email", "u.display_name"])
      .having(mode === "grant" ? sql<boolean>`count(aa.user_id) < ${serviceAccountIds.length}` : sql<boolean>`count(aa.user_id) > 0`)
      .orderBy("u.id")
      .limit(page.limit + 1);
    if (page.after !== undefined) q = q.where("u.id", ">", page.after);
    if (query) {
      const pattern = likePattern(query);
      q = q.where((eb) => eb.or([eb("u.display_name", "ilike", pattern), eb("u.email", "ilike", pattern)]));
    }
    return pageOf(await q.execute(), page.limit, (u) => u.id);
  }

  /** Which of these users are members of the entity. */
  async entityMembersAmong(entityId: string, userIds: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    for (let i = 0; i < userIds.length; i += CHUNK) {
      const rows = await this.db
        .selectFrom("entity_members")
        .select("user_id")
        .where("entity_id", "=", entityId)
        .where("user_id", "in", userIds.slice(i, i + CHUNK))
        .execute();
      for (const r of rows) found.add(r.user_id);
    }
    return found;
  }
}
