import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger };

export type LogFormat = "json" | "pretty";

/** Pretty for a person at a terminal, JSON lines for everything else (collectors, tests, pipes). */
export function defaultLogFormat(stream: { isTTY?: boolean } = process.stdout): LogFormat {
  return stream.isTTY ? "pretty" : "json";
}

/** The root logger; subsystems take children (logger.child({ component })). */
export function createLogger(level: string, format: LogFormat = "json"): Logger {
  const options = {
    level,
    base: { service: "sharegraph" },
    // Secrets never reach a log line, whatever a caller passes in.
    redact: {
      paths: ["authorization", "headers.authorization", "*.authorization", "token", "*.token", "apiKey", "*.apiKey", "secret"],
      censor: "[redacted]",
    },
  };
  return format === "pretty" ? pino(options, prettyStream(process.stdout)) : pino(options);
}

const LEVELS: Record<number, [string, string]> = {
  10: ["TRACE", "\x1b[90m"],
  20: ["DEBUG", "\x1b[36m"],
  30: ["INFO ", "\x1b[32m"],
  40: ["WARN ", "\x1b[33m"],
  50: ["ERROR", "\x1b[31m"],
  60: ["FATAL", "\x1b[35m"],
};
const DIM = "\x1b[2m";
const BOLD = "\x1b[1m";
const RESET = "\x1b[0m";
/** Fields every line has, or that say nothing to a person reading along. */
const QUIET = new Set(["level", "time", "msg", "service", "pid", "hostname"]);

/**
 * One line a person can read per record: time, level, component, message,
 * then the fields as key=value. Long text fields (a command to paste, an
 * error's stack) get lines of their own.
 */
export function formatPretty(record: Record<string, unknown>, color = true): string {
  const paint = (code: string, text: string) => (color ? `${code}${text}${RESET}` : text);
  const [label, code] = LEVELS[Number(record["level"])] ?? ["LOG  ", ""];
  const time = new Date(Number(record["time"] ?? Date.now())).toTimeString().slice(0, 8);
  const component = typeof record["component"] === "string" ? paint(DIM, `[${record["component"]}] `) : "";
  const fields: string[] = [];
  const blocks: string[] = [];
  for (const [key, value] of Object.entries(record)) {
    if (QUIET.has(key) || key === "component" || value === undefined) continue;
    if (key === "err" && value && typeof value === "object") {
      const err = value as { message?: string; stack?: string };
      blocks.push(err.stack ?? err.message ?? JSON.stringify(value));
      continue;
    }
    const text = typeof value === "string" ? value : JSON.stringify(value);
    if (typeof value === "string" && (text.length > 100 || text.includes("\n"))) blocks.push(`${paint(DIM, `${key}:`)}\n${text}`);
    else fields.push(`${paint(DIM, `${key}=`)}${typeof value === "string" && /\s/.test(text) ? JSON.stringify(text) : text}`);
  }
  const head = `${paint(DIM, time)} ${paint(code, label)} ${component}${paint(BOLD, String(record["msg"] ?? ""))}${fields.length ? ` ${fields.join(" ")}` : ""}`;
  return [head, ...blocks.map((b) => b.replace(/^/gm, "    "))].join("\n") + "\n";
}

function prettyStream(out: NodeJS.WriteStream): DestinationStream {
  return {
    write(line: string) {
      let record: Record<string, unknown>;
      try {
        record = JSON.parse(line) as Record<string, unknown>;
      } catch {
        out.write(line);
        return;
      }
      out.write(formatPretty(record, out.hasColors?.() ?? true));
    },
  };
}
