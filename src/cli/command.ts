import type { Clients } from "./connection.js";
import type { Output } from "./output.js";

/** Exit codes: 0 done (check/explain: allowed), 1 denied (check/explain), 2 error or usage. */
export const EXIT_OK = 0;
export const EXIT_DENIED = 1;
export const EXIT_ERROR = 2;

export interface CommandContext {
  readonly out: Output;
  /** Connects on first use (usage errors are reported before any network). */
  clients(): Clients;
}

export interface Command {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** The usage line(s) and options, shown by --help. */
  readonly usage: string;
  /** Options of this command, in parseArgs form. */
  readonly options: Record<string, { type: "string" | "boolean"; short?: string; default?: string | boolean }>;
  run(ctx: CommandContext, positionals: string[], values: Record<string, string | boolean | undefined>): Promise<number>;
}

/** --fully-consistent / --token T, as the API's Consistency. */
export function consistencyOf(values: Record<string, string | boolean | undefined>) {
  if (values["fully-consistent"]) return { requirement: { case: "fullyConsistent" as const, value: true } };
  if (typeof values["token"] === "string") return { requirement: { case: "atLeastAsFresh" as const, value: values["token"] } };
  return undefined;
}

export const CONSISTENCY_OPTIONS = {
  "fully-consistent": { type: "boolean" },
  token: { type: "string" },
} as const;
