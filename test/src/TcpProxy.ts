// A loopback TCP proxy for tests: clients connect to the proxy's port and are piped to whatever
// gateway port it currently points at. The test can cut every live connection (both sides are
// reset, as a dropped network would), repoint it to another node, or take it offline (new
// connections are closed at once, like a host that is down). When the upstream dies — a gateway
// killed with SIGKILL — the client side is closed too, so the client sees its socket drop.
import { createServer, connect, type Server, type Socket } from "node:net"

export class TcpProxy {
  readonly #server: Server
  readonly #pairs = new Set<readonly [Socket, Socket]>()
  #target: number | undefined
  /** Connections accepted so far (each client reconnect is one). */
  connections = 0

  private constructor(server: Server, target: number | undefined) {
    this.#server = server
    this.#target = target
  }

  static async start(target: number | undefined): Promise<TcpProxy> {
    const server = createServer()
    const proxy = new TcpProxy(server, target)
    server.on("connection", (socket) => proxy.#accept(socket))
    server.on("error", () => {})
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    return proxy
  }

  get port(): number {
    const address = this.#server.address()
    if (address === null || typeof address === "string") throw new Error("the proxy is not listening")
    return address.port
  }

  /** `ws://127.0.0.1:<proxy port>/v1/ws` */
  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/v1/ws`
  }

  /** Where new connections go; undefined = offline (they are closed at once). */
  pointTo(target: number | undefined): void {
    this.#target = target
  }

  /** Resets every live connection, client side and upstream. */
  cut(): void {
    for (const [client, upstream] of this.#pairs) {
      client.resetAndDestroy()
      upstream.resetAndDestroy()
    }
    this.#pairs.clear()
  }

  async close(): Promise<void> {
    this.cut()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  #accept(client: Socket): void {
    this.connections += 1
    client.on("error", () => {})
    if (this.#target === undefined) {
      client.resetAndDestroy()
      return
    }
    const upstream = connect(this.#target, "127.0.0.1")
    upstream.on("error", () => {})
    const pair = [client, upstream] as const
    this.#pairs.add(pair)
    const end = () => {
      this.#pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.once("close", end)
    upstream.once("close", end)
    client.pipe(upstream)
    upstream.pipe(client)
  }
}
