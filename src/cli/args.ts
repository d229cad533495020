import { parseArgs } from "node:util";

/** A mistake on the command line: printed with the usage hint, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export interface ObjectArg {
  readonly type: string;
  readonly id: string;
}

export interface SubjectArg extends ObjectArg {
  readonly relation: string;
}

const TYPE = /^[a-z][a-z0-9_]*$/;

/** `dashboard:q3-revenue` (zed's `type:id`). */
export function parseObject(text: string | undefined, what: string): ObjectArg {
  if (text === undefined) throw new UsageError(`missing ${what} (type:id, e.g. dashboard:q3-revenue)`);
  const colon = text.indexOf(":");
  const type = text.slice(0, colon);
  const id = text.slice(colon + 1);
  if (colon <= 0 || !TYPE.test(type) || id === "" || id.includes("#")) throw new UsageError(`${what} ${JSON.stringify(text)}: write it as type:id, e.g. dashboard:q3-revenue`);
  return { type, id };
}

/** `user:dave`, `group:analysts` (member implied by the server) or `group:analysts#member`. */
export function parseSubject(text: string | undefined, what = "subject"): SubjectArg {
  if (text === undefined) throw new UsageError(`missing ${what} (type:id or type:id#relation, e.g. user:dave)`);
  const hash = text.indexOf("#");
  const relation = hash >= 0 ? text.slice(hash + 1) : "";
  const object = parseObject(hash >= 0 ? text.slice(0, hash) : text, what);
  if (hash >= 0 && !TYPE.test(relation)) throw new UsageError(`${what} ${JSON.stringify(text)}: the relation after # must be a name, e.g. group:analysts#member`);
  return { ...object, relation };
}

export function formatObject(o: { type: string; id: string; relation?: string } | undefined): string {
  if (!o) return "";
  return `${o.type}:${o.id}${o.relation ? `#${o.relation}` : ""}`;
}

/** The options every command takes. */
export const GLOBAL_OPTIONS = {
  addr: { type: "string" },
  key: { type: "string" },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
  timeout: { type: "string" },
} as const;

type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string; default?: string | boolean; multiple?: boolean }>;

/** parseArgs with a usage error instead of a TypeError for unknown options. */
export function parseCommand<T extends OptionSpec>(argv: readonly string[], options: T) {
  try {
    return parseArgs({ args: [...argv], options: { ...GLOBAL_OPTIONS, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message.replace(/\. To specify a positional argument.*$/s, "") : String(err));
  }
}

export function requireActor(actor: string | undefined): string {
  if (!actor) throw new UsageError("--actor is required: the user this change is made as (e.g. --actor alice)");
  return actor;
}

export function expectPositionals(positionals: readonly string[], count: number, usage: string): void {
  if (positionals.length !== count) throw new UsageError(`expected ${count} argument${count === 1 ? "" : "s"}: ${usage}`);
}
