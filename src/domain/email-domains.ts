import { createRequire } from "node:module";
import { getDomain } from "tldts";

// email-providers ships its list as JSON; require keeps it out of the ESM loader's JSON-import flag dance.
const freeMailDomains = createRequire(import.meta.url)("email-providers/all.json") as string[];

/**
 * R11 and partner invitations: which email domains stand for one
 * organization (private: acme.com, and eu.acme.com is the same organization)
 * and which are shared by unrelated people (public/free mail: gmail.com …).
 */
export class EmailDomains {
  readonly #publicDomains: ReadonlySet<string>;

  /** extraPublic: more domains to treat as public (config FREE_EMAIL_DOMAINS). */
  constructor(extraPublic: readonly string[] = []) {
    this.#publicDomains = new Set([...freeMailDomains, ...extraPublic.map((d) => d.toLowerCase())]);
  }

  /** The registrable domain from the public-suffix list (eu.acme.com → acme.com; user.github.io stays itself). */
  registrable(domain: string): string {
    return getDomain(domain, { allowPrivateDomains: true }) ?? domain;
  }

  isPublic(domain: string): boolean {
    return this.#publicDomains.has(domain) || this.#publicDomains.has(this.registrable(domain));
  }

  /**
   * What one invitation claims per inviting organization: the whole private
   * domain, or just the address on a public one.
   */
  claimKey(email: { address: string; domain: string }): string {
    return this.isPublic(email.domain) ? `email:${email.address}` : `domain:${this.registrable(email.domain)}`;
  }
}
