import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { DescService } from "@bufbuild/protobuf";

/** A gRPC client of one sharegraph service, with an API key (one HTTP/2 connection). */
export function serviceClient<S extends DescService>(service: S, baseUrl: string, key: string): Client<S> {
  return createClient(
    service,
    createGrpcTransport({
      baseUrl,
      interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${key}`), next(req))],
    }),
  );
}

/** The gRPC status name of a failed call ("DEADLINE_EXCEEDED", …), or the error's name. */
export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === "number") return GRPC_CODES[code] ?? `code ${code}`;
  return err instanceof Error ? err.name : "unknown";
}

const GRPC_CODES = [
  "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
];

/** The value of one Prometheus sample line (`name value`, no labels) in a /metrics text, or undefined. */
export function metric(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name} ([0-9.eE+-]+)$`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}
