import { sql, type Kysely } from "kysely";
import type { Database, NewRow, NotificationStatus, Row } from "./database.js";
import { pageOf, type PageOf } from "./paging.js";

export type NotificationRow = Row<"notifications">;
/** A notification as listed: everything but its sealed secret. */
export type ListedNotification = Omit<NotificationRow, "secret">;

const LISTED = ["id", "kind", "recipient", "subject", "body", "status", "attempts", "last_error", "next_attempt_at", "sent_at", "created_at"] as const;

export class NotificationsRepo {
  constructor(private readonly db: Kysely<Database>) {}

  async record(rows: ReadonlyArray<NewRow<"notifications">>): Promise<void> {
    if (rows.length === 0) return;
    await this.db.insertInto("notifications").values([...rows]).execute();
  }

  /**
   * Leases due notifications to this sender: their next attempt moves
   * `leaseMs` ahead, so no other sender (another gateway) takes them while
   * they are being sent, and a sender that dies mid-way is retried later.
   */
  async lease(limit: number, leaseMs: number): Promise<NotificationRow[]> {
    const result = await sql<NotificationRow>`
      update notifications set next_attempt_at = now() + make_interval(secs => ${leaseMs / 1000})
      where id in (
        select id from notifications
        where status = 'pending' and next_attempt_at <= now()
        order by id limit ${limit}
        for update skip locked
      )
      returning *
    `.execute(this.db);
    return result.rows.sort((a, b) => a.id - b.id);
  }

  /** Delivered: the sealed secret is erased, nobody needs it any more. */
  async markSent(id: number): Promise<void> {
    await this.db
      .updateTable("notifications")
      .set((eb) => ({ status: "sent", sent_at: sql<Date>`now()`, attempts: eb("attempts", "+", 1), last_error: null, secret: null }))
      .where("id", "=", id)
      .execute();
  }

  /** retryInMs undefined: failed for good, and the sealed secret is erased. */
  async markFailed(id: number, error: string, retryInMs: number | undefined): Promise<void> {
    await this.db
      .updateTable("notifications")
      .set((eb) => ({
        attempts: eb("attempts", "+", 1),
        last_error: error.slice(0, 2000),
        ...(retryInMs === undefined
          ? { status: "failed" as NotificationStatus, secret: null }
          : { next_attempt_at: sql<Date>`now() + make_interval(secs => ${retryInMs / 1000})` }),
      }))
      .where("id", "=", id)
      .execute();
  }

  /** Newest first; keyset on id. Never the sealed secret. */
  async list(filter: { recipient?: string | undefined; status?: NotificationStatus | undefined }, page: { limit: number; after?: string | undefined }): Promise<PageOf<ListedNotification>> {
    let q = this.db.selectFrom("notifications").select(LISTED).orderBy("id", "desc").limit(page.limit + 1);
    if (page.after !== undefined) q = q.where("id", "<", Number(page.after));
    if (filter.recipient) q = q.where("recipient", "=", filter.recipient);
    if (filter.status) q = q.where("status", "=", filter.status);
    return pageOf(await q.execute(), page.limit, (n) => String(n.id));
  }
}
