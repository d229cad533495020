import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { Socket } from "node:net";

type Handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

/** The client preface every HTTP/2-with-prior-knowledge connection starts with (RFC 9113 §3.4). */
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * One cleartext port for gRPC (HTTP/2 only), and for Connect and gRPC-Web
 * over either HTTP/2 or HTTP/1.1 (curl, browsers behind a proxy). Node's
 * cleartext HTTP/2 server cannot fall back to HTTP/1.1 itself, so each new
 * connection is routed by its first bytes.
 */
export class DualProtocolServer {
  readonly #tcp: net.Server;
  readonly #h2: http2.Http2Server;
  readonly #h1: http.Server;
  readonly #sockets = new Set<Socket>();

  constructor(handler: Handler) {
    this.#h2 = http2.createServer({}, handler);
    this.#h1 = http.createServer(handler);
    // Without TCP_NODELAY every small gRPC response waits ~40 ms for the client's delayed ACK (Nagle).
    this.#tcp = net.createServer({ noDelay: true }, (socket) => this.#route(socket));
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.#tcp.once("error", reject);
      this.#tcp.listen(port, host, () => {
        this.#tcp.off("error", reject);
        const address = this.#tcp.address() as net.AddressInfo;
        resolve({ host: address.address, port: address.port });
      });
    });
  }

  /** Stops accepting, lets calls in flight finish for up to graceMs, then cuts the rest. */
  async close(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#tcp.close(() => resolve()));
    this.#h1.close();
    this.#h2.close();
    const timer = setTimeout(() => {
      for (const socket of this.#sockets) socket.destroy();
    }, graceMs);
    timer.unref();
    await closed;
    clearTimeout(timer);
  }

  #route(socket: Socket): void {
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
    socket.once("error", () => socket.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const candidate = head.subarray(0, Math.min(head.length, H2_PREFACE.length));
      const isH2 = candidate.equals(H2_PREFACE.subarray(0, candidate.length));
      if (isH2 && head.length < H2_PREFACE.length) return; // need more bytes to decide
      socket.off("data", onData);
      if (isH2) {
        // The HTTP/2 session takes over the native handle and, on the next
        // tick, feeds it what is still buffered in the stream: put the bytes
        // back and leave the stream paused, or they would flow to no one.
        socket.pause();
        socket.unshift(head);
        this.#h2.emit("connection", socket);
      } else {
        // The HTTP/1 server reads what is unshifted before its own parser takes over.
        socket.pause();
        socket.unshift(head);
        this.#h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
  }
}
