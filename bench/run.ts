/**
 * `npm run bench`: check latency and throughput on the embedded default
 * (PGlite in memory, embedded SpiceDB) with the demo tenant, through a real
 * server on a free port and a Connect gRPC client in this process. Writes
 * bench/results/latest.json and prints a table. A first, small benchmark:
 * the dataset generator and larger runs come with the benchmark issue.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { App } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { loadDemo } from "../src/demo.js";
import { PermissionService } from "../src/gen/sharegraph/v1/permission_service_pb.js";

const KEY = "bench-check-key-0123456789";
const SEQUENTIAL = Number(process.env["BENCH_SEQUENTIAL"] ?? 500);
const CONCURRENT = Number(process.env["BENCH_CONCURRENT"] ?? 2000);

const scenarios = [
  {
    name: "dashboard view via folder grant to a nested group, capped by workspace",
    request: { resource: { type: "dashboard", id: "q3-revenue" }, permission: "view", subject: { type: "user", id: "dave", relation: "" } },
  },
  {
    name: "workspace view, direct grant",
    request: { resource: { type: "workspace", id: "emea" }, permission: "view", subject: { type: "user", id: "bob", relation: "" } },
  },
];

function percentile(sorted: number[], p: number): number {
  return Number(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!.toFixed(2));
}

const app = await App.create(
  loadConfig({ SHAREGRAPH_ADDR: "127.0.0.1:0", SHAREGRAPH_API_KEYS: `${KEY}:check`, LOG_LEVEL: "silent" }),
  { database: { kind: "pglite" } },
);
await app.ready;
await loadDemo(app.domain, app.log);
const { port } = await app.start();
const client = createClient(
  PermissionService,
  createGrpcTransport({
    baseUrl: `http://127.0.0.1:${port}`,
    interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${KEY}`), next(req))],
  }),
);

const results = [];
for (const { name, request } of scenarios) {
  for (let i = 0; i < 100; i++) await client.checkPermission(request);
  const times: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) {
    const started = performance.now();
    await client.checkPermission(request);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENT }, () => client.checkPermission(request)));
  const seconds = (performance.now() - started) / 1000;
  results.push({
    scenario: name,
    sequential: { calls: SEQUENTIAL, p50_ms: percentile(times, 0.5), p90_ms: percentile(times, 0.9), p99_ms: percentile(times, 0.99) },
    concurrent: { calls: CONCURRENT, checks_per_second: Math.round(CONCURRENT / seconds) },
  });
}
await app.stop();

const report = { date: new Date().toISOString(), node: process.version, engine: "embedded", database: "pglite", results };
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
writeFileSync(new URL("./results/latest.json", import.meta.url), `${JSON.stringify(report, null, 2)}\n`);
console.log("| scenario | p50 ms | p90 ms | p99 ms | concurrent checks/s |");
console.log("|---|---|---|---|---|");
for (const r of results) {
  console.log(`| ${r.scenario} | ${r.sequential.p50_ms} | ${r.sequential.p90_ms} | ${r.sequential.p99_ms} | ${r.concurrent.checks_per_second} |`);
}
console.log("written: bench/results/latest.json");
process.exit(0);
