import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { Socket } from "node:net";

type Handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

/** The client preface every HTTP/2-with-prior-knowledge connection starts with (RFC 9113 §3.4). */
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export interface ConnectionLimits {
  /** A new connection must show its protocol (first bytes) within this; an HTTP/1.1 request its headers and body. */
  readonly readTimeoutMs: number;
  /** An HTTP/1.1 keep-alive connection, or an HTTP/2 session, with no call in flight is closed after this. */
  readonly idleTimeoutMs: number;
  /** Connections beyond this are closed as soon as they are accepted. */
  readonly maxConnections: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: calls one connection may have in flight. */
  readonly maxStreamsPerConnection: number;
}

/**
 * One cleartext port for gRPC (HTTP/2 only), and for Connect and gRPC-Web
 * over either HTTP/2 or HTTP/1.1 (curl, browsers behind a proxy). Node's
 * cleartext HTTP/2 server cannot fall back to HTTP/1.1 itself, so each new
 * connection is routed by its first bytes.
 *
 * No connection is held for free: a socket that does not show its protocol
 * within the read timeout is dropped; an HTTP/1.1 request must arrive whole
 * within it (408 otherwise), a keep-alive connection and an HTTP/2 session
 * without streams are closed when idle (HTTP/2 with GOAWAY); connections
 * and streams per connection are capped.
 */
export class DualProtocolServer {
  readonly #tcp: net.Server;
  readonly #h2: http2.Http2Server;
  readonly #h1: http.Server;
  readonly #limits: ConnectionLimits;
  readonly #sockets = new Set<Socket>();
  /** Sockets whose protocol is not known yet. */
  readonly #routing = new Set<Socket>();
  readonly #sessions = new Set<http2.ServerHttp2Session>();
  readonly #closed: Promise<void>;
  #onClosed!: () => void;
  #draining: NodeJS.Timeout | undefined;

  constructor(handler: Handler, limits: ConnectionLimits) {
    this.#limits = limits;
    this.#h2 = http2.createServer({ settings: { maxConcurrentStreams: limits.maxStreamsPerConnection } }, handler);
    this.#h2.on("session", (session) => this.#watchSession(session));
    this.#h1 = http.createServer(
      {
        headersTimeout: limits.readTimeoutMs,
        // RPC bodies are timed by the front door (an answer in the caller's protocol); this is the backstop (408).
        requestTimeout: 2 * limits.readTimeoutMs,
        keepAliveTimeout: limits.idleTimeoutMs,
        connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(limits.readTimeoutMs / 2))),
      },
      handler,
    );
    // Node starts enforcing headersTimeout/requestTimeout (and can close idle
    // connections) once the server is "listening"; this one never listens
    // itself (connections are handed to it), so start that here.
    this.#h1.emit("listening");
    this.#closed = new Promise((resolve) => (this.#onClosed = resolve));
    // Without TCP_NODELAY every small gRPC response waits ~40 ms for the client's delayed ACK (Nagle).
    this.#tcp = net.createServer({ noDelay: true }, (socket) => this.#route(socket));
    this.#tcp.maxConnections = limits.maxConnections;
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

  /** Open connections (for tests and the shutdown log). */
  get connections(): number {
    return this.#sockets.size;
  }

  /**
   * Shutdown, step one: stop accepting connections, send GOAWAY to every
   * HTTP/2 session (streams in flight go on; new ones are refused), close
   * idle HTTP/1.1 connections now and busy ones as their response ends (the
   * front door sends `Connection: close`). Resolves at once; closed() tells
   * when the last connection is gone.
   */
  drain(): void {
    this.#tcp.close(() => this.#onClosed());
    for (const socket of this.#routing) socket.destroy();
    for (const session of this.#sessions) this.#goAway(session);
    this.#h2.close();
    this.#h1.close();
    // A keep-alive response that was already on its way when draining began leaves an idle connection behind.
    if (!this.#draining) {
      const interval = setInterval(() => this.#h1.closeIdleConnections(), 50);
      interval.unref();
      this.#draining = interval;
      void this.#closed.then(() => clearInterval(interval));
    }
  }

  /** Resolves when every connection is closed (after drain()). */
  closed(): Promise<void> {
    return this.#closed;
  }

  /** Shutdown, last step: cut whatever is still open. */
  destroyAll(): void {
    for (const session of this.#sessions) session.destroy();
    for (const socket of this.#sockets) socket.destroy();
  }

  /** drain(), then wait up to graceMs for connections to close, then cut the rest. */
  async close(graceMs: number): Promise<void> {
    this.drain();
    const timer = setTimeout(() => this.destroyAll(), graceMs);
    timer.unref();
    await this.closed();
    clearTimeout(timer);
  }

  /**
   * Graceful GOAWAY (RFC 9113 §6.8): first with the highest stream id, which
   * forbids new streams but still accepts those already on their way (they
   * are refused with UNAVAILABLE by the front door, a status the client can
   * act on, rather than a bare REFUSED_STREAM); after a PING round trip,
   * close(): GOAWAY with the last stream actually received, and the
   * connection ends when its streams have.
   */
  #goAway(session: http2.ServerHttp2Session): void {
    if (session.closed || session.destroyed) return;
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      if (!session.closed && !session.destroyed) session.close();
    };
    const timer = setTimeout(close, 1_000);
    timer.unref();
    try {
      session.goaway(http2.constants.NGHTTP2_NO_ERROR, 2 ** 31 - 1);
      if (!session.ping(close)) close();
    } catch {
      close();
    }
  }

  #watchSession(session: http2.ServerHttp2Session): void {
    this.#sessions.add(session);
    let streams = 0;
    let idle: NodeJS.Timeout | undefined;
    const arm = () => {
      idle = setTimeout(() => {
        if (streams === 0 && !session.closed) session.close(); // GOAWAY, then the connection ends
      }, this.#limits.idleTimeoutMs);
      idle.unref();
    };
    arm();
    session.on("stream", (stream) => {
      streams++;
      clearTimeout(idle);
      stream.once("close", () => {
        if (--streams === 0) arm();
      });
    });
    session.once("close", () => {
      clearTimeout(idle);
      this.#sessions.delete(session);
    });
    session.on("error", () => session.destroy());
  }

  #route(socket: Socket): void {
    this.#sockets.add(socket);
    this.#routing.add(socket);
    socket.once("close", () => {
      this.#sockets.delete(socket);
      this.#routing.delete(socket);
    });
    socket.once("error", () => socket.destroy());
    // A connection that says nothing (or too little to tell its protocol) is not kept.
    const silent = setTimeout(() => socket.destroy(), this.#limits.readTimeoutMs);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const candidate = head.subarray(0, Math.min(head.length, H2_PREFACE.length));
      const isH2 = candidate.equals(H2_PREFACE.subarray(0, candidate.length));
      if (isH2 && head.length < H2_PREFACE.length) return; // need more bytes to decide
      clearTimeout(silent);
      this.#routing.delete(socket);
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
    socket.once("close", () => clearTimeout(silent));
  }
}
