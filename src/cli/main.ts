#!/usr/bin/env node
/**
 * The sharegraph command line: `sharegraph <command> …`, in the spirit of
 * zed. Objects are written type:id (subjects type:id[#relation]) in zed's
 * order: resource, permission or role, subject.
 */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ConnectError } from "@connectrpc/connect";
import { parseCommand, UsageError } from "./args.js";
import { EXIT_ERROR, type Command } from "./command.js";
import { exportData, importData, LineError, reconcile, status } from "./commands/admin.js";
import { check, explain, lookup } from "./commands/permissions.js";
import { partners, share, unshare } from "./commands/sharing.js";
import { connect, describeFailure, resolveTarget, type Clients, type Target } from "./connection.js";
import { createOutput } from "./output.js";

export const COMMANDS: readonly Command[] = [check, explain, lookup, share, unshare, partners, status, reconcile, exportData, importData];

const GLOBAL_HELP = `Options for every command:
  --addr <host:port>   the server (else SHAREGRAPH_ADDR, else 127.0.0.1:8080)
  --key <api key>      the API key (else SHAREGRAPH_API_KEY, else the admin key
                       in ./.sharegraph/api-keys, or $SHAREGRAPH_DATA_DIR/api-keys)
  --json               one JSON document on standard output, for scripts
  --timeout <ms>       deadline of each call (default 30000; export/import: none)
  -h, --help           this help`;

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `sharegraph: the command line of the sharegraph authorization service

Usage: sharegraph <command> [arguments] [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n")}

${GLOBAL_HELP}

Exit codes: 0 done (check/explain: allowed), 1 denied (check/explain), 2 error.
"sharegraph <command> --help" shows a command's arguments.
`;
}

export interface RunOptions {
  readonly stdout?: (text: string) => void;
  readonly stderr?: (text: string) => void;
}

/** Runs one command line; resolves to the exit code. */
export async function run(argv: readonly string[], options: RunOptions = {}): Promise<number> {
  const stdout = options.stdout ?? ((text: string) => void process.stdout.write(text));
  const stderr = options.stderr ?? ((text: string) => void process.stderr.write(text));
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    (name === undefined ? stderr : stdout)(usage());
    return name === undefined ? EXIT_ERROR : 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    stderr(`sharegraph: unknown command ${JSON.stringify(name)}; commands: ${COMMANDS.map((c) => c.name).join(", ")}\n`);
    return EXIT_ERROR;
  }
  let target: Target | undefined;
  try {
    const { values, positionals } = parseCommand(rest, command.options);
    if (values.help) {
      stdout(`Usage: ${command.usage}\n\n${GLOBAL_HELP}\n`);
      return 0;
    }
    const out = createOutput({ json: values.json === true, write: stdout });
    const timeoutText = typeof values.timeout === "string" ? values.timeout : undefined;
    const timeoutMs = timeoutText === undefined ? 30_000 : Number(timeoutText);
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new UsageError(`--timeout ${JSON.stringify(timeoutText)}: a whole number of milliseconds`);
    const resolved = resolveTarget({ addr: values.addr as string | undefined, key: values.key as string | undefined });
    target = resolved;
    let clients: Clients | undefined;
    // Streams of a whole deployment take as long as they take.
    const bulk = command === exportData || command === importData;
    const ctx = { out, clients: () => (clients ??= connect(resolved, bulk && timeoutText === undefined ? undefined : timeoutMs)) };
    return await command.run(ctx, positionals, values as Record<string, string | boolean | undefined>);
  } catch (err) {
    if (err instanceof UsageError) {
      stderr(`sharegraph ${command.name}: ${err.message}\nUsage: ${command.usage.split("\n")[0]}\n`);
      return EXIT_ERROR;
    }
    if (err instanceof LineError) {
      stderr(`sharegraph ${command.name}: ${err.message}\n`);
      return EXIT_ERROR;
    }
    if (err instanceof ConnectError || target) {
      stderr(`sharegraph ${command.name}: ${target ? describeFailure(err, target) : String(err)}\n`);
      return EXIT_ERROR;
    }
    stderr(`sharegraph ${command.name}: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_ERROR;
  }
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const code = await run(process.argv.slice(2));
  // Let stdout drain (a pipe), then exit with the code.
  process.exitCode = code;
}
