import { pino, type Logger } from "pino";

export type { Logger };

/** The root logger; subsystems take children (logger.child({ component })). */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: "sharegraph" },
    // Secrets never reach a log line, whatever a caller passes in.
    redact: {
      paths: ["authorization", "headers.authorization", "*.authorization", "token", "*.token", "apiKey", "*.apiKey", "secret"],
      censor: "[redacted]",
    },
  });
}
