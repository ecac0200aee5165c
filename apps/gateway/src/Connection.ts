// One WebSocket connection (PROTOCOL.md "WebSocket"): authentication (Bearer header checked at
// upgrade, or a first `auth` frame within 5 s), then a delivery session of libs/queue for the
// token's `sub`: welcome, deliveries in priority order within maxInFlight, acks, `send`,
// ping/pong, heartbeats. Lifecycle: the connection runs as one fiber; its scope owns the
// session, so whatever ends it (socket closed, takeover → 4409, token expiry → 4401, drain →
// 1012, abuse → 4400) returns unacked messages to JetStream for the next session.
// An idle connection costs one waiting fiber: the session pushes its deliveries (no fiber waits
// for them), heartbeats and token expiry run on one timer, and frames are handled by a fiber
// that exists only while frames wait. The timers here are plain ones, not sleeping fibers on
// Effect's Clock: waiting fibers were most of an idle connection's heap ("An idle connection
// waits in one fiber, not five", docs/benchmarks.md), and what they time (pings, a retry of a
// full socket) is no policy worth a TestClock.
import { randomUUID } from "node:crypto"
import { CloseCode, ClientFrame, type ServerFrame } from "@holdover/protocol"
import { RecipientQueue, type Delivery, type RecipientSession, type SessionEnd } from "@holdover/queue"
import { Cause, Effect, Exit, Fiber, Schema, Scope } from "effect"
import type { WebSocket } from "ws"
import { fromSchemaError, toErrorBody, type AnyError } from "./ApiError.ts"
import { Auth, AuthError, type Principal } from "./Auth.ts"
import { GatewayConfig } from "./GatewayConfig.ts"
import { Limits } from "./Limits.ts"
import { Metrics } from "./Metrics.ts"
import { Publisher } from "./Publisher.ts"

export class Closed extends Schema.TaggedError<Closed>()("Closed", {
  code: Schema.Number,
  reason: Schema.String,
}) {}

const decodeFrame = Schema.decodeUnknownExit(ClientFrame)
const maxBufferedBytes = 1024 * 1024
/** Frames received and not handled yet, at most: a client sending more is closed with 4429. */
const maxWaitingFrames = 1024
const binaryFrame = "\u0000binary"
const ignore = () => undefined
const maxInvalidFrames = 20
const maxOverLimitFrames = 50

export interface ConnectionOptions {
  readonly ws: WebSocket
  /**
   * The TCP socket under it: its bytesWritten is what went over the wire (after compression);
   * frames sent in one tick are corked into one write.
   */
  readonly socket: { readonly bytesWritten: number; cork(): void; uncork(): void }
  /** The result of checking an `Authorization: Bearer` header at upgrade, if there was one. */
  readonly preAuth: Exit.Exit<Principal, AuthError> | undefined
  /** Set when the upgrade itself must be refused with a close code (origin, subprotocol). */
  readonly refuse: Closed | undefined
}

export const runConnection = Effect.fnUntraced(function* ({
  ws,
  socket,
  preAuth,
  refuse,
}: ConnectionOptions) {
  const config = yield* GatewayConfig
  const auth = yield* Auth
  const queue = yield* RecipientQueue
  const metrics = yield* Metrics
  const limits = yield* Limits
  const publisher = yield* Publisher
  // Made when first needed (a frame other than an ack): an idle connection never needs one.
  let connectionId: string | undefined
  const connectedAt = Date.now()
  let wireBytesCounted = 0
  const countWireBytes = () => {
    const written = socket.bytesWritten
    if (written > wireBytesCounted) metrics.wsWireBytes.inc(written - wireBytesCounted)
    wireBytesCounted = written
  }

  metrics.connections.inc()
  let peerClosed = false
  // How a served session ends: the first of the client closing, the session ending, the token
  // expiring, a missing pong, or a frame ending it. Settled by whoever comes first.
  let outcome: Closed | undefined
  let onOutcome: ((closed: Closed) => void) | undefined
  const finish = (closed: Closed) => {
    if (outcome) return
    outcome = closed
    onOutcome?.(closed)
  }
  /** Fails with the outcome once there is one. */
  const outcomeReached = Effect.callback<never, Closed>((resume) => {
    if (outcome) return resume(Effect.fail(outcome))
    onOutcome = (closed) => resume(Effect.fail(closed))
    return Effect.sync(() => void (onOutcome = undefined))
  })
  // Frames received and not handled yet. `onFrame` is told of each: the wait for the auth frame,
  // then the served connection's frame handling.
  const inbox: Array<string> = []
  let onFrame: (() => void) | undefined
  let lastPong = Date.now()
  ws.on("error", ignore)
  ws.on("close", (code) => {
    peerClosed = true
    finish(new Closed({ code, reason: "closed by the client" }))
  })
  ws.on("message", (data, isBinary) => {
    if (inbox.length >= maxWaitingFrames) return void ws.close(CloseCode.RateLimited, "too many frames")
    lastPong = Date.now() // any frame proves the peer is alive
    inbox.push(isBinary ? binaryFrame : data.toString())
    onFrame?.()
  })
  ws.on("pong", () => (lastPong = Date.now()))

  let corked = false
  const uncork = () => {
    corked = false
    socket.uncork()
    // Once per tick, not per frame: `bytesWritten` sums every chunk still buffered in the socket,
    // and a corked run of frames makes a per-frame count quadratic (16 % of a replay's CPU).
    countWireBytes()
  }
  const debug = config.logLevel === "Debug" || config.logLevel === "Trace"
  const sendFrame = (frame: ServerFrame) => {
    if (ws.readyState !== ws.OPEN) return
    // A session hands out a run of messages at once: one write (syscall) for all of them.
    if (!corked) {
      corked = true
      socket.cork()
      process.nextTick(uncork)
    }
    const text = JSON.stringify(frame)
    metrics.wsPayloadBytes.inc(Buffer.byteLength(text))
    ws.send(text)
  }
  const send = (frame: ServerFrame) => Effect.sync(() => sendFrame(frame))
  const close = (code: number, reason: string) =>
    Effect.sync(() => {
      metrics.closes.inc({ code: String(code) })
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason.slice(0, 120))
    })

  const program = Effect.gen(function* () {
    if (refuse) return yield* refuse
    const principal = yield* authenticate()
    if (!principal.scopes.has("receive"))
      return yield* new Closed({ code: CloseCode.Forbidden, reason: 'the token lacks the "receive" scope' })
    yield* serve(principal)
  })

  const firstFrame = () =>
    Effect.callback<string>((resume) => {
      const waiting = inbox.shift()
      if (waiting !== undefined) return resume(Effect.succeed(waiting))
      onFrame = () => {
        onFrame = undefined
        resume(Effect.succeed(inbox.shift() ?? ""))
      }
      return Effect.sync(() => void (onFrame = undefined))
    })

  // Built when used (not kept for the connection's life).
  const authenticate = (): Effect.Effect<Principal, Closed> =>
    Effect.gen(function* () {
      const verified =
        preAuth ??
        (yield* Effect.gen(function* () {
          const first = yield* firstFrame().pipe(
            Effect.timeoutOrElse({
              duration: config.authTimeoutMs,
              orElse: () =>
                Effect.fail(
                  new Closed({ code: CloseCode.Unauthenticated, reason: "no auth frame within 5 s" }),
                ),
            }),
          )
          const frame = parseFrame(first)
          if (frame._tag !== "Frame" || frame.frame.type !== "auth")
            return yield* new Closed({
              code: CloseCode.Unauthenticated,
              reason: 'the first frame must be {"type":"auth","token":…}',
            })
          return yield* Effect.exit(auth.verify(frame.frame.token))
        }))
      if (Exit.isSuccess(verified)) return verified.value
      const failure = Cause.squash(verified.cause)
      const error = failure instanceof AuthError ? failure : undefined
      return yield* new Closed({
        code: error?.code === "FORBIDDEN" ? CloseCode.Forbidden : CloseCode.Unauthenticated,
        reason: error?.message ?? "not authenticated",
      })
    })

  const serve = (principal: Principal) =>
    Effect.gen(function* () {
      // A reconnect storm is admitted at a bounded pace: each opening reads the four lanes and the session record.
      const session = yield* limits
        .admitted(
          Effect.gen(function* () {
            // A socket that closed while it waited must not open a session (or take one over).
            if (peerClosed) return yield* new Closed({ code: 1006, reason: "client gone" })
            return yield* queue.openSession(principal.sub, { since: connectedAt }).pipe(
              Effect.mapError((error) =>
                error.reason._tag === "SessionClosed"
                  ? new Closed({
                      code: CloseCode.TakenOver,
                      reason: "a newer connection of this recipient is open",
                    })
                  : // Not 1012 ("reconnect at once"): when JetStream is overloaded, instant reconnects
                    // of every refused client would feed the overload. 4429 means: back off, retry.
                    new Closed({ code: CloseCode.RateLimited, reason: "queue unavailable, retry later" }),
              ),
            )
          }),
        )
        .pipe(
          Effect.catchTag("ApiError", () =>
            Effect.fail(
              new Closed({ code: CloseCode.RateLimited, reason: "too many sessions opening; retry later" }),
            ),
          ),
        )
      metrics.sessions.inc()
      /** What serves the session once it is welcomed: stopped when the connection ends. */
      const serving: Array<{ readonly stop: Effect.Effect<void> }> = []
      // One finalizer, run before the session's own: the frame handling and the timers stop, the
      // acks that already arrived still count, then the session ends.
      yield* Effect.addFinalizer(() =>
        Effect.gen(function* () {
          for (const part of serving.splice(0).reverse()) yield* part.stop
          const ids = inbox.splice(0).flatMap((text) => {
            const parsed = parseFrame(text)
            return parsed._tag === "Frame" && parsed.frame.type === "ack" ? parsed.frame.ids : []
          })
          if (ids.length > 0) metrics.acked.inc(yield* session.ack(ids))
        }).pipe(Effect.ensuring(Effect.sync(() => metrics.sessions.dec()))),
      )
      yield* send({
        type: "welcome",
        session: session.id,
        recipient: principal.sub,
        pending: session.pending,
        maxInFlight: session.maxInFlight,
        heartbeatMs: config.heartbeatMs,
      })
      const run = Effect.runForkWith(yield* Effect.context<never>())
      serving.push(handleFrames(principal, session, run), heartbeats(principal.exp * 1000))
      // Deliveries stop only once the session has ended: how it ended decides the code.
      session.listen(deliveries(session, run))
    })

  /** Sends what the session hands out, holding it back while the socket's buffer is full. */
  const deliveries = (session: RecipientSession, run: Runner) => {
    const backlog =
      session.pending.critical + session.pending.high + session.pending.normal + session.pending.low
    const started = Date.now()
    let sent = 0
    const held: Array<Delivery> = []
    let retry: ReturnType<typeof setTimeout> | undefined
    const sendNow = (delivery: Delivery) => {
      sendFrame(messageFrame(delivery))
      if (debug)
        run(
          Effect.logDebug("message sent", {
            id: delivery.id,
            priority: delivery.priority,
            seq: delivery.seq,
            redelivered: delivery.redelivered,
            session: session.id,
          }),
        )
      metrics.delivered.inc({ priority: delivery.priority })
      if (delivery.redelivered) metrics.redelivered.inc({ priority: delivery.priority })
      if (++sent === backlog) metrics.replaySeconds.observe((Date.now() - started) / 1000)
    }
    const congested = () => ws.bufferedAmount > maxBufferedBytes && ws.readyState === ws.OPEN
    const flush = () => {
      retry = undefined
      const expired: Array<string> = []
      while (held.length > 0 && !congested()) {
        const next = held.shift()!
        // Held so long that it expired: never sent, removed like an acked one.
        if (Date.parse(next.expiresAt) <= Date.now()) expired.push(next.id)
        else sendNow(next)
      }
      if (expired.length > 0) session.expiredUnsent(expired)
      if (held.length > 0 && outcome === undefined) retry = setTimeout(flush, 5)
    }
    return {
      deliver: (delivery: Delivery) => {
        if (held.length === 0 && !congested()) return sendNow(delivery)
        held.push(delivery)
        retry ??= setTimeout(flush, 5)
      },
      ended: (end: SessionEnd) => {
        if (retry) clearTimeout(retry)
        finish(closedBySession(end))
      },
    }
  }

  /** Pings every heartbeatMs, ends a silent peer, and ends the session when the token expires. */
  const heartbeats = (expiresAt: number) => {
    // The clock starts with the session: time spent waiting for admission is not silence.
    lastPong = Date.now()
    let beatAt = lastPong + config.heartbeatMs
    let timer: ReturnType<typeof setTimeout> | undefined
    const arm = (now: number) => (timer = setTimeout(beat, Math.max(0, Math.min(beatAt, expiresAt) - now)))
    const beat = () => {
      const now = Date.now()
      if (now >= expiresAt)
        return finish(new Closed({ code: CloseCode.Unauthenticated, reason: "token expired" }))
      if (now >= beatAt) {
        beatAt = now + config.heartbeatMs
        countWireBytes()
        if (now - lastPong > config.heartbeatMs * 2) {
          ws.terminate()
          return finish(new Closed({ code: 1006, reason: "no pong from peer" }))
        }
        ws.ping()
      }
      arm(now)
    }
    arm(Date.now())
    return { stop: Effect.sync(() => clearTimeout(timer)) }
  }

  /** Handles the frames waiting, one at a time, in a fiber that ends when none is left. */
  const handleFrames = (principal: Principal, session: RecipientSession, run: Runner) => {
    const counts = { invalid: 0, overLimit: 0 }
    let stopped = false
    let busy = false
    let worker: Fiber.Fiber<void> | undefined
    /** A defect while handling one frame is that frame's error, never the session's end. */
    const frameFailed = (defect: unknown): undefined => {
      run(Effect.logError("frame handling failed", { defect: String(defect) }))
      sendFrame({ type: "error", code: "INTERNAL", message: "internal error; frame ignored" })
      return undefined
    }
    // Built per run (frames other than acks are rare; an idle connection keeps none).
    const work = () =>
      Effect.gen(function* () {
        for (let text = inbox.shift(); text !== undefined; text = inbox.shift()) {
          const closed = yield* handleFrame(principal, session, text, counts).pipe(
            Effect.catchDefect((defect) => Effect.sync(() => frameFailed(defect))),
          )
          if (closed) return finish(closed)
        }
      }).pipe(
        Effect.ensuring(
          Effect.sync(() => {
            worker = undefined
            busy = false
            wake() // a frame that came after the loop's last look
          }),
        ),
      )
    /** An ack of messages in flight, applied at once (no fiber): true if `text` was one. */
    const ackedAtOnce = (text: string): boolean => {
      if (!text.startsWith('{"type":"ack"')) return false
      const parsed = parseFrame(text)
      if (parsed._tag !== "Frame" || parsed.frame.type !== "ack") return false
      let acked: number
      try {
        acked = session.ackNow(parsed.frame.ids)
      } catch (defect) {
        frameFailed(defect)
        return true
      }
      if (acked === 0) return false // unknown ids: the frame counts against the rate limit
      metrics.acked.inc(acked)
      if (debug) run(Effect.logDebug("messages acked", { ids: parsed.frame.ids, acked, session: session.id }))
      return true
    }
    const wake = () => {
      if (stopped || busy || outcome !== undefined) return
      // Acks (most frames) in order, at once, while no other frame is being handled.
      while (inbox.length > 0 && ackedAtOnce(inbox[0]!)) inbox.shift()
      if (inbox.length === 0) return
      busy = true
      const fiber = run(work())
      if (busy) worker = fiber // (it may have finished already)
    }
    onFrame = wake
    wake()
    return {
      stop: Effect.suspend(() => {
        stopped = true
        onFrame = undefined
        return worker === undefined ? Effect.void : Fiber.interrupt(worker)
      }),
    }
  }

  const handleFrame = (
    principal: Principal,
    session: RecipientSession,
    text: string,
    counts: { invalid: number; overLimit: number },
  ) =>
    Effect.gen(function* () {
      const parsed = parseFrame(text)
      // Acks of deliveries in flight are never throttled (they are bounded by maxInFlight and
      // throttling them would stall the session); every other frame counts against the limit.
      if (parsed._tag === "Frame" && parsed.frame.type === "ack") {
        const acked = yield* session.ack(parsed.frame.ids)
        metrics.acked.inc(acked)
        yield* Effect.logDebug("messages acked", { ids: parsed.frame.ids, acked, session: session.id })
        if (acked > 0) return undefined
      }
      if (!(yield* limits.frame((connectionId ??= randomUUID())))) {
        yield* send({
          type: "error",
          code: "RATE_LIMITED",
          message: `over ${config.frameRate} frames/s; frame ignored`,
        })
        return ++counts.overLimit > maxOverLimitFrames
          ? new Closed({ code: CloseCode.RateLimited, reason: "sustained frame rate over the limit" })
          : undefined
      }
      counts.overLimit = 0
      if (parsed._tag === "Invalid") {
        yield* send({ type: "error", code: "INVALID_FRAME", message: parsed.message })
        return ++counts.invalid > maxInvalidFrames
          ? new Closed({ code: CloseCode.ProtocolViolation, reason: "too many invalid frames" })
          : undefined
      }
      const frame = parsed.frame
      switch (frame.type) {
        case "ping":
          yield* send({ type: "pong" })
          break
        case "auth":
          yield* send({ type: "error", code: "INVALID_FRAME", message: "already authenticated" })
          break
        case "ack":
          break // applied above
        case "send": {
          const { type: _, ref, ...message } = frame
          const result = yield* Effect.exit(
            publisher.shed.pipe(Effect.andThen(publisher.publish(principal, message))),
          )
          if (Exit.isSuccess(result))
            yield* send({
              type: "sent",
              ...(ref === undefined ? {} : { ref }),
              id: result.value.id,
              status: result.value.status,
            })
          else {
            const body = toErrorBody(Cause.squash(result.cause) as AnyError)
            yield* send({
              type: "error",
              code: body.code,
              message: body.message,
              ...(ref === undefined ? {} : { ref }),
            })
          }
          break
        }
      }
      return undefined
    })

  /** Closes the socket as the connection ended (when the peer has not), and counts it gone. */
  const closeAs = (exit: Exit.Exit<unknown, unknown>) =>
    Effect.suspend(() => {
      const closed = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
      const closing = peerClosed
        ? Effect.void
        : closed instanceof Closed
          ? close(closed.code, closed.reason)
          : Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)
            ? close(CloseCode.Restarting, "gateway restarting") // the node drains: come back elsewhere
            : close(CloseCode.Restarting, "internal error")
      return Effect.andThen(
        closing,
        Effect.sync(() => {
          metrics.connections.dec()
          countWireBytes()
        }),
      )
    })

  // The connection's one scope holds the session and what serves it. The program returns once
  // the connection is served; the fiber then waits for its outcome (one wait, one frame deep:
  // an idle connection's whole fiber). However it ends — a Closed, interrupted by the node's
  // drain, a defect — the scope closes first (unacked messages go back), then the socket.
  const scope = yield* Scope.make()
  yield* Scope.provide(program, scope).pipe(
    Effect.andThen(outcomeReached),
    // A finalizer that died (a defect) must not keep the socket open or the counters off.
    Effect.onExit((exit) => Effect.andThen(Effect.exit(Scope.close(scope, exit)), closeAs(exit))),
    Effect.exit,
  )
})

type Runner = ReturnType<typeof Effect.runForkWith<never>>

const closedBySession = (end: SessionEnd) =>
  end === "taken-over"
    ? new Closed({ code: CloseCode.TakenOver, reason: "session taken over by a newer connection" })
    : new Closed({ code: CloseCode.Restarting, reason: "session ended" })

type Parsed =
  | { readonly _tag: "Frame"; readonly frame: ClientFrame }
  | { readonly _tag: "Invalid"; readonly message: string }

/** Total: any text (however deep, large or hostile its JSON) becomes a frame or an Invalid. */
const parseFrame = (text: string): Parsed => {
  if (text === "\u0000binary") return { _tag: "Invalid", message: "frames are text (JSON), not binary" }
  try {
    return decodeParsed(JSON.parse(text))
  } catch (error) {
    return {
      _tag: "Invalid",
      message:
        error instanceof SyntaxError
          ? "the frame is not valid JSON"
          : "the frame is nested too deeply to read",
    }
  }
}

const knownTypes: ReadonlyArray<unknown> = ["auth", "ack", "send", "ping"]

const decodeParsed = (json: unknown): Parsed => {
  const decoded = decodeFrame(json)
  if (decoded._tag === "Success") return { _tag: "Frame", frame: decoded.value }
  const type = typeof json === "object" && json !== null && "type" in json ? json.type : undefined
  if (type !== undefined && !knownTypes.includes(type))
    return {
      _tag: "Invalid",
      message:
        typeof type === "string"
          ? `unknown frame type "${type.slice(0, 64)}"`
          : '"type" must be one of "auth", "ack", "send", "ping"',
    }
  const failure = decoded.cause.reasons.find((reason) => reason._tag === "Fail")
  return {
    _tag: "Invalid",
    message:
      failure?._tag === "Fail" ? fromSchemaError("INVALID_FRAME", failure.error).message : "invalid frame",
  }
}

const messageFrame = (delivery: Delivery): ServerFrame => ({
  type: "message",
  id: delivery.id,
  priority: delivery.priority,
  payload: delivery.payload,
  enqueuedAt: delivery.enqueuedAt,
  expiresAt: delivery.expiresAt,
  redelivered: delivery.redelivered,
})
