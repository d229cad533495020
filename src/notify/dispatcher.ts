import nodemailer from "nodemailer";
import { withToken } from "../domain/mail.js";
import type { Logger } from "../logger.js";
import type { Sealer } from "../secrets.js";
import type { NotificationRow } from "../store/notifications.js";
import type { Store } from "../store/store.js";

export interface DispatcherOptions {
  /** Opens the sealed invitation tokens the mails carry. */
  readonly invitationTokens: Sealer;
  readonly from: string;
  readonly pollMs: number;
  /** After this many failed attempts a notification is marked failed. */
  readonly maxAttempts: number;
  readonly maxBackoffMs: number;
}

/** Sends one message; a test double may stand in for SMTP. */
export type Send = (message: { from: string; to: string; subject: string; text: string }) => Promise<void>;

export function smtpSender(smtpUrl: string): { send: Send; close: () => void } {
  // Short timeouts: an unreachable SMTP server is retried later, not waited on.
  const transport = nodemailer.createTransport({ url: smtpUrl, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 20_000 });
  return {
    send: async (message) => {
      await transport.sendMail(message);
    },
    close: () => transport.close(),
  };
}

const BATCH = 20;
/** How long a sender holds a notification it is sending. */
const LEASE_MS = 60_000;

/**
 * Delivers recorded notifications (R43): leased so that one sender sends
 * each, marked sent on success, or retried later with exponential backoff
 * until maxAttempts.
 */
export class NotificationDispatcher {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(
    private readonly store: Store,
    private readonly send: Send,
    private readonly log: Logger,
    private readonly options: DispatcherOptions,
  ) {}

  start(): void {
    this.#stopped = false;
    this.#schedule(0);
  }

  /**
   * Stops polling and waits up to graceMs for a delivery pass under way
   * (during a database partition it may hang until the query timeout; a
   * notification it was sending is leased, and sent again later).
   */
  async stop(graceMs = 2_000): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    const running = this.#running?.catch(() => {});
    if (!running) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([running, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
  }

  /** Sends everything due now; returns how many were sent. */
  async deliverDue(): Promise<number> {
    let sent = 0;
    for (;;) {
      // Leased in a short transaction, sent outside any: a slow SMTP server never holds the database.
      const due = await this.store.read.notifications.lease(BATCH, LEASE_MS);
      for (const n of due) if (await this.#deliver(n)) sent++;
      if (due.length < BATCH) return sent;
    }
  }

  async #deliver(n: NotificationRow): Promise<boolean> {
    const repo = this.store.read.notifications;
    let text = n.body;
    if (n.secret !== null) {
      try {
        text = withToken(n.body, this.options.invitationTokens.open(n.secret));
      } catch (err) {
        // Without its token the mail is useless: give up on it (an admin revokes and invites again).
        const message = err instanceof Error ? err.message : String(err);
        await repo.markFailed(n.id, message, undefined);
        this.log.error({ notification: n.id, err: message }, "notification failed for good");
        return false;
      }
    }
    try {
      await this.send({ from: this.options.from, to: n.recipient, subject: n.subject, text });
    } catch (err) {
      const attempts = n.attempts + 1;
      const message = err instanceof Error ? err.message : String(err);
      const retry = attempts >= this.options.maxAttempts ? undefined : Math.min(this.options.pollMs * 2 ** attempts, this.options.maxBackoffMs);
      await repo.markFailed(n.id, message, retry);
      this.log.warn({ notification: n.id, attempts, err: message, retryInMs: retry }, retry === undefined ? "notification failed for good" : "notification not sent; will retry");
      return false;
    }
    await repo.markSent(n.id);
    this.log.info({ notification: n.id, kind: n.kind }, "notification sent");
    return true;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#running = this.deliverDue()
        .catch((err: unknown) => this.log.warn({ err: err instanceof Error ? err.message : String(err) }, "notification delivery pass failed"))
        .then(() => this.#schedule(this.options.pollMs));
    }, delayMs);
    this.#timer.unref();
  }
}
