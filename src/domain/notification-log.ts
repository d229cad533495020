import type { NotificationStatus } from "../store/database.js";
import type { ListedNotification } from "../store/notifications.js";
import type { Page, PageOf } from "../store/paging.js";
import type { Store } from "../store/store.js";
import { invalid } from "./errors.js";

const STATUSES: readonly NotificationStatus[] = ["pending", "sent", "failed"];

/**
 * What a listed notification's status says. Without SMTP_URL nothing is ever
 * sent: a notification is then "recorded" (that is all that will happen to
 * it), not "pending" forever.
 */
export type ListedStatus = NotificationStatus | "recorded";

/** R43: what was (or is to be) sent, with its delivery status. */
export class NotificationLog {
  constructor(
    private readonly store: Store,
    /** Whether notifications are sent (SMTP_URL is set). */
    private readonly sending = true,
  ) {}

  async list(filter: { recipient: string; status: string }, page: Page): Promise<PageOf<Omit<ListedNotification, "status"> & { status: ListedStatus }>> {
    const statuses: readonly string[] = this.sending ? STATUSES : ["recorded", ...STATUSES];
    if (filter.status && !statuses.includes(filter.status)) {
      throw invalid("status", `one of ${statuses.join(", ")}, or empty`);
    }
    if (page.after !== undefined && !/^\d+$/.test(page.after)) throw invalid("page.page_token", "not a page token from this API");
    const status = filter.status === "recorded" ? "pending" : ((filter.status || undefined) as NotificationStatus | undefined);
    const result = await this.store.read.notifications.list({ recipient: filter.recipient.toLowerCase() || undefined, status }, page);
    if (this.sending) return result;
    return { ...result, items: result.items.map((n) => (n.status === "pending" ? { ...n, status: "recorded" as const } : n)) };
  }
}
