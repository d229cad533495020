import { Code, ConnectError } from "@connectrpc/connect";
import { expect } from "vitest";

/** Subjects and consistency, as the API's JSON-friendly messages write them. */
export const user = (id: string) => ({ type: "user", id, relation: "" });
export const group = (id: string) => ({ type: "group", id, relation: "member" });
export const fresh = (token: string) => ({ requirement: { case: "atLeastAsFresh" as const, value: token } });

/** The code and message of a call that must fail; throws if it answers. */
export async function codeOf(promise: Promise<unknown>): Promise<{ code: Code; message: string }> {
  let value: unknown;
  try {
    value = await promise;
  } catch (err) {
    const e = ConnectError.from(err);
    return { code: e.code, message: e.rawMessage };
  }
  throw new Error(`expected the call to fail; it answered ${JSON.stringify(value, (_, v: unknown) => (typeof v === "bigint" ? String(v) : v))}`);
}

/** Expects the call to fail with `code` and a message matching `message`. */
export async function refusal(promise: Promise<unknown>, code: Code, message: RegExp): Promise<void> {
  const err = await codeOf(promise);
  expect({ code: Code[err.code], message: err.message }).toEqual({ code: Code[code], message: expect.stringMatching(message) });
}

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/**
 * The consistency token of a test file's last write, so that its next read
 * asks to be at least as fresh: `const { wrote } = tokens` wraps each write,
 * `tokens.last` is its token.
 */
export function writeTokens() {
  const tokens = {
    last: "",
    async wrote<T extends { consistencyToken: string }>(call: Promise<T>): Promise<T> {
      const r = await call;
      tokens.last = r.consistencyToken;
      return r;
    },
  };
  return tokens;
}
