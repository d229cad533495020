import { domainToASCII } from "node:url";
import addrs from "email-addresses";
import { getDomain } from "tldts";
import { invalid } from "./errors.js";

/**
 * An email address as sharegraph stores and compares it: parsed with an RFC
 * 5322 parser, a single plain mailbox, the domain in lower-case ASCII
 * (IDNA/punycode), the local part kept as written but compared
 * case-insensitively (we lower-case it too: no real mail system we serve
 * distinguishes case there, and one person must not appear twice).
 */
export interface NormalizedEmail {
  readonly address: string;
  readonly local: string;
  /** ASCII (punycode) host name, lower case. */
  readonly domain: string;
}

/** RFC 1123 host name label (after IDNA). */
const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

export function normalizeEmail(input: string, field = "email"): NormalizedEmail {
  const text = input.trim();
  if (!text) throw invalid(field, "an email address is required");
  if (text.length > 320) throw invalid(field, "an email address has at most 320 characters");
  const parsed = addrs.parseOneAddress({ input: text, rfc6532: true, rejectTLD: true });
  if (!parsed || parsed.type !== "mailbox" || parsed.name) {
    throw invalid(field, `${JSON.stringify(text)} is not a plain email address (expected name@example.com)`);
  }
  const domain = domainToASCII(parsed.domain.toLowerCase());
  if (!domain || !domain.split(".").every((label) => DNS_LABEL.test(label))) {
    throw invalid(field, `${JSON.stringify(parsed.domain)} is not a valid email domain`);
  }
  // A bare public suffix (co.uk, com) is nobody's domain.
  if (!getDomain(domain, { allowPrivateDomains: true })) {
    throw invalid(field, `${JSON.stringify(parsed.domain)} is a public suffix, not an organization's domain`);
  }
  const local = parsed.local.toLowerCase();
  // Quoted local parts ("john smith"@x) are legal but never seen in practice; refusing them keeps addresses unambiguous.
  if (/[\s"\\@(),:;<>[\]]/.test(local)) throw invalid(field, `${JSON.stringify(text)}: quoted or spaced local parts are not supported`);
  return { address: `${local}@${domain}`, local, domain };
}
