// A real `ws` server on 127.0.0.1:0 that speaks the client half of the contract (PROTOCOL.md):
// subprotocol holdover.v1, auth by first frame or Authorization header, welcome, message, sent,
// error, pong, close codes. Tests steer it per connection (`onAuth`, `onSend`, `silent`) and read
// what the client sent (`frames`). Not the gateway: just enough of it to test the SDK for real.
import type { AddressInfo } from "node:net"
import { WebSocketServer } from "ws"
import type { WebSocket } from "ws"
import { waitUntil } from "./waitUntil.ts"

export type Frame = { readonly type: string } & Record<string, unknown>

export class TestConnection {
  readonly socket: WebSocket
  readonly index: number
  readonly authorization: string | undefined
  /** Every frame the client sent, parsed, the auth frame included. */
  readonly frames: Array<Frame> = []
  token: string | undefined
  closed: { code: number; reason: string } | undefined
  /** When true, pings get no pong (a dead-looking server). */
  silent = false

  constructor(socket: WebSocket, index: number, authorization: string | undefined) {
    this.socket = socket
    this.index = index
    this.authorization = authorization
  }

  get authed(): boolean {
    return this.token !== undefined
  }

  framesOf(type: string): Array<Frame> {
    return this.frames.filter((f) => f.type === type)
  }

  /** Every id in every ack frame, in order. */
  get ackedIds(): Array<string> {
    return this.framesOf("ack").flatMap((f) => f.ids as Array<string>)
  }

  send(frame: object | string): void {
    this.socket.send(typeof frame === "string" ? frame : JSON.stringify(frame))
  }

  welcome(overrides: Partial<Record<string, unknown>> = {}): void {
    this.send({
      type: "welcome",
      session: `s_${this.index}`,
      recipient: "alice",
      pending: { critical: 0, high: 0, normal: 0, low: 0 },
      maxInFlight: 256,
      heartbeatMs: 25_000,
      ...overrides,
    })
  }

  message(id: string, overrides: Partial<Record<string, unknown>> = {}): void {
    this.send({
      type: "message",
      id,
      priority: "normal",
      payload: { id },
      enqueuedAt: new Date().toISOString(),
      expiresAt: new Date(Date.now() + 60_000).toISOString(),
      redelivered: false,
      ...overrides,
    })
  }

  close(code: number, reason = ""): void {
    this.socket.close(code, reason)
  }

  /** Drops the TCP connection without a close frame: the client sees 1006. */
  drop(): void {
    this.socket.terminate()
  }

  async waitForFrames(type: string, count: number): Promise<Array<Frame>> {
    await waitUntil(
      `${count} ${type} frame(s) on connection ${this.index}`,
      () => this.framesOf(type).length >= count,
    )
    return this.framesOf(type)
  }
}

export class TestGateway {
  readonly #server: WebSocketServer
  readonly connections: Array<TestConnection> = []
  /** Called once a connection has authenticated; default: welcome it. */
  onAuth: (connection: TestConnection) => void = (c) => c.welcome()
  /** Called for each `send` frame; default: answer `sent` / `queued` with the frame's id. */
  onSend: (connection: TestConnection, frame: Frame) => void = (c, f) =>
    c.send({ type: "sent", ref: f.ref, id: f.id ?? "m_generated", status: "queued" })

  private constructor(server: WebSocketServer) {
    this.#server = server
    server.on("connection", (socket, request) => {
      const authorization = request.headers.authorization
      const connection = new TestConnection(socket, this.connections.length, authorization)
      this.connections.push(connection)
      socket.on("error", () => {})
      socket.on("close", (code, reason) => {
        connection.closed = { code, reason: reason.toString() }
      })
      socket.on("message", (data) => {
        const frame = JSON.parse(data.toString()) as Frame
        connection.frames.push(frame)
        if (frame.type === "auth" && !connection.authed) {
          connection.token = frame.token as string
          this.onAuth(connection)
        } else if (frame.type === "ping" && !connection.silent) connection.send({ type: "pong" })
        else if (frame.type === "send") this.onSend(connection, frame)
      })
      if (authorization?.startsWith("Bearer ") === true) {
        connection.token = authorization.slice("Bearer ".length)
        this.onAuth(connection)
      }
    })
  }

  static async start(): Promise<TestGateway> {
    const server = new WebSocketServer({
      host: "127.0.0.1",
      port: 0,
      handleProtocols: (protocols) => (protocols.has("holdover.v1") ? "holdover.v1" : false),
    })
    await new Promise<void>((resolve, reject) => {
      server.once("listening", resolve)
      server.once("error", reject)
    })
    return new TestGateway(server)
  }

  get url(): string {
    const { port } = this.#server.address() as AddressInfo
    return `ws://127.0.0.1:${port}/v1/ws`
  }

  /** The `index`-th connection (0-based), once it has authenticated. */
  async connection(index: number): Promise<TestConnection> {
    await waitUntil(`connection ${index} authenticated`, () => this.connections[index]?.authed === true)
    return this.connections[index]!
  }

  async close(): Promise<void> {
    for (const client of this.#server.clients) client.terminate()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}
