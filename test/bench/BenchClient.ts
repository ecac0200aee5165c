// A lean recipient for the benchmark that behaves like the SDK (libs/client) on the wire: Bearer
// token at upgrade, subprotocol holdover.v1, acks coalesced per event-loop turn (or once half of
// maxInFlight has piled up), duplicates dropped by id, and the SDK's reconnect policy — at once
// on 1012, with full-jitter backoff (the SDK's own `backoffDelay`) on 4429, 1006 and the other
// retryable codes, not at all on 1000/4400/4403/4409. It keeps only counters and timestamps, so
// ten thousand of them fit in one process; the SDK itself keeps a dedup window and an outbox each.
// Every loop is bounded: at most `maxAttempts` connections, and `close()` stops reconnecting.
import { backoffDelay, defaultBackoff } from "@holdover/client"
import { priorities, reconnectPolicy, subprotocol, type Priority } from "@holdover/protocol"
import WebSocket from "ws"

export interface MessageSeen {
  readonly id: string
  readonly priority: Priority
  readonly payload: unknown
  readonly redelivered: boolean
}

export interface BenchClientOptions {
  readonly url: string
  readonly token: string
  /** Distinct messages after which `done` resolves (0: resolve at the first welcome). */
  readonly expect: number
  /** Called for each new (non-duplicate) message, with the receive time (performance.now()). */
  readonly onMessage?: (message: MessageSeen, at: number) => void
  readonly reconnect?: boolean
  readonly maxAttempts?: number
}

const rank = (priority: Priority): number => priorities.indexOf(priority)

export class BenchClient {
  readonly options: BenchClientOptions
  ws: WebSocket | undefined
  /** performance.now() at the first socket `open` of the current/last connection. */
  openedAt = 0
  welcomedAt = 0
  lastMessageAt = 0
  attempts = 0
  /** Connections that ended since the last welcome: the SDK's backoff attempt counter. */
  private failuresSinceWelcome = 0
  received = 0
  duplicates = 0
  /** A message of a higher priority arriving after a lower one within one session (must stay 0 on replay). */
  orderViolations = 0
  readonly closes = new Map<number, number>()
  readonly done: Promise<void>
  readonly welcomed: Promise<void>
  failed: string | undefined
  private readonly seen = new Set<string>()
  private acks: Array<string> = []
  private ackScheduled = false
  private ackBatch = 128
  private lastRank = -1
  private closing = false
  private resolveDone!: () => void
  private resolveWelcome!: () => void

  constructor(options: BenchClientOptions) {
    this.options = options
    this.done = new Promise((resolve) => (this.resolveDone = resolve))
    this.welcomed = new Promise((resolve) => (this.resolveWelcome = resolve))
  }

  get isDone(): boolean {
    return this.received >= this.options.expect && this.welcomedAt > 0
  }

  start(): this {
    this.connect()
    return this
  }

  private connect(): void {
    if (this.closing) return
    this.attempts++
    const ws = new WebSocket(this.options.url, [subprotocol], {
      headers: { Authorization: `Bearer ${this.options.token}` },
      handshakeTimeout: 60_000,
    })
    this.ws = ws
    this.lastRank = -1
    this.acks = []
    ws.on("error", () => undefined) // a close event follows
    ws.on("open", () => {
      if (this.openedAt === 0) this.openedAt = performance.now()
    })
    ws.on("message", (data) => this.onFrame(ws, data.toString()))
    ws.on("close", (code) => this.onClose(ws, code))
  }

  private onFrame(ws: WebSocket, text: string): void {
    const frame = JSON.parse(text) as {
      type: string
      id?: string
      priority?: Priority
      payload?: unknown
      redelivered?: boolean
      maxInFlight?: number
    }
    if (frame.type === "welcome") {
      this.ackBatch = Math.max(1, Math.floor((frame.maxInFlight ?? 256) / 2))
      if (this.welcomedAt === 0) this.welcomedAt = performance.now()
      this.failuresSinceWelcome = 0
      this.resolveWelcome()
      if (this.isDone) this.resolveDone()
      return
    }
    if (frame.type !== "message" || frame.id === undefined || frame.priority === undefined) return
    const at = performance.now()
    this.queueAck(ws, frame.id)
    if (this.seen.has(frame.id)) {
      this.duplicates++
      return
    }
    this.seen.add(frame.id)
    const r = rank(frame.priority)
    if (r < this.lastRank) this.orderViolations++
    this.lastRank = r
    this.received++
    this.lastMessageAt = at
    this.options.onMessage?.(
      {
        id: frame.id,
        priority: frame.priority,
        payload: frame.payload,
        redelivered: frame.redelivered ?? false,
      },
      at,
    )
    if (this.isDone) this.resolveDone()
  }

  private queueAck(ws: WebSocket, id: string): void {
    this.acks.push(id)
    if (this.acks.length >= this.ackBatch) return this.flushAcks(ws)
    if (this.ackScheduled) return
    this.ackScheduled = true
    setImmediate(() => {
      this.ackScheduled = false
      this.flushAcks(ws)
    })
  }

  private flushAcks(ws: WebSocket): void {
    if (this.acks.length === 0 || ws !== this.ws || ws.readyState !== WebSocket.OPEN) return
    ws.send(JSON.stringify({ type: "ack", ids: this.acks }))
    this.acks = []
  }

  private onClose(ws: WebSocket, code: number): void {
    this.closes.set(code, (this.closes.get(code) ?? 0) + 1)
    if (ws !== this.ws || this.closing || this.options.reconnect === false) return
    const policy = reconnectPolicy(code)
    if (policy === "no" || policy === "fresh-token") {
      this.failed = `closed with ${code}`
      return
    }
    if (this.attempts >= (this.options.maxAttempts ?? 30)) {
      this.failed = `gave up after ${this.attempts} attempts (last close ${code})`
      return
    }
    // Like the SDK: the backoff counter restarts after a welcomed session.
    const attempt = this.failuresSinceWelcome++
    const delay = policy === "immediately" ? 0 : backoffDelay(attempt, defaultBackoff)
    setTimeout(() => this.connect(), delay).unref()
  }

  /** Sends pending acks, closes with 1000 (no reconnect) and resolves once the socket is closed
   * (bounded: terminates after 5 s). */
  close(): Promise<void> {
    this.closing = true
    const ws = this.ws
    if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve()
    this.flushAcks(ws)
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate()
        resolve()
      }, 5_000)
      ws.once("close", () => {
        clearTimeout(timer)
        resolve()
      })
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate()
      else ws.close(1000, "bench done")
    })
  }
}
