import { readFileSync } from "node:fs";
import { v1, deadlineInterceptor } from "@authzed/authzed-node";
import { SpiceDbEngine, callsOf } from "./spicedb-engine.js";
import type { Engine } from "./engine.js";

export interface RemoteEngineOptions {
  /** host:port of a SpiceDB gRPC endpoint. */
  readonly endpoint: string;
  /** SpiceDB's preshared key. */
  readonly token: string;
  /** "plaintext", "tls" (system roots) or a path to a CA certificate (PEM). */
  readonly tls: "plaintext" | "tls" | { readonly caFile: string };
  readonly timeoutMs: number;
  /** Deadline of a whole streamed lookup; default 10 minutes. */
  readonly streamTimeoutMs?: number;
  /** SpiceDB's --write-relationships-max-updates-per-call (1000 by default). */
  readonly maxUpdatesPerWrite: number;
  /** The engine's kind; "remote" unless a caller that runs the server itself says otherwise. */
  readonly kind?: string;
  /** Runs after the client is closed (e.g. stops a SpiceDB process this engine owns). */
  readonly onClose?: () => Promise<void>;
}

/** A SpiceDB cluster reached over gRPC with @authzed/authzed-node. */
export async function createRemoteEngine(options: RemoteEngineOptions): Promise<Engine> {
  const grpcOptions = { interceptors: [deadlineInterceptor(options.timeoutMs)] };
  const client =
    typeof options.tls === "object"
      ? v1.NewClientWithCustomCert(
          options.token,
          options.endpoint,
          readFileSync(options.tls.caFile),
          undefined,
          grpcOptions,
        )
      : v1.NewClient(
          options.token,
          options.endpoint,
          options.tls === "tls" ? v1.ClientSecurity.SECURE : v1.ClientSecurity.INSECURE_PLAINTEXT_CREDENTIALS,
          undefined,
          grpcOptions,
        );
  return new SpiceDbEngine({
    kind: options.kind ?? "remote",
    calls: callsOf({ permissions: client, schema: client }),
    maxUpdatesPerWrite: options.maxUpdatesPerWrite,
    ...(options.streamTimeoutMs ? { streamTimeoutMs: options.streamTimeoutMs } : {}),
    close: async () => {
      client.close();
      await options.onClose?.();
    },
  });
}
