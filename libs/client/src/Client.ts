// The client: one WebSocket session at a time, and the state machine around it.
//   connecting ──welcome──▶ open ──socket lost──▶ reconnecting ──timer──▶ connecting …
//        any state ──close() or a "no reconnect" close code──▶ closed (final)
// It owns the socket, the token, the reconnect and connect-timeout timers and the event
// listeners; delivery (Delivery), unconfirmed sends (Outbox), delays (Backoff) and liveness
// (Heartbeat) live in their own modules. The close-code table of the contract decides what a lost
// session leads to (`reconnectPolicy`). Every timer is cleared when the session or the client
// ends, so a closed client keeps nothing alive. Nothing here throws at the caller after
// `createClient` returns: send failures reject the `send` promise, everything else is an
// `error` event.
import {
  CloseCode,
  ErrorFrame,
  MessageFrame,
  PongFrame,
  SentFrame,
  WelcomeFrame,
  reconnectPolicy,
  subprotocol,
} from "@holdover/protocol"
import { Result, Schema } from "effect"
import { Backoff, defaultBackoff } from "./Backoff.ts"
import { DedupWindow } from "./Dedup.ts"
import { Delivery } from "./Delivery.ts"
import type {
  ClientOptions,
  ClientState,
  HoldoverClient,
  WebSocketConstructor,
  WebSocketLike,
} from "./Api.ts"
import { ClientEmitter, describeClose } from "./Events.ts"
import { Heartbeat } from "./Heartbeat.ts"
import { HoldoverError } from "./HoldoverError.ts"
import { Outbox, invalidSend } from "./Outbox.ts"
import type { SendOptions, SendResult } from "./Outbox.ts"

// The contract's server frames, except that an error frame may carry a code added after this SDK
// was built: it is surfaced (and settles its send) with that code, not dropped as invalid.
const ServerFrame = Schema.Union([
  WelcomeFrame,
  MessageFrame,
  SentFrame,
  Schema.Struct({ ...ErrorFrame.fields, code: Schema.String }),
  PongFrame,
])
const decodeServerFrame = Schema.decodeUnknownResult(ServerFrame)
const OPEN = 1
const abnormal = 1006 // what browsers report when a connection dies without a close frame

/** Creates a client and starts connecting on the next microtask (after `on(...)` calls made now). */
export const createClient = (options: ClientOptions): HoldoverClient => new Client(options)

class Client extends ClientEmitter implements HoldoverClient {
  readonly #options: ClientOptions
  readonly #WebSocket: WebSocketConstructor
  readonly #backoff: Backoff
  readonly #outbox: Outbox
  readonly #delivery: Delivery
  #state: ClientState = "connecting"
  #welcome: WelcomeFrame | undefined
  #socket: WebSocketLike | undefined
  #welcomed = false
  #attempt = 0 // bumped per connection attempt and on close(); stale callbacks compare it
  readonly #heartbeat = new Heartbeat()
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined
  #connectTimer: ReturnType<typeof setTimeout> | undefined

  constructor(options: ClientOptions) {
    super()
    new URL(options.url) // throws a TypeError for a malformed url, here rather than on every attempt
    if (options.token === undefined && options.getToken === undefined) {
      throw new TypeError("createClient needs `token` or `getToken`")
    }
    const WebSocketImpl = options.WebSocket ?? globalThis.WebSocket
    if (WebSocketImpl === undefined) {
      throw new TypeError("no global WebSocket in this runtime; pass `WebSocket` to createClient")
    }
    this.#options = options
    this.#WebSocket = WebSocketImpl
    this.#backoff = new Backoff({ ...defaultBackoff, ...options.backoff })
    this.#outbox = new Outbox(options.maxOutbox ?? 1000)
    const manualAck = options.manualAck ?? false
    const dedupWindow = options.dedupWindow ?? 10_000
    this.#delivery = new Delivery(
      {
        onMessage: options.onMessage,
        manualAck,
        dedup: new DedupWindow(dedupWindow),
        writeAck: (ids) => this.#write({ type: "ack", ids }),
        onError: (error) => this.emit("error", error),
      },
      manualAck ? new DedupWindow(dedupWindow) : undefined,
    )
    queueMicrotask(() => void this.#connect())
  }

  get state(): ClientState {
    return this.#state
  }

  get welcome(): WelcomeFrame | undefined {
    return this.#welcome
  }

  send(to: string, payload: unknown, options: SendOptions = {}): Promise<SendResult> {
    if (this.#state === "closed") {
      return Promise.reject(new HoldoverError("CLIENT_CLOSED", "the client is closed"))
    }
    const invalid = invalidSend(to, payload, options)
    if (invalid !== undefined) return Promise.reject(invalid)
    const result = this.#outbox.add(to, payload, options)
    if (this.#state === "open") this.#outbox.attemptAll((frame) => this.#write(frame))
    return result
  }

  ack(id: string): void {
    this.#delivery.ack(id)
  }

  async close(): Promise<void> {
    const socket = this.#socket
    this.#stop(CloseCode.Normal, "closed by the client")
    if (socket === undefined || socket.readyState === 3) return
    // Resolve once the closing handshake is done (or after a second, if the server is silent).
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, 1000)
      function done() {
        clearTimeout(timer)
        resolve()
      }
      socket.onclose = done
    })
  }

  async #connect(): Promise<void> {
    if (this.#state === "closed") return
    const attempt = ++this.#attempt
    this.#setState("connecting")
    this.emit("connecting", { attempt: this.#backoff.attempt })
    let token: string
    try {
      token = await (this.#options.getToken?.() ?? this.#options.token ?? "")
      if (typeof token !== "string" || token === "") throw new TypeError("the token is empty")
    } catch (cause) {
      if (attempt !== this.#attempt) return
      this.emit("error", new HoldoverError("TOKEN_FAILED", `getToken() failed: ${String(cause)}`, { cause }))
      return this.#reconnect(abnormal, "no token")
    }
    if (attempt !== this.#attempt) return
    let socket: WebSocketLike
    try {
      socket = this.#open(token)
    } catch (cause) {
      this.emit("error", new HoldoverError("CONNECTION_LOST", `cannot open a WebSocket: ${String(cause)}`))
      return this.#reconnect(abnormal, "cannot open a WebSocket")
    }
    this.#socket = socket
    socket.onopen = () => {
      if (this.#options.authMode !== "header") this.#write({ type: "auth", token })
    }
    socket.onmessage = (event: { readonly data: unknown }) => {
      if (this.#socket === socket) this.#receive(event.data)
    }
    socket.onclose = (event: { readonly code: number; readonly reason: string }) => {
      if (this.#socket === socket) this.#lost(event.code, event.reason)
    }
    socket.onerror = (event: { readonly message?: unknown }) => {
      if (this.#socket !== socket) return
      const detail = typeof event.message === "string" && event.message !== "" ? `: ${event.message}` : ""
      this.emit("error", new HoldoverError("CONNECTION_LOST", `WebSocket error${detail}`))
    }
    const connectTimeoutMs = this.#options.connectTimeoutMs ?? 10_000
    this.#connectTimer = setTimeout(
      () => this.#abort(`no welcome within ${connectTimeoutMs} ms`),
      connectTimeoutMs,
    )
  }

  #open(token: string): WebSocketLike {
    if (this.#options.authMode !== "header") return new this.#WebSocket(this.#options.url, [subprotocol])
    const headers = { Authorization: `Bearer ${token}` }
    // Node's built-in (undici) WebSocket takes headers in an init object; `ws` takes a third argument.
    if (this.#WebSocket === globalThis.WebSocket) {
      const init = { protocols: [subprotocol], headers } as unknown as Array<string>
      return new this.#WebSocket(this.#options.url, init)
    }
    return new this.#WebSocket(this.#options.url, [subprotocol], { headers })
  }

  #receive(data: unknown): void {
    this.#heartbeat.touch()
    let json: unknown
    try {
      if (typeof data !== "string") throw new TypeError("a binary frame")
      json = JSON.parse(data)
    } catch (cause) {
      return this.emit("error", new HoldoverError("INVALID_SERVER_FRAME", `not a JSON text frame: ${cause}`))
    }
    const decoded = decodeServerFrame(json)
    if (Result.isFailure(decoded)) {
      return this.emit("error", new HoldoverError("INVALID_SERVER_FRAME", decoded.failure.message))
    }
    const frame = decoded.success
    switch (frame.type) {
      case "welcome":
        return this.#onWelcome(frame)
      case "message": {
        const { type: _type, ...message } = frame
        return this.#delivery.receive(message)
      }
      case "sent":
        if (frame.ref !== undefined) this.#outbox.settle(frame.ref, { id: frame.id, status: frame.status })
        return
      case "error": {
        const error = new HoldoverError(frame.code, frame.message)
        if (frame.ref === undefined || !this.#outbox.fail(frame.ref, error)) this.emit("error", error)
        return
      }
      case "pong":
        return
    }
  }

  #onWelcome(welcome: WelcomeFrame): void {
    if (this.#welcomed) return
    clearTimeout(this.#connectTimer)
    this.#welcomed = true
    this.#welcome = welcome
    this.#backoff.reset()
    this.#delivery.startSession(welcome.maxInFlight)
    this.#heartbeat.start(
      welcome.heartbeatMs,
      () => this.#write({ type: "ping" }),
      (reason) => this.#abort(reason),
    )
    this.#setState("open")
    // Before "open" listeners run, so a send they make queues behind the older ones.
    this.#outbox.attemptAll((frame) => this.#write(frame))
    this.emit("open", { welcome })
  }

  /** We give up on a session that looks dead: close it ourselves and reconnect with backoff. */
  #abort(reason: string): void {
    this.emit("error", new HoldoverError("CONNECTION_LOST", reason))
    this.#lost(abnormal, reason, 4000)
  }

  /** The session is over; the close-code table decides what comes next. */
  #lost(code: number, serverReason: string, closeWith?: number): void {
    const welcomed = this.#welcomed
    this.#detach(closeWith ?? CloseCode.Normal, serverReason)
    const reason = describeClose(code, serverReason)
    switch (reconnectPolicy(code)) {
      case "no":
        if (code === CloseCode.TakenOver) this.emit("taken-over", { reason })
        return this.#stop(code, reason)
      case "fresh-token":
        if (this.#options.getToken === undefined) {
          return this.#stop(code, `${reason}; no getToken() was given to fetch a fresh token`)
        }
        return this.#reconnect(code, reason, welcomed)
      case "immediately":
        return this.#reconnect(code, reason, welcomed)
      case "backoff":
        return this.#reconnect(code, reason)
    }
  }

  /** `now`: reconnect at once — only after a welcomed session, so a failing server is not hammered. */
  #reconnect(code: number, reason: string, now = false): void {
    if (this.#state === "closed") return
    const { attempt, delayMs } = now ? { attempt: this.#backoff.attempt, delayMs: 0 } : this.#backoff.next()
    this.#setState("reconnecting")
    this.emit("reconnecting", { attempt, delayMs, code, reason })
    this.#reconnectTimer = setTimeout(() => void this.#connect(), delayMs)
  }

  #stop(code: number, reason: string): void {
    if (this.#state === "closed") return
    this.#attempt += 1 // a connect waiting for getToken() sees it is stale
    this.#detach(CloseCode.Normal, reason)
    clearTimeout(this.#reconnectTimer)
    this.#delivery.close()
    this.#setState("closed")
    this.#outbox.rejectAll(new HoldoverError("CLIENT_CLOSED", `the client stopped: ${reason}`))
    this.emit("closed", { code, reason })
  }

  /** Ends the current socket (if any) and everything that belongs to its session. */
  #detach(closeCode: number, reason: string): void {
    clearTimeout(this.#connectTimer)
    this.#heartbeat.stop()
    this.#delivery.endSession()
    this.#outbox.detach()
    this.#welcomed = false
    const socket = this.#socket
    this.#socket = undefined
    if (socket === undefined) return
    socket.onopen = null
    socket.onmessage = null
    socket.onclose = null
    socket.onerror = () => {} // `ws` throws on an 'error' event without a listener
    if (socket.readyState > OPEN) return
    try {
      socket.close(closeCode, reason)
    } catch {
      socket.close(closeCode) // the reason was over the 123 bytes a close frame allows
    }
  }

  #write(frame: object): boolean {
    const socket = this.#socket
    if (socket === undefined || socket.readyState !== OPEN) return false
    socket.send(JSON.stringify(frame))
    return true
  }

  #setState(state: ClientState): void {
    if (state === this.#state && state !== "connecting") return
    this.#state = state
    this.guard("onStateChange", () => this.#options.onStateChange?.(state))
  }
}
