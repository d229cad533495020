import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { Code } from "@connectrpc/connect";

/*
 * Raw HTTP/1.1, HTTP/2 and TCP for tests that send what no well-behaved
 * client would: bytes that are not protobuf, bodies that never come,
 * sockets that say nothing.
 */

/** A gRPC / gRPC-Web / Connect-streaming envelope: flags, 4-byte length, payload. */
export function envelope(payload: Uint8Array, flags = 0): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

export interface H2Answer {
  /** HTTP status, or undefined if the stream was reset before any response. */
  readonly status: number | undefined;
  readonly headers: http2.IncomingHttpHeaders;
  readonly trailers: http2.IncomingHttpHeaders;
  readonly body: Buffer;
  /** RST_STREAM code, if the stream was reset. */
  readonly rstCode: number;
  /** grpc-status from trailers (or headers, trailers-only), as a Code name; undefined if none. */
  readonly grpcCode: string | undefined;
  readonly grpcMessage: string;
}

/** One request on an HTTP/2 session; `body` undefined leaves the request stream open (nothing sent). */
export function h2Request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body: Uint8Array | undefined): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": "POST", ...headers }, { endStream: false });
    let status: number | undefined;
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on("response", (h) => {
      responseHeaders = h;
      status = Number(h[":status"]);
    });
    stream.on("trailers", (t) => (trailers = t));
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", () => {});
    stream.on("close", () => {
      const raw = (trailers["grpc-status"] ?? responseHeaders["grpc-status"]) as string | undefined;
      resolve({
        status,
        headers: responseHeaders,
        trailers,
        body: Buffer.concat(chunks),
        rstCode: stream.rstCode ?? 0,
        grpcCode: raw === undefined ? undefined : raw === "0" ? "OK" : Code[Number(raw)],
        grpcMessage: decodeURIComponent(String(trailers["grpc-message"] ?? responseHeaders["grpc-message"] ?? "")),
      });
    });
    session.once("error", reject);
    if (body !== undefined) stream.end(body);
  });
}

export function h2Connect(baseUrl: string): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(baseUrl);
    session.once("connect", () => resolve(session));
    session.once("error", reject);
  });
}

export interface H1Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/** An HTTP/1.1 request; with `body` undefined only the headers are sent (and the request is left open). */
export function h1Request(url: string, headers: http.OutgoingHttpHeaders, body: Uint8Array | undefined, agent?: http.Agent): Promise<H1Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "POST", headers, agent: agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    if (body === undefined) req.flushHeaders();
    else req.end(body);
  });
}

/** A raw TCP connection and a promise of its closing (with what it received). */
export function rawSocket(port: number): Promise<{ socket: net.Socket; closed: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let received = "";
    socket.on("data", (d: Buffer) => (received += d.toString("latin1")));
    socket.on("error", () => {});
    const closed = new Promise<string>((done) => socket.once("close", () => done(received)));
    socket.once("connect", () => resolve({ socket, closed }));
    socket.once("error", reject);
  });
}

/** `promise`, or "pending" if it has not settled within ms (a liveness bound, not a speed assertion). */
export async function settleWithin<T>(promise: Promise<T>, ms: number): Promise<T | "pending"> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<"pending">((resolve) => (timer = setTimeout(() => resolve("pending"), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
