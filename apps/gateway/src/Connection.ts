// One WebSocket connection (PROTOCOL.md "WebSocket"): authentication (Bearer header checked at
// upgrade, or a first `auth` frame within 5 s), then a delivery session of libs/queue for the
// token's `sub`: welcome, deliveries in priority order within maxInFlight, acks, `send`,
// ping/pong, heartbeats. Lifecycle: the connection runs as one fiber; its scope owns the
// session, so whatever ends it (socket closed, takeover → 4409, token expiry → 4401, drain →
// 1012, abuse → 4400) returns unacked messages to JetStream for the next session.
import { randomUUID } from "node:crypto"
import { CloseCode, ClientFrame, type ServerFrame } from "@holdover/protocol"
import { RecipientQueue, type Delivery, type RecipientSession, type SessionEnd } from "@holdover/queue"
import { Cause, Deferred, Effect, Exit, Queue, Schema } from "effect"
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
const maxInvalidFrames = 20
const maxOverLimitFrames = 50

export interface ConnectionOptions {
  readonly ws: WebSocket
  /** The TCP socket under it: its bytesWritten is what went over the wire (after compression). */
  readonly socket: { readonly bytesWritten: number }
  /** The result of checking an `Authorization: Bearer` header at upgrade, if there was one. */
  readonly preAuth: Exit.Exit<Principal, AuthError> | undefined
  /** Set when the upgrade itself must be refused with a close code (origin, subprotocol). */
  readonly refuse: Closed | undefined
}

export const runConnection = Effect.fn("Connection.run")(function* ({
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
  const connectionId = randomUUID()
  const connectedAt = Date.now()
  let wireBytesCounted = 0
  const countWireBytes = () => {
    const written = socket.bytesWritten
    if (written > wireBytesCounted) metrics.wsWireBytes.inc(written - wireBytesCounted)
    wireBytesCounted = written
  }

  metrics.connections.inc()
  const socketClosed = yield* Deferred.make<number>()
  // How a served session ends: the first of the client closing, the session ending, the token
  // expiring, or a fiber of the connection (frames, heartbeats, deliveries) ending it. Settled by
  // whoever comes first — no racing fibers kept per connection.
  const outcome = yield* Deferred.make<Closed, unknown>()
  const settle = <E>(effect: Effect.Effect<Closed, E>) =>
    Effect.flatMap(Effect.exit(effect), (exit) => Deferred.done(outcome, exit))
  const inbox = yield* Queue.bounded<string>(1024)
  ws.on("error", () => undefined)
  ws.on("close", (code) => {
    Deferred.doneUnsafe(socketClosed, Exit.succeed(code))
    Deferred.doneUnsafe(outcome, Exit.succeed(new Closed({ code, reason: "closed by the client" })))
  })
  ws.on("message", (data, isBinary) => {
    if (isBinary) return void Queue.offerUnsafe(inbox, "\u0000binary")
    if (!Queue.offerUnsafe(inbox, data.toString())) ws.close(CloseCode.RateLimited, "too many frames")
  })
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      metrics.connections.dec()
      countWireBytes()
    }),
  )
  // Interrupted (drain): tell the client to come back at once, elsewhere.
  yield* Effect.addFinalizer(() =>
    Deferred.isDoneUnsafe(socketClosed) || ws.readyState !== ws.OPEN
      ? Effect.void
      : close(CloseCode.Restarting, "gateway restarting"),
  )

  const send = (frame: ServerFrame) =>
    Effect.sync(() => {
      if (ws.readyState !== ws.OPEN) return
      const text = JSON.stringify(frame)
      metrics.wsPayloadBytes.inc(Buffer.byteLength(text))
      ws.send(text)
      // What the socket wrote so far (this frame is still being compressed: counted next time).
      countWireBytes()
    })
  const close = (code: number, reason: string) =>
    Effect.sync(() => {
      metrics.closes.inc({ code: String(code) })
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason.slice(0, 120))
    })

  const program = Effect.gen(function* () {
    if (refuse) return yield* refuse
    const principal = yield* authenticate
    if (!principal.scopes.has("receive"))
      return yield* new Closed({ code: CloseCode.Forbidden, reason: 'the token lacks the "receive" scope' })
    yield* serve(principal)
  })

  const authenticate: Effect.Effect<Principal, Closed> = Effect.gen(function* () {
    const verified =
      preAuth ??
      (yield* Effect.gen(function* () {
        const first = yield* Queue.take(inbox).pipe(
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
            if (Deferred.isDoneUnsafe(socketClosed))
              return yield* new Closed({ code: 1006, reason: "client gone" })
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
      yield* Effect.addFinalizer(() => Effect.sync(() => metrics.sessions.dec()))
      // Runs before the session ends: acks that already arrived still count.
      yield* Effect.addFinalizer(() =>
        Effect.gen(function* () {
          const pending = yield* Queue.clear(inbox)
          const ids = pending.flatMap((text) => {
            const parsed = parseFrame(text)
            return parsed._tag === "Frame" && parsed.frame.type === "ack" ? parsed.frame.ids : []
          })
          if (ids.length > 0) metrics.acked.inc(yield* session.ack(ids))
        }),
      )
      yield* send({
        type: "welcome",
        session: session.id,
        recipient: principal.sub,
        pending: session.pending,
        maxInFlight: session.maxInFlight,
        heartbeatMs: config.heartbeatMs,
      })
      // Deliveries stop only once the session has ended: how it ended decides the code.
      yield* Effect.forkScoped(
        settle(deliver(session).pipe(Effect.andThen(session.ended), Effect.map(closedBySession))),
      )
      yield* Effect.forkScoped(settle(heartbeats(principal.exp * 1000)))
      yield* Effect.forkScoped(settle(handleFrames(principal, session)))
      return yield* yield* Deferred.await(outcome)
    })

  const deliver = (session: RecipientSession) =>
    Effect.gen(function* () {
      const backlog =
        session.pending.critical + session.pending.high + session.pending.normal + session.pending.low
      const started = Date.now()
      let sent = 0
      for (;;) {
        const delivery = yield* session.next
        if (!delivery) return
        while (ws.bufferedAmount > maxBufferedBytes && ws.readyState === ws.OPEN)
          yield* Effect.sleep("5 millis")
        yield* send(messageFrame(delivery))
        yield* Effect.logDebug("message sent", {
          id: delivery.id,
          priority: delivery.priority,
          seq: delivery.seq,
          redelivered: delivery.redelivered,
          session: session.id,
        })
        metrics.delivered.inc({ priority: delivery.priority })
        if (delivery.redelivered) metrics.redelivered.inc({ priority: delivery.priority })
        if (++sent === backlog) metrics.replaySeconds.observe((Date.now() - started) / 1000)
      }
    })

  let lastPong = Date.now()
  ws.on("pong", () => (lastPong = Date.now()))
  /** Pings every heartbeatMs, ends a silent peer, and ends the session when the token expires. */
  const heartbeats = (expiresAt: number) =>
    Effect.gen(function* () {
      // The clock starts with the session: time spent waiting for admission is not silence.
      lastPong = Date.now()
      let beatAt = lastPong + config.heartbeatMs
      for (;;) {
        yield* Effect.sleep(Math.max(0, Math.min(beatAt, expiresAt) - Date.now()))
        if (Date.now() >= expiresAt)
          return new Closed({ code: CloseCode.Unauthenticated, reason: "token expired" })
        if (Date.now() < beatAt) continue
        beatAt = Date.now() + config.heartbeatMs
        countWireBytes()
        if (Date.now() - lastPong > config.heartbeatMs * 2) {
          ws.terminate()
          return new Closed({ code: 1006, reason: "no pong from peer" })
        }
        ws.ping()
      }
    })

  const handleFrames = (principal: Principal, session: RecipientSession) =>
    Effect.gen(function* () {
      const counts = { invalid: 0, overLimit: 0 }
      for (;;) {
        const text = yield* Queue.take(inbox)
        lastPong = Date.now() // any frame proves the peer is alive
        // A defect while handling one frame is that frame's error, never the session's end.
        const closed = yield* handleFrame(principal, session, text, counts).pipe(
          Effect.catchDefect((defect) =>
            Effect.logError("frame handling failed", { defect: String(defect) }).pipe(
              Effect.andThen(
                send({ type: "error", code: "INTERNAL", message: "internal error; frame ignored" }),
              ),
              Effect.as(undefined),
            ),
          ),
        )
        if (closed) return closed
      }
    })

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
      if (!(yield* limits.frame(connectionId))) {
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

  const exit = yield* Effect.exit(Effect.scoped(program))
  if (!Deferred.isDoneUnsafe(socketClosed)) {
    const closed = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
    if (closed instanceof Closed) yield* close(closed.code, closed.reason)
    else if (Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause))
      yield* close(CloseCode.Restarting, "gateway restarting")
    else yield* close(CloseCode.Restarting, "internal error")
  }
})

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
