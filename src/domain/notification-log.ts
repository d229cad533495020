import type { NotificationStatus } from "../store/database.js";
import type { ListedNotification } from "../store/notifications.js";
import type { Page, PageOf } from "../store/paging.js";
import type { Store } from "../store/store.js";
import { invalid } from "./errors.js";

const STATUSES: readonly NotificationStatus[] = ["pending", "sent", "failed"];

/** R43: what was (or is to be) sent, with its delivery status. */
export class NotificationLog {
  constructor(private readonly store: Store) {}

  list(filter: { recipient: string; status: string }, page: Page): Promise<PageOf<ListedNotification>> {
    if (filter.status && !(STATUSES as readonly string[]).includes(filter.status)) {
      throw invalid("status", `one of ${STATUSES.join(", ")}, or empty`);
    }
    if (page.after !== undefined && !/^\d+$/.test(page.after)) throw invalid("page.page_token", "not a page token from this API");
    return this.store.read.notifications.list(
      { recipient: filter.recipient.toLowerCase() || undefined, status: (filter.status || undefined) as NotificationStatus | undefined },
      page,
    );
  }
}
