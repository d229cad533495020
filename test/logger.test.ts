import { describe, expect, it } from "vitest";
import { defaultLogFormat, formatPretty } from "../src/logger.js";

describe("issue 10: logs a person can read", () => {
  it("pretty on a terminal, JSON lines otherwise", () => {
    expect(defaultLogFormat({ isTTY: true })).toBe("pretty");
    expect(defaultLogFormat({ isTTY: false })).toBe("json");
    expect(defaultLogFormat({})).toBe("json");
  });

  it("one line per record: time, level, component, message, fields; a long field (the command to paste) on lines of its own", () => {
    const time = new Date(2026, 11, 1, 23, 21, 30).getTime();
    const command = `KEY=$(grep -o '^sg_admin_[A-Za-z0-9_-]*' '/data/api-keys') && npx buf curl --http2-prior-knowledge -H "authorization: Bearer $KEY" -d '{}' http://127.0.0.1:8080/sharegraph.v1.DirectoryService/ListUsers`;
    const text = formatPretty(
      { level: 30, time, service: "sharegraph", msg: "serving", address: "127.0.0.1:8080", engine: "embedded", apiKeysFile: "/data/api-keys", try: command },
      false,
    );
    expect(text).toBe(`23:21:30 INFO  serving address=127.0.0.1:8080 engine=embedded apiKeysFile=/data/api-keys\n    try:\n    ${command}\n`);
    const warn = formatPretty({ level: 40, time, component: "outbox", msg: "retrying", attempt: 2, err: { message: "boom", stack: "Error: boom\n    at x" } }, false);
    expect(warn).toBe("23:21:30 WARN  [outbox] retrying attempt=2\n    Error: boom\n        at x\n");
  });
});
