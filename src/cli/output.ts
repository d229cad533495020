/** Human output: colour and tables on a terminal, plain text elsewhere; --json for scripts. */

export interface Output {
  readonly json: boolean;
  readonly colour: boolean;
  line(text?: string): void;
  /** One JSON document per call (a line of its own). */
  data(value: unknown): void;
  table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): void;
  green(text: string): string;
  red(text: string): string;
  yellow(text: string): string;
  bold(text: string): string;
  dim(text: string): string;
}

export interface OutputOptions {
  readonly json: boolean;
  readonly colour?: boolean;
  readonly write?: (text: string) => void;
}

export function createOutput(options: OutputOptions): Output {
  const stream = process.stdout;
  const write = options.write ?? ((text: string) => void stream.write(text));
  const colour = options.colour ?? (!options.json && stream.isTTY === true && !process.env["NO_COLOR"] && process.env["TERM"] !== "dumb");
  const paint = (code: number, reset: number) => (text: string) => (colour ? `\x1b[${code}m${text}\x1b[${reset}m` : text);
  return {
    json: options.json,
    colour,
    line: (text = "") => write(`${text}\n`),
    data: (value) => write(`${JSON.stringify(value, jsonValue)}\n`),
    table(headers, rows) {
      if (rows.length === 0) return;
      const widths = headers.map((h, i) => Math.max(visible(h), ...rows.map((r) => visible(r[i] ?? ""))));
      const format = (cells: readonly string[]) =>
        cells
          .map((c, i) => (i === cells.length - 1 ? c : c + " ".repeat(widths[i]! - visible(c))))
          .join("  ")
          .trimEnd();
      write(`${colour ? `\x1b[1m${format(headers)}\x1b[22m` : format(headers)}\n`);
      for (const row of rows) write(`${format(row)}\n`);
    },
    green: paint(32, 39),
    red: paint(31, 39),
    yellow: paint(33, 39),
    bold: paint(1, 22),
    dim: paint(2, 22),
  };
}

/** bigint (uint64 fields) as a number when exact, else a string. */
function jsonValue(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  return value;
}

function visible(text: string): number {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, "").length;
}
