// The node's HTTP server and its WebSocket endpoint (`ws`, noServer, upgrade on GET /v1/ws).
//
// Lifecycle: listening once the layer is built (and logged, one line); when the layer's scope
// closes (SIGTERM/SIGINT via NodeRuntime.runMain) the node drains: readiness turns false, no
// new connection is accepted, every session is closed with 1012 (returning its in-flight
// messages to JetStream), then the listener closes — all within HOLDOVER_DRAIN_TIMEOUT; sockets
// still open after that are terminated. NATS is drained afterwards by its own layer.
// Failure: a port that cannot be bound fails the layer with a ListenError saying why and which
// variable to change (main prints it and exits 1).
import { createServer, type IncomingMessage } from "node:http"
import type { Socket } from "node:net"
import type { Duplex } from "node:stream"
import { CloseCode, subprotocol, type ErrorCode } from "@holdover/protocol"
import { breakerLevel, RecipientQueue } from "@holdover/queue"
import type { Exit } from "effect"
import { Context, Effect, FiberSet, Layer, Schema } from "effect"
import { WebSocketServer, type WebSocket } from "ws"
import { rawErrorResponse } from "./ApiError.ts"
import { Auth, type AuthError, type Principal } from "./Auth.ts"
import { Closed, runConnection } from "./Connection.ts"
import { GatewayConfig } from "./GatewayConfig.ts"
import { GatewayState } from "./GatewayState.ts"
import { bearer, makeHttpApi, requestPath } from "./HttpApi.ts"
import type { Limits } from "./Limits.ts"
import { Metrics } from "./Metrics.ts"
import type { Publisher } from "./Publisher.ts"

export class ListenError extends Schema.TaggedError<ListenError>()("ListenError", {
  reason: Schema.Literals(["AddressInUse", "AccessDenied", "AddressNotAvailable", "Other"]),
  message: Schema.String,
}) {}

const listenError = (error: Error & { code?: string }, host: string, port: number): ListenError => {
  switch (error.code) {
    case "EADDRINUSE":
      return new ListenError({
        reason: "AddressInUse",
        message: `port ${port} is in use (on ${host}); set HOLDOVER_PORT to a free port, or stop what holds it`,
      })
    case "EACCES":
      return new ListenError({
        reason: "AccessDenied",
        message: `no permission to listen on port ${port} (ports below 1024 need privileges); set HOLDOVER_PORT`,
      })
    case "EADDRNOTAVAIL":
      return new ListenError({
        reason: "AddressNotAvailable",
        message: `${host} is not an address of this machine; set HOLDOVER_HOST (0.0.0.0 for every interface)`,
      })
    default:
      return new ListenError({
        reason: "Other",
        message: `cannot listen on ${host}:${port}: ${error.message}`,
      })
  }
}

export interface GatewayServerShape {
  /** The bound port (useful with HOLDOVER_PORT=0). */
  readonly port: number
}

const reject = (socket: Duplex, code: ErrorCode, message: string, head = false) => {
  if (socket.writable) socket.end(rawErrorResponse(code, message, head))
  else socket.destroy()
}

/** What a request Node's HTTP parser refused gets told (HPE_* codes of llhttp). */
const parserRefusal = (error: Error & { code?: string }): string => {
  switch (error.code) {
    case "HPE_HEADER_OVERFLOW":
      return "the request headers are over the size limit"
    case "HPE_INVALID_METHOD":
      return "the request method is not a valid token"
    case "HPE_INVALID_HEADER_TOKEN":
    case "HPE_INVALID_HEADER_VALUE":
      return "a request header holds a character HTTP does not allow"
    default:
      return `the request is not valid HTTP/1.1${error.code ? ` (${error.code})` : ""}`
  }
}

const ignoreError = () => undefined

type Receiver = { startLoop: (this: Receiver, cb: (error?: Error) => void) => void; _loop: boolean }

/**
 * ws 8.23's frame parser can throw from inside its parsing loop (a TypeError in
 * Receiver.getData after an inflate — the fuzz suite met it, apps/gateway/test/Fuzz.test.ts),
 * which would end the whole process. A throw there closes only that connection, with 1011.
 */
const guardReceiver = (ws: WebSocket): void => {
  const receiver = (ws as unknown as { _receiver?: Receiver })._receiver
  const startLoop = receiver?.startLoop
  if (receiver === undefined || typeof startLoop !== "function") return
  let failed = false
  receiver.startLoop = function (cb) {
    if (failed) return
    try {
      startLoop.call(this, cb)
    } catch (error) {
      failed = true
      this._loop = false
      Effect.runFork(
        Effect.logError("a WebSocket frame could not be read; connection closed", { error: String(error) }),
      )
      ws.close(CloseCode.InternalError, "a frame could not be read")
      setTimeout(() => ws.terminate(), 1_000).unref()
    }
  }
}

export class GatewayServer extends Context.Service<GatewayServer, GatewayServerShape>()(
  "holdover/GatewayServer",
) {
  static readonly layer = Layer.effect(
    GatewayServer,
    Effect.gen(function* () {
      const config = yield* GatewayConfig
      const auth = yield* Auth
      const state = yield* GatewayState
      const metrics = yield* Metrics
      const queue = yield* RecipientQueue
      const api = yield* makeHttpApi
      const connections = yield* FiberSet.make<unknown, unknown>()
      const runInSet = yield* FiberSet.runtime(connections)<
        GatewayConfig | Auth | RecipientQueue | Metrics | Limits | Publisher
      >()

      const wss = new WebSocketServer({
        noServer: true,
        maxPayload: config.maxFrameBytes,
        clientTracking: true,
        handleProtocols: (protocols) => (protocols.has(subprotocol) ? subprotocol : false),
        // Small per-connection memory: no context takeover, a bounded window, small frames sent as they are.
        perMessageDeflate: config.compression
          ? {
              threshold: config.compressionThreshold,
              serverNoContextTakeover: true,
              clientNoContextTakeover: true,
              serverMaxWindowBits: 11,
              concurrencyLimit: 8,
              zlibDeflateOptions: { memLevel: 7 },
            }
          : false,
      })
      wss.on("error", (error) =>
        Effect.runFork(Effect.logError("websocket server error", { error: error.message })),
      )

      const originAllowed = (origin: string | undefined) =>
        origin === undefined ||
        config.allowedOrigins.includes("*") ||
        config.allowedOrigins.includes(origin.replace(/\/$/, ""))

      const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
        // A module-level listener: a closure made here would keep the request alive with the socket.
        socket.on("error", ignoreError)
        if (requestPath(request.url) !== "/v1/ws")
          return reject(socket, "NOT_FOUND", "no route for this upgrade")
        if (state.draining) return reject(socket, "QUEUE_UNAVAILABLE", "this gateway node is draining")
        const offered = (request.headers["sec-websocket-protocol"] ?? "").split(",").map((p) => p.trim())
        const refuse = !offered.includes(subprotocol)
          ? new Closed({ code: CloseCode.ProtocolViolation, reason: `offer the subprotocol ${subprotocol}` })
          : !originAllowed(request.headers.origin)
            ? new Closed({ code: CloseCode.Forbidden, reason: "origin not allowed" })
            : undefined
        const token = bearer(request.headers.authorization)
        const start = (preAuth: Exit.Exit<Principal, AuthError> | undefined) =>
          wss.handleUpgrade(request, socket, head, (ws) => {
            guardReceiver(ws)
            runInSet(runConnection({ ws, socket: socket as Socket, preAuth, refuse }))
          })
        if (token === undefined || refuse) return start(undefined)
        Effect.runPromise(Effect.exit(auth.verify(token))).then(start, () => start(undefined))
      }

      const server = createServer({ keepAliveTimeout: 5_000 }, api.handle)
      server.on("upgrade", onUpgrade)
      server.on("clientError", (error: Error & { code?: string; rawPacket?: Buffer }, socket: Duplex) => {
        // A reset or timed-out peer is gone: nothing to answer.
        if (error.code === "ECONNRESET" || error.code === "ERR_HTTP_REQUEST_TIMEOUT")
          return void socket.destroy()
        Effect.runFork(
          Effect.logDebug("refused a request the HTTP parser could not read", {
            code: error.code,
            start: error.rawPacket?.subarray(0, 60).toString("latin1"),
          }),
        )
        reject(
          socket,
          "INVALID_MESSAGE",
          parserRefusal(error),
          error.rawPacket?.subarray(0, 5).toString("latin1") === "HEAD ",
        )
      })
      yield* Effect.callback<void, ListenError>((resume) => {
        server.once("error", (error) => resume(Effect.fail(listenError(error, config.host, config.port))))
        server.listen(config.port, config.host, () => resume(Effect.void))
      })
      const address = server.address()
      const port = typeof address === "object" && address ? address.port : config.port

      const sample = () => {
        metrics.natsConnected.set(queue.isAvailable() ? 1 : 0)
        metrics.breakerOpen.set(breakerLevel[queue.breakerState()])
        metrics.pendingPublishes.set(queue.pendingPublishes())
        metrics.jetStreamApiQueue.set(queue.apiQueued())
      }
      sample()
      const gauge = setInterval(sample, 1_000)
      gauge.unref()

      yield* Effect.addFinalizer(() =>
        Effect.gen(function* () {
          clearInterval(gauge)
          state.draining = true
          yield* Effect.logInfo("draining", { connections: wss.clients.size })
          server.close()
          // Interrupting a connection closes its socket with 1012 and ends its session.
          yield* FiberSet.clear(connections).pipe(
            Effect.timeoutOrElse({ duration: config.drainTimeoutMs, orElse: () => Effect.void }),
          )
          for (const ws of wss.clients) ws.terminate()
          wss.close()
          server.closeAllConnections()
          yield* Effect.logInfo("drained")
        }),
      )
      yield* Effect.logInfo(`Holdover gateway listening on http://${config.host}:${port}`, { port })
      return GatewayServer.of({ port })
    }),
  )
}
