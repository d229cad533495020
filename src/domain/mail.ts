import type { NewRow } from "../store/database.js";

/**
 * The notifications partner changes produce (R43). They are recorded in the
 * same transaction as the change, then sent by SMTP when configured.
 */
export type NotificationInput = NewRow<"notifications">;

/** The sealing purpose of invitation tokens kept for their mail (src/secrets.ts; migration 0005 uses the same). */
export const INVITATION_TOKEN_PURPOSE = "invitation-token/v1";

/**
 * What the stored and listed body shows where the invitation token goes.
 * The token itself is kept only sealed with the server key (the
 * notification's `secret`), put in the placeholder's place when the mail is
 * sent (src/notify/dispatcher.ts), and erased once it is.
 */
export const TOKEN_PLACEHOLDER = "[invitation token: sent by mail only]";

/** The mail as sent: the body with the token in place of the placeholder. */
export function withToken(body: string, token: string): string {
  return body.split(TOKEN_PLACEHOLDER).join(token);
}

export interface SharedItem {
  readonly kind: string;
  readonly id: string;
  readonly name: string;
}

const itemLines = (items: readonly SharedItem[]) => items.map((i) => `  - ${i.kind} "${i.name}" (${i.id})`).join("\n");

export function invitationMail(input: {
  to: string;
  ownerName: string;
  inviterName: string;
  items: readonly SharedItem[];
  /** The invitation token sealed with the server key; the body holds TOKEN_PLACEHOLDER. */
  sealedToken: string;
  acceptUrl: string | undefined;
  expiresAt: Date;
}): NotificationInput {
  // Tokens are base64url, which a URL carries as it is: the placeholder needs no encoding step.
  const link = input.acceptUrl ? input.acceptUrl.replace("{token}", TOKEN_PLACEHOLDER) : undefined;
  return {
    kind: "partner_invitation",
    recipient: input.to,
    subject: `${input.ownerName} invited you to view their reports and boards`,
    secret: input.sealedToken,
    body: [
      `${input.inviterName} of ${input.ownerName} invited you as a partner, with view access to:`,
      itemLines(input.items),
      "",
      link ? `Accept the invitation: ${link}` : `Accept the invitation with this token: ${TOKEN_PLACEHOLDER}`,
      `(invitation token: ${TOKEN_PLACEHOLDER})`,
      "",
      `The invitation expires on ${input.expiresAt.toISOString()}. Once you accept, you get your own organization`,
      "and can invite your team; you can view live data and change metrics, filters and date ranges,",
      "but not save changes or see anything that was not shared with you.",
    ].join("\n"),
  };
}

export function acceptedMail(input: { to: string; partnerEmail: string; partnerOrganization: string; ownerName: string }): NotificationInput {
  return {
    kind: "partner_invitation_accepted",
    recipient: input.to,
    subject: `${input.partnerEmail} accepted your partner invitation`,
    body: `${input.partnerEmail} accepted the invitation to ${input.ownerName}'s shared reports and boards; partner organization: ${input.partnerOrganization}.`,
  };
}

export function sharedMoreMail(input: { to: string; ownerName: string; items: readonly SharedItem[] }): NotificationInput {
  return {
    kind: "partner_items_shared",
    recipient: input.to,
    subject: `${input.ownerName} shared more with your organization`,
    body: `${input.ownerName} shared these with your organization:\n${itemLines(input.items)}`,
  };
}

export function removedMail(input: { to: string; ownerName: string; partnerOrganization: string }): NotificationInput {
  return {
    kind: "partner_removed",
    recipient: input.to,
    subject: `${input.ownerName} removed your partner access`,
    body: `${input.ownerName} removed ${input.partnerOrganization} as a partner: the reports and boards it shared are no longer available.`,
  };
}

/** R23: a channel-partner user was given access to a customer's insights. */
export function channelPartnerAddedMail(input: { to: string; customerName: string; partnerOrganization: string }): NotificationInput {
  return {
    kind: "channel_partner_added",
    recipient: input.to,
    subject: `${input.customerName} gave you partner access to its insights`,
    body: [
      `${input.customerName} added you, as a user of ${input.partnerOrganization}, as a partner.`,
      "You can now view its metrics and insights on your Partner Dashboard.",
      `Access lasts while you belong to ${input.partnerOrganization} and it is a channel partner.`,
    ].join("\n"),
  };
}

/** R23: a channel-partner user's access to a customer's insights ended; nothing more about that customer follows. */
export function channelPartnerRemovedMail(input: { to: string; customerName: string; partnerOrganization: string }): NotificationInput {
  return {
    kind: "channel_partner_removed",
    recipient: input.to,
    subject: `${input.customerName} removed your partner access`,
    body: [
      `${input.customerName} removed your partner access (as a user of ${input.partnerOrganization}).`,
      "Its insights are no longer on your Partner Dashboard, and you will receive no more notifications about its data.",
      "Your own dashboards, insights and data are unchanged.",
    ].join("\n"),
  };
}
