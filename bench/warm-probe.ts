/**
 * The gateway's own per-call ceiling: CheckPermission on the demo tenant,
 * the same four questions over and over, so that every call after the first
 * four is a decision-cache hit and the engine does nothing. Against a server
 * you started yourself:
 *
 *   SHAREGRAPH_API_KEYS=<secret>:check npm start -- --demo
 *   npx tsx bench/warm-probe.ts http://127.0.0.1:8080 <secret> [seconds=10] [clients=64] [connections=8] [grpc-js|connect]
 *
 * The load generator's client is @grpc/grpc-js by default (as in `npm run
 * bench`); `connect` uses Connect's Node client, which costs this process
 * about twice the CPU per call.
 * Prints calls/s, p50/p99 ms and this process's CPU per call (the load
 * generator's share of the machine). docs/PERFORMANCE.md ("the gateway's warm
 * ceiling") reads the server's CPU beside it from /proc/<pid>/stat.
 */
import { grpcJsClients, sharegraphClients } from "./lib/clients.js";

const [baseUrl, key] = [process.argv[2], process.argv[3]];
if (!baseUrl || !key) {
  process.stderr.write("usage: npx tsx bench/warm-probe.ts <base url> <api key> [seconds] [clients] [connections]\n");
  process.exit(2);
}
const seconds = Number(process.argv[4] ?? 10);
const concurrency = Number(process.argv[5] ?? 64);
const connections = Number(process.argv[6] ?? 8);
const connect = process.argv[7] === "connect";
const clients = connect ? sharegraphClients(baseUrl, key, connections) : [];
const grpcJs = connect ? undefined : grpcJsClients(baseUrl, key, connections);
const questions = [
  ["dave", "edit"],
  ["bob", "view"],
  ["carol", "view"],
  ["dave", "view"],
] as const;

let done = 0;
const latencies: number[] = [];
const end = Date.now() + seconds * 1000;
const cpuBefore = process.cpuUsage();
await Promise.all(
  Array.from({ length: concurrency }, async (_, i) => {
    for (let j = i; Date.now() < end; j++) {
      const [user, permission] = questions[j % questions.length]!;
      const started = performance.now();
      const question = { resource: { type: "dashboard", id: "q3-revenue" }, permission, subject: { type: "user", id: user, relation: "" } };
      await (grpcJs ? grpcJs.check(i, question) : clients[i % clients.length]!.checkPermission(question));
      latencies.push(performance.now() - started);
      done++;
    }
  }),
);
latencies.sort((a, b) => a - b);
const cpu = process.cpuUsage(cpuBefore);
const at = (p: number) => Number(latencies[Math.floor(latencies.length * p)]!.toFixed(2));
grpcJs?.close();
process.stdout.write(`${JSON.stringify({ client: connect ? "connect" : "grpc-js", perSecond: done / seconds, p50_ms: at(0.5), p99_ms: at(0.99), clientCpuMsPerCall: Number(((cpu.user + cpu.system) / 1000 / done).toFixed(3)) })}\n`);
