import { describe, expect, it } from "vitest";
import { normalizeEmail } from "../../src/domain/email.js";
import { EmailDomains } from "../../src/domain/email-domains.js";
import { DomainError } from "../../src/domain/errors.js";

function refusal(input: string): string {
  try {
    normalizeEmail(input);
  } catch (err) {
    if (err instanceof DomainError && err.kind === "invalid_argument") return err.message;
    throw err;
  }
  throw new Error(`${input} was accepted`);
}

describe("normalizeEmail", () => {
  it("lower-cases, trims, and writes IDN domains in punycode", () => {
    expect(normalizeEmail("  JOHN@Company.COM ").address).toBe("john@company.com");
    expect(normalizeEmail("x@bücher.de")).toEqual({ address: "x@xn--bcher-kva.de", local: "x", domain: "xn--bcher-kva.de" });
  });

  it("refuses what is not one plain address, naming the field", () => {
    expect(refusal("John Doe <john@x.com>")).toMatch(/^email: .* is not a plain email address/);
    expect(refusal("not-an-email")).toMatch(/^email: /);
    expect(refusal("a@b@c.com")).toMatch(/^email: /);
    expect(refusal('"john smith"@x.com')).toMatch(/quoted or spaced local parts/);
    expect(refusal("")).toBe("email: an email address is required");
  });

  it("refuses domains no organization can own: bare public suffixes and malformed labels", () => {
    expect(refusal("john@co.uk")).toMatch(/"co.uk" is a public suffix/);
    expect(refusal("john@-company.com")).toMatch(/is not a valid email domain/);
    expect(refusal("john@company-.com")).toMatch(/is not a valid email domain/);
    expect(refusal("john@localhost")).toMatch(/^email: /);
  });
});

describe("EmailDomains (R11)", () => {
  const domains = new EmailDomains(["Partners.Example"]);

  it("claims the registrable domain of a private address: eu.acme.com is acme.com", () => {
    expect(domains.claimKey(normalizeEmail("john@acme.com"))).toBe("domain:acme.com");
    expect(domains.claimKey(normalizeEmail("jane@eu.acme.com"))).toBe("domain:acme.com");
    expect(domains.claimKey(normalizeEmail("kim@sales.acme.co.uk"))).toBe("domain:acme.co.uk");
  });

  it("claims only the address on public and free-mail domains, from the list and from configuration", () => {
    for (const email of ["a@gmail.com", "b@outlook.com", "c@yahoo.com", "d@partners.example", "e@eu.partners.example"]) {
      expect(domains.claimKey(normalizeEmail(email))).toBe(`email:${normalizeEmail(email).address}`);
    }
    expect(new EmailDomains().claimKey(normalizeEmail("d@partners.example"))).toBe("domain:partners.example");
  });
});
