import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * The deployment's server key and what is derived from it.
 *
 * The key is 32 random bytes generated once into Postgres (table
 * `server_keys`, migration 0005), so every gateway of a deployment reads the
 * same key with no secret to distribute, it survives restarts, and it goes
 * with the data it vouches for: a backup restores the key together with the
 * outbox whose batches the tokens name. Whoever can read that table can mint
 * tokens — the same people who could change the data directly.
 *
 * Each use gets its own subkey (HKDF-SHA256 with a purpose label), so a MAC
 * made for one purpose never verifies for another.
 */
export class ServerKey {
  readonly #master: Buffer;

  constructor(master: Buffer) {
    if (master.length < 32) throw new Error("the server key must have at least 32 bytes");
    this.#master = Buffer.from(master);
  }

  /** A 32-byte key for one purpose, e.g. "consistency-token/v2". */
  subkey(purpose: string): Buffer {
    return Buffer.from(hkdfSync("sha256", this.#master, Buffer.alloc(0), `sharegraph ${purpose}`, 32));
  }

  /** HMAC-SHA256 tags for one purpose. */
  mac(purpose: string): Mac {
    return new Mac(this.subkey(purpose));
  }

  /** AES-256-GCM sealing for one purpose. */
  sealer(purpose: string): Sealer {
    return new Sealer(this.subkey(purpose), purpose);
  }
}

/** A 32-byte key as stored in `server_keys.secret` (base64url). */
export function newServerKeyText(): string {
  return randomBytes(32).toString("base64url");
}

export class Mac {
  constructor(private readonly key: Buffer) {}

  /** The first `bytes` bytes of HMAC-SHA256 over the text. */
  tag(text: string, bytes = 16): Buffer {
    return createHmac("sha256", this.key).update(text, "utf8").digest().subarray(0, bytes);
  }

  /** Constant-time comparison with the expected tag. */
  verify(text: string, tag: Buffer): boolean {
    const expected = this.tag(text, tag.length);
    return tag.length >= 16 && timingSafeEqual(expected, tag);
  }
}

/**
 * Authenticated encryption of small secrets kept at rest: "v1." then
 * base64url(12-byte IV ‖ ciphertext ‖ 16-byte GCM tag). The purpose is the
 * associated data, so a sealed value only opens for the purpose it was
 * sealed for. Migration 0005 seals with the same format (it cannot import
 * this module); a test pins the two together.
 */
export class Sealer {
  constructor(
    private readonly key: Buffer,
    private readonly purpose: string,
  ) {}

  seal(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    cipher.setAAD(Buffer.from(this.purpose, "utf8"));
    const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return `v1.${Buffer.concat([iv, body, cipher.getAuthTag()]).toString("base64url")}`;
  }

  /** Throws SealedSecretError if the value was not sealed with this key and purpose. */
  open(sealed: string): string {
    const raw = sealed.startsWith("v1.") ? Buffer.from(sealed.slice(3), "base64url") : Buffer.alloc(0);
    if (raw.length < 12 + 16) throw new SealedSecretError();
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.key, raw.subarray(0, 12));
      decipher.setAAD(Buffer.from(this.purpose, "utf8"));
      decipher.setAuthTag(raw.subarray(raw.length - 16));
      return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString("utf8");
    } catch {
      throw new SealedSecretError();
    }
  }
}

export class SealedSecretError extends Error {
  constructor() {
    super("a sealed secret could not be opened with this deployment's server key (was the key replaced?)");
    this.name = "SealedSecretError";
  }
}
