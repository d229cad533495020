import { createReadStream, createWriteStream } from "node:fs";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { Code, ConnectError } from "@connectrpc/connect";
import { HealthCheckResponse_ServingStatus as Serving } from "../../gen/health/v1/health_pb.js";
import type { DataRecord } from "../../gen/sharegraph/v1/admin_service_pb.js";
import { expectPositionals, UsageError } from "../args.js";
import { EXIT_ERROR, EXIT_OK, type Command } from "../command.js";
import { describeFailure } from "../connection.js";

const SERVICES = [
  "sharegraph.v1.PermissionService",
  "sharegraph.v1.DirectoryService",
  "sharegraph.v1.ContentService",
  "sharegraph.v1.PartnerService",
  "sharegraph.v1.ServiceRelationshipService",
  "sharegraph.v1.AdminService",
];

export const status: Command = {
  name: "status",
  summary: "health, outbox lag and engine of a server (exit 0 serving, 2 otherwise)",
  usage: `sharegraph status
  gRPC health of the server and each service, the outbox (changes committed
  in Postgres that have not reached SpiceDB yet) and the permission engine.
  The outbox and engine need an admin key; health needs none.`,
  options: {},
  async run(ctx, positionals) {
    expectPositionals(positionals, 0, "status");
    const clients = ctx.clients();
    const overall = await clients.health.check({ service: "" });
    const services = await Promise.all(SERVICES.map(async (service) => ({ service, status: Serving[(await clients.health.check({ service })).status] ?? "UNKNOWN" })));
    let outbox: { pendingBatches: number; lastAppliedBatch: number; lastError: string; attempts: number; engine: string } | { error: string };
    try {
      const s = await clients.admin.getOutboxStatus({});
      outbox = { pendingBatches: s.pendingBatches, lastAppliedBatch: Number(s.lastAppliedBatch), lastError: s.lastError, attempts: s.attempts, engine: s.engine };
    } catch (err) {
      const e = ConnectError.from(err);
      if (e.code !== Code.PermissionDenied && e.code !== Code.Unauthenticated) throw err;
      outbox = { error: describeFailure(err, clients.target) };
    }
    const serving = overall.status === Serving.SERVING;
    const { out } = ctx;
    if (out.json) {
      out.data({ address: clients.target.baseUrl, health: Serving[overall.status], services: Object.fromEntries(services.map((s) => [s.service, s.status])), outbox });
      return serving ? EXIT_OK : EXIT_ERROR;
    }
    out.line(`${out.bold("sharegraph")} at ${clients.target.baseUrl}: ${serving ? out.green("SERVING") : out.red(Serving[overall.status] ?? "UNKNOWN")}`);
    out.table(
      ["SERVICE", "HEALTH"],
      services.map((s) => [s.service.replace("sharegraph.v1.", ""), s.status === "SERVING" ? out.green(s.status) : out.red(s.status)]),
    );
    out.line();
    if ("error" in outbox) {
      out.line(`outbox and engine: ${out.yellow(outbox.error)}`);
    } else {
      out.line(`engine: ${outbox.engine || "not reported"}`);
      const lag = outbox.pendingBatches === 0 ? out.green("in sync (0 pending batches)") : out.yellow(`${outbox.pendingBatches} pending batch${outbox.pendingBatches === 1 ? "" : "es"}`);
      out.line(`outbox: ${lag}; last applied batch ${outbox.lastAppliedBatch}`);
      if (outbox.lastError) out.line(`  oldest pending batch failed ${outbox.attempts} time${outbox.attempts === 1 ? "" : "s"}: ${out.red(outbox.lastError)}`);
    }
    return serving ? EXIT_OK : EXIT_ERROR;
  },
};

export const reconcile: Command = {
  name: "reconcile",
  summary: "compare SpiceDB with what Postgres implies and repair the drift",
  usage: `sharegraph reconcile [--dry-run]
  --dry-run   report the drift without repairing it`,
  options: { "dry-run": { type: "boolean", default: false } },
  async run(ctx, positionals, values) {
    expectPositionals(positionals, 0, "reconcile [--dry-run]");
    const dryRun = values["dry-run"] === true;
    const r = await ctx.clients().admin.reconcile({ dryRun });
    const { out } = ctx;
    if (out.json) {
      out.data({
        dryRun,
        expectedRelationships: r.expectedRelationships,
        actualRelationships: r.actualRelationships,
        missing: r.missing,
        extra: r.extra,
        missingExamples: r.missingExamples,
        extraExamples: r.extraExamples,
        consistencyToken: r.consistencyToken,
      });
      return EXIT_OK;
    }
    const drift = r.missing + r.extra;
    out.line(`relationships: ${r.expectedRelationships} expected (from Postgres), ${r.actualRelationships} in SpiceDB`);
    if (drift === 0) out.line(out.green("no drift"));
    else out.line(`${out.yellow(`${r.missing} missing, ${r.extra} extra`)}: ${dryRun ? "not repaired (--dry-run)" : "repaired"}`);
    for (const m of r.missingExamples) out.line(`  ${out.green("+")} ${m}`);
    for (const x of r.extraExamples) out.line(`  ${out.red("-")} ${x}`);
    return EXIT_OK;
  },
};

export const exportData: Command = {
  name: "export",
  summary: "write the whole system of record as JSON lines (a backup)",
  usage: `sharegraph export [file]
  Writes one JSON object per line to the file (or standard output): first
  {"header": {format, version, migration, exportedAt, omitted}}, then
  {"table": "...", "row": {...}} for every row, tables in dependency order.
  Left out: the server key, the outbox and the notifications (see the header).
  Needs an operator's admin key (not one bound to actors).`,
  options: {},
  async run(ctx, positionals) {
    if (positionals.length > 1) throw new UsageError("expected at most 1 argument: export [file]");
    const file = positionals[0] && positionals[0] !== "-" ? positionals[0] : undefined;
    const sink = file ? createWriteStream(file, { flags: "wx" }) : process.stdout;
    if (file) await once(sink, "open").catch((err: NodeJS.ErrnoException) => {
      throw new UsageError(err.code === "EEXIST" ? `${file} exists; export writes a new file` : `cannot write ${file}: ${err.message}`);
    });
    const tables = new Map<string, number>();
    let rows = 0;
    for await (const { record: message } of ctx.clients().admin.exportData({})) {
      if (!message) continue;
      const record = message;
      const line = toLine(record);
      if (record.record.case === "row") {
        rows++;
        tables.set(record.record.value.table, (tables.get(record.record.value.table) ?? 0) + 1);
      }
      if (!sink.write(`${line}\n`)) await once(sink, "drain");
    }
    if (file) {
      sink.end();
      await once(sink, "finish");
    }
    // The summary goes where it does not mix with the data.
    const summary = { file: file ?? "-", rows, tables: Object.fromEntries(tables) };
    const text = `exported ${rows} rows of ${tables.size} tables${file ? ` to ${file}` : ""}`;
    if (file) {
      if (ctx.out.json) ctx.out.data(summary);
      else ctx.out.line(`${ctx.out.green("exported")} ${text.slice("exported ".length)}`);
    } else {
      process.stderr.write(`${text}\n`);
    }
    return EXIT_OK;
  },
};

const IMPORT_BATCH = 500;
/** The server's limit per ImportData call. */
const MAX_BATCH = 1_000;

export const importData: Command = {
  name: "import",
  summary: "restore an export into an empty deployment",
  usage: `sharegraph import [file]
  Reads an export (JSON lines) from the file (or standard input) and writes
  it in batches; the server refuses a deployment that is not empty, and
  names the line of a bad record. Needs an operator's admin key (not one
  bound to actors).
  --batch-size <n>   records per call (1-${MAX_BATCH}, default ${IMPORT_BATCH})`,
  options: { "batch-size": { type: "string" } },
  async run(ctx, positionals, values) {
    if (positionals.length > 1) throw new UsageError("expected at most 1 argument: import [file]");
    const sizeText = values["batch-size"];
    const batchSize = typeof sizeText === "string" ? Number(sizeText) : IMPORT_BATCH;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH) throw new UsageError(`--batch-size ${JSON.stringify(sizeText)}: a whole number from 1 to ${MAX_BATCH}`);
    const file = positionals[0] && positionals[0] !== "-" ? positionals[0] : undefined;
    const input = file ? createReadStream(file) : process.stdin;
    if (file) await once(input, "open").catch((err: Error) => {
      throw new UsageError(`cannot read ${file}: ${err.message}`);
    });
    const clients = ctx.clients();
    let importId = "";
    let lineNo = 0;
    let batch: DataRecord[] = [];
    let firstLine = 1;
    let rows = 0;
    let relationships = 0;
    let token = "";
    let blankAt = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      const res = await clients.admin.importData({ importId, records: batch, firstRecord: BigInt(firstLine) });
      importId = res.importId;
      rows += res.rowsWritten;
      relationships += res.relationships;
      token = res.consistencyToken;
      batch = [];
    };
    for await (const text of createInterface({ input, crlfDelay: Infinity })) {
      lineNo++;
      if (text.trim() === "") {
        blankAt ||= lineNo;
        continue;
      }
      if (blankAt) throw new LineError(blankAt, "empty line inside the export");
      if (batch.length === 0) firstLine = lineNo;
      batch.push(fromLine(text, lineNo));
      if (batch.length >= batchSize) await flush();
    }
    if (lineNo === 0 || (batch.length === 0 && importId === "")) throw new LineError(1, "the export is empty (no header)");
    await flush();
    const { out } = ctx;
    if (out.json) out.data({ importId, rowsWritten: rows, relationships, consistencyToken: token });
    else {
      out.line(`${out.green("imported")} ${rows} rows; ${relationships} relationships queued for the permission index`);
      out.line(out.dim(`consistency token: ${token}`));
    }
    return EXIT_OK;
  },
};

/** A line of the input the CLI itself cannot read. */
export class LineError extends Error {
  constructor(
    readonly line: number,
    problem: string,
  ) {
    super(`line ${line}: ${problem}`);
    this.name = "LineError";
  }
}

function toLine(record: DataRecord): string {
  if (record.record.case === "header") {
    const h = record.record.value;
    return JSON.stringify({ header: { format: h.format, version: h.version, migration: h.migration, exportedAt: h.exportedAt, omitted: h.omitted } });
  }
  if (record.record.case === "row") return `{"table":${JSON.stringify(record.record.value.table)},"row":${record.record.value.json}}`;
  throw new ConnectError("the server sent an empty export record", Code.Internal);
}

function fromLine(text: string, line: number): DataRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new LineError(line, "not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new LineError(line, "expected a JSON object");
  const o = value as Record<string, unknown>;
  if ("header" in o) {
    const h = (o["header"] ?? {}) as Record<string, unknown>;
    return {
      $typeName: "sharegraph.v1.DataRecord",
      record: {
        case: "header",
        value: {
          $typeName: "sharegraph.v1.DataHeader",
          format: String(h["format"] ?? ""),
          version: typeof h["version"] === "number" && Number.isInteger(h["version"]) && h["version"] >= 0 && h["version"] < 2 ** 32 ? h["version"] : 0,
          migration: String(h["migration"] ?? ""),
          exportedAt: String(h["exportedAt"] ?? ""),
          omitted: Array.isArray(h["omitted"]) ? h["omitted"].map(String) : [],
        },
      },
    };
  }
  if (typeof o["table"] !== "string" || typeof o["row"] !== "object" || o["row"] === null) throw new LineError(line, 'expected {"header": …} or {"table": "…", "row": {…}}');
  return { $typeName: "sharegraph.v1.DataRecord", record: { case: "row", value: { $typeName: "sharegraph.v1.DataRow", table: o["table"], json: JSON.stringify(o["row"]) } } };
}

