import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { AdminService } from "../gen/sharegraph/v1/admin_service_pb.js";

/*
 * The console talks to the same API as grpcurl, on the same origin, with the
 * operator's key on every call (Connect protocol over fetch). It adds
 * nothing to the trust model: no cookie, no session on the server, no
 * second API.
 */

/** A transport that sends `authorization: Bearer <key>` with every call. */
export function transportFor(key: string): Transport {
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${key}`);
    return next(req);
  };
  return createConnectTransport({ baseUrl: window.location.origin, interceptors: [bearer] });
}

/** What the key may do, as the server says (AdminService/GetCaller). */
export interface Caller {
  readonly keyName: string;
  readonly scope: "admin" | "check";
  readonly anyActor: boolean;
  readonly actors: readonly string[];
}

export async function fetchCaller(transport: Transport, signal?: AbortSignal): Promise<Caller> {
  const r = await createClient(AdminService, transport).getCaller({}, signal ? { signal } : {});
  return { keyName: r.keyName, scope: r.scope === "admin" ? "admin" : "check", anyActor: r.anyActor, actors: r.actors };
}

/** Why writes are off for this key, or undefined when they are allowed. */
export function readOnlyReason(caller: Caller): string | undefined {
  return caller.scope === "check" ? "this key is check-scope: read only" : undefined;
}

/** The server's own words for a failed call: its code and message (ConnectError.rawMessage), never a paraphrase. */
export function describeError(err: unknown): { code: string; message: string } {
  const e = ConnectError.from(err);
  return { code: Code[e.code] ?? String(e.code), message: e.rawMessage };
}
