import net from "node:net";

/**
 * A TCP proxy between the code under test and a real server (Postgres), to
 * inject the network faults a deployment meets:
 *
 *  - `refuse()`: the port stops listening (new connections: ECONNREFUSED)
 *    and every open connection is reset;
 *  - `reset()`: every open connection is reset now (RST to both sides, as
 *    when Postgres or a middlebox drops them); new ones are accepted;
 *  - `blackhole()`: a partition: connections stay open, nothing gets
 *    through either way (held, as TCP would keep retransmitting), and new
 *    connections are accepted but never reach the server;
 *  - `heal()`: back to forwarding; what was held flows on, as after a
 *    partition heals; a refused port listens again on the same port.
 */
export class TcpProxy {
  readonly #server: net.Server;
  readonly #pairs = new Set<Pair>();
  #mode: "pass" | "refuse" | "blackhole" = "pass";
  #port = 0;
  /** Connections accepted since start. */
  accepted = 0;

  private constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {
    this.#server = net.createServer((socket) => this.#accept(socket));
  }

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const proxy = new TcpProxy(target.host, target.port);
    await proxy.#listen(0);
    return proxy;
  }

  /** The proxy in front of the server of a postgres:// URL (same user, database and parameters). */
  static async forUrl(url: string): Promise<{ proxy: TcpProxy; url: string }> {
    const parsed = new URL(url);
    const proxy = await TcpProxy.start({ host: parsed.hostname || "127.0.0.1", port: Number(parsed.port || 5432) });
    parsed.hostname = "127.0.0.1";
    parsed.port = String(proxy.port);
    return { proxy, url: parsed.toString() };
  }

  get port(): number {
    return this.#port;
  }

  /** Connections open through the proxy right now. */
  get open(): number {
    return this.#pairs.size;
  }

  refuse(): void {
    this.#mode = "refuse";
    this.#server.close();
    this.reset();
  }

  reset(): void {
    for (const pair of this.#pairs) pair.reset();
  }

  blackhole(): void {
    this.#mode = "blackhole";
  }

  async heal(): Promise<void> {
    const wasRefusing = this.#mode === "refuse";
    this.#mode = "pass";
    if (wasRefusing) await this.#listen(this.#port);
    for (const pair of this.#pairs) pair.flow();
  }

  async close(): Promise<void> {
    this.#mode = "refuse";
    this.reset();
    await new Promise<void>((resolve) => (this.#server.listening ? this.#server.close(() => resolve()) : resolve()));
  }

  #listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, "127.0.0.1", () => {
        this.#server.off("error", reject);
        this.#port = (this.#server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  #accept(client: net.Socket): void {
    this.accepted++;
    const pair = new Pair(client, () => this.#mode === "blackhole", () => net.connect(this.targetPort, this.targetHost));
    this.#pairs.add(pair);
    pair.closed.then(() => this.#pairs.delete(pair));
    pair.flow();
  }
}

/** One client connection and its upstream connection; bytes are held while blackholed. */
class Pair {
  #upstream: net.Socket | undefined;
  readonly #toUpstream: Buffer[] = [];
  readonly #toClient: Buffer[] = [];
  #done = false;
  readonly closed: Promise<void>;
  #close!: () => void;

  constructor(
    private readonly client: net.Socket,
    private readonly blackholed: () => boolean,
    private readonly connect: () => net.Socket,
  ) {
    this.closed = new Promise((resolve) => (this.#close = resolve));
    client.on("data", (chunk: Buffer) => {
      this.#toUpstream.push(chunk);
      this.flow();
    });
    client.on("error", () => this.reset());
    client.on("close", () => this.#end());
  }

  /** Forwards what is held, unless blackholed; connects upstream on first need. */
  flow(): void {
    if (this.#done || this.blackholed()) return;
    if (!this.#upstream) {
      const upstream = this.connect();
      this.#upstream = upstream;
      upstream.on("data", (chunk: Buffer) => {
        this.#toClient.push(chunk);
        this.flow();
      });
      upstream.on("error", () => this.reset());
      upstream.on("close", () => this.#end());
    }
    for (const chunk of this.#toUpstream.splice(0)) this.#upstream.write(chunk);
    for (const chunk of this.#toClient.splice(0)) this.client.write(chunk);
  }

  /** RST both ways. */
  reset(): void {
    if (this.#done) return;
    this.#done = true;
    for (const socket of [this.client, this.#upstream]) {
      if (!socket || socket.destroyed) continue;
      if (typeof socket.resetAndDestroy === "function" && socket.readyState !== "opening") socket.resetAndDestroy();
      else socket.destroy();
    }
    this.#close();
  }

  #end(): void {
    if (this.#done) return;
    this.#done = true;
    this.client.destroy();
    this.#upstream?.destroy();
    this.#close();
  }
}
