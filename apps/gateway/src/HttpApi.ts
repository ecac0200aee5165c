// The HTTP side of a gateway node (PROTOCOL.md "HTTP"): producer calls, queue inspection and
// purge, health, readiness, metrics, the OpenAPI document and, in development, the demo page.
// Each request runs as an Effect; every failure is answered with the contract's error body.
import type { IncomingMessage, ServerResponse } from "node:http"
import { BatchRequest, MessageRequest, type ErrorBody } from "@holdover/protocol"
import { RecipientQueue, type EnqueueResult, type QueueError } from "@holdover/queue"
import { Context, Effect, Schema } from "effect"
import {
  ApiError,
  apiError,
  fromSchemaError,
  nodeOverloaded,
  retryAfterOf,
  statusOf,
  toErrorBody,
  type AnyError,
} from "./ApiError.ts"
import { Auth, mayPublishTo, requireScope, type Principal } from "./Auth.ts"
import { DemoPage } from "./DemoPage.ts"
import { GatewayState } from "./GatewayState.ts"
import { landingPage } from "./LandingPage.ts"
import { Limits } from "./Limits.ts"
import { Metrics } from "./Metrics.ts"
import { openApiDocument } from "./OpenApi.ts"

const decodeMessage = Schema.decodeUnknownExit(MessageRequest)
const gatewayVersion = "0.1.0"
const decodeBatch = Schema.decodeUnknownExit(BatchRequest)

/** Recipients of one batch whose messages are published at once (each recipient's in order). */
const batchConcurrency = 32

export const resultBody = (result: EnqueueResult) =>
  result._tag === "Queued"
    ? { id: result.id, status: "queued" as const, priority: result.priority, expiresAt: result.expiresAt }
    : { id: result.id, status: "dropped" as const, reason: "QUEUE_FULL" as const }

interface Reply {
  readonly status: number
  readonly body: unknown
  readonly headers?: Record<string, string>
}

const json = (status: number, body: unknown, headers?: Record<string, string>): Reply =>
  headers ? { status, body, headers } : { status, body }

const errorReply = (error: AnyError): Reply => {
  const body = toErrorBody(error)
  const status = statusOf(body)
  const retryAfter = retryAfterOf(error) ?? (status === 503 ? 1 : undefined)
  const headers: Record<string, string> = {}
  if (retryAfter !== undefined) headers["Retry-After"] = String(retryAfter)
  if (error._tag === "ApiError" && error.allow !== undefined) headers["Allow"] = error.allow
  return json(status, { error: body }, Object.keys(headers).length > 0 ? headers : undefined)
}

const readBody = (request: IncomingMessage, limit: number) =>
  Effect.callback<Buffer, ReturnType<typeof apiError>>((resume) => {
    const chunks: Array<Buffer> = []
    let size = 0
    request.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        resume(Effect.fail(apiError("MESSAGE_TOO_LARGE", `request body over ${limit} bytes`)))
        request.resume()
        return
      }
      chunks.push(chunk)
    })
    request.on("end", () => resume(Effect.succeed(Buffer.concat(chunks))))
    request.on("error", (error) =>
      resume(Effect.fail(apiError("INVALID_MESSAGE", `cannot read body: ${error.message}`))),
    )
  })

const parseJson = (buffer: Buffer) =>
  Effect.try({
    try: () => JSON.parse(buffer.toString("utf8")) as unknown,
    catch: () => apiError("INVALID_MESSAGE", "the body is not valid JSON"),
  })

/**
 * The path of a request target without its query: total, whatever the client sent. Origin-form
 * targets are taken as they are (`//`, `/\\` or `/%zz` are paths that simply match no route);
 * an absolute-form target (`http://host/path`) gives its path; anything else is returned whole.
 */
export const requestPath = (target: string | undefined): string => {
  const raw = target ?? "/"
  if (!raw.startsWith("/")) {
    const absolute = URL.parse(raw)
    if (absolute !== null) return absolute.pathname
  }
  const end = raw.search(/[?#]/)
  return end === -1 ? raw : raw.slice(0, end)
}

const readOnly = ["GET", "HEAD"]
const queuePath = /^\/v1\/recipients\/([^/]+)\/queue$/

/** The methods a known path takes (405 with `Allow` for the others); undefined for unknown paths. */
const methodsOf = (path: string): ReadonlyArray<string> | undefined => {
  if (path === "/v1/messages" || path === "/v1/messages/batch") return ["POST"]
  if (queuePath.test(path)) return [...readOnly, "DELETE"]
  if (["/healthz", "/readyz", "/metrics", "/v1/openapi.json", "/v1/status"].includes(path)) return readOnly
  if (path === "/" || path === "/demo" || path.startsWith("/demo/")) return readOnly
  return undefined
}

export const bearer = (header: string | undefined): string | undefined => {
  const match = /^Bearer\s+(.+)$/i.exec(header ?? "")
  return match?.[1]?.trim()
}

export class HttpApi extends Context.Service<
  HttpApi,
  { readonly handle: (request: IncomingMessage, response: ServerResponse) => void }
>()("holdover/HttpApi") {}

export const makeHttpApi = Effect.gen(function* () {
  const queue = yield* RecipientQueue
  const auth = yield* Auth
  const metrics = yield* Metrics
  const state = yield* GatewayState
  const demo = yield* DemoPage
  const limits = yield* Limits
  const context = yield* Effect.context<never>()
  const run = Effect.runForkWith(context)
  const maxMessageBytes = state.maxMessageBytes
  const landing = landingPage(demo.enabled)

  const authenticate = (request: IncomingMessage): Effect.Effect<Principal, AnyError> =>
    Effect.suspend((): Effect.Effect<Principal, AnyError> => {
      const token = bearer(request.headers.authorization)
      return token === undefined
        ? Effect.fail(apiError("UNAUTHORIZED", "missing Authorization: Bearer token"))
        : auth.verify(token)
    })

  const enqueueOne = (principal: Principal, input: unknown, path: string) =>
    Effect.gen(function* () {
      const decoded = decodeMessage(input)
      if (decoded._tag === "Failure") {
        const cause = decoded.cause
        const failure = cause.reasons.find((reason) => reason._tag === "Fail")
        return yield* failure && failure._tag === "Fail"
          ? Effect.fail(fromSchemaError("INVALID_MESSAGE", failure.error, path))
          : Effect.fail(apiError("INVALID_MESSAGE", "invalid message", path || undefined))
      }
      const message = decoded.value
      yield* mayPublishTo(principal, message.to)
      const result = yield* queue
        .enqueue(message.to, message.payload, {
          priority: message.priority,
          ttlMs: message.ttlMs,
          id: message.id,
          producer: principal.sub,
        })
        .pipe(
          // The queue names the field (`ttlMs`); in a batch it is `messages.<i>.ttlMs`.
          Effect.mapError((error): AnyError =>
            error.reason._tag === "InvalidMessage" && path !== ""
              ? apiError("INVALID_MESSAGE", error.message, `${path}.${error.reason.path}`)
              : error,
          ),
        )
      if (result._tag === "Queued" && !result.duplicate) metrics.enqueued.inc({ priority: result.priority })
      if (result._tag === "Dropped") metrics.dropped.inc({ priority: result.priority })
      return result
    }).pipe(
      Effect.tapError((error: AnyError) =>
        Effect.sync(() => {
          metrics.rejected.inc({ code: toErrorBody(error).code })
          if (error._tag === "QueueError" && error.reason._tag === "Overloaded") metrics.shed.inc()
        }),
      ),
    )

  const route = (request: IncomingMessage): Effect.Effect<Reply, AnyError> => {
    const method = request.method ?? "GET"
    const path = requestPath(request.url)
    const allowed = methodsOf(path)
    if (allowed !== undefined && !allowed.includes(method))
      return Effect.fail(
        new ApiError({
          code: "METHOD_NOT_ALLOWED",
          message: `${method} is not allowed on ${path}; use ${allowed.join(" or ")}`,
          allow: allowed.join(", "),
        }),
      )
    if (path === "/healthz") return Effect.succeed(json(200, { status: "ok" }))
    if (path === "/readyz") {
      const ready = state.isReady()
      return Effect.succeed(
        json(ready ? 200 : 503, {
          status: ready ? "ready" : state.draining ? "draining" : "not ready",
          nats: queue.isAvailable(),
        }),
      )
    }
    if (path === "/metrics")
      return Effect.promise(() => metrics.registry.metrics()).pipe(
        Effect.map((text) => json(200, text, { "Content-Type": metrics.registry.contentType })),
      )
    if (path === "/v1/openapi.json") return Effect.succeed(json(200, openApiDocument()))
    if (path === "/demo" || path.startsWith("/demo/")) return demo.serve(path)
    if (path === "/") return Effect.succeed(landing)

    if (path === "/v1/messages" || path === "/v1/messages/batch") {
      const batch = path.endsWith("/batch")
      // Refused before anything costs CPU: no body read, no token check (see GatewayState).
      if (state.isOverloaded()) {
        metrics.shed.inc()
        metrics.rejected.inc({ code: "QUEUE_UNAVAILABLE" })
        return Effect.fail(nodeOverloaded)
      }
      return Effect.gen(function* () {
        const principal = yield* authenticate(request)
        yield* requireScope(principal, "publish")
        const body = yield* readBody(
          request,
          batch ? 1000 * (maxMessageBytes + 1024) : maxMessageBytes + 16 * 1024,
        )
        const input = yield* parseJson(body)
        if (!batch) {
          yield* limits.publish(principal.sub, 1)
          return json(202, resultBody(yield* enqueueOne(principal, input, "")))
        }
        const decoded = decodeBatch(input)
        if (decoded._tag === "Failure")
          return yield* Effect.fail(
            apiError("INVALID_MESSAGE", 'the body must be {"messages":[…up to 1000…]}', "messages"),
          )
        yield* limits.publish(principal.sub, decoded.value.messages.length)
        // One recipient's messages are published one after another, in batch order (a retried
        // publish must not overtake the next: FIFO); different recipients' go on concurrently.
        const messages = decoded.value.messages
        const byRecipient = new Map<unknown, Array<number>>()
        messages.forEach((message, i) => {
          const to = typeof message === "object" && message !== null && "to" in message ? message.to : i
          const key = typeof to === "string" ? to : `#${i}`
          const group = byRecipient.get(key)
          if (group) group.push(i)
          else byRecipient.set(key, [i])
        })
        const results: Array<ReturnType<typeof resultBody> | { error: ErrorBody }> = []
        yield* Effect.forEach(
          byRecipient.values(),
          (indices) =>
            Effect.forEach(
              indices,
              (i) =>
                enqueueOne(principal, messages[i], `messages.${i}`).pipe(
                  Effect.map(resultBody),
                  Effect.catch((error: AnyError) =>
                    Effect.succeed({ error: toErrorBody(error) as ErrorBody }),
                  ),
                  Effect.map((result) => void (results[i] = result)),
                ),
              { discard: true },
            ),
          { concurrency: batchConcurrency, discard: true },
        )
        return json(200, { results })
      })
    }

    if (path === "/v1/status")
      return Effect.gen(function* () {
        const principal = yield* authenticate(request)
        yield* requireScope(principal, "admin")
        const nats = yield* queue.status()
        return json(200, {
          gateway: { ready: state.isReady(), draining: state.draining, version: gatewayVersion },
          nats: { connected: nats.connected, version: nats.serverVersion },
          streams: nats.streams,
        })
      })

    const queueRoute = queuePath.exec(path)
    if (queueRoute) {
      let recipient: string
      try {
        recipient = decodeURIComponent(queueRoute[1] ?? "")
      } catch {
        return Effect.fail(
          apiError("INVALID_MESSAGE", "the recipient id is not valid percent-encoding", "recipient"),
        )
      }
      return Effect.gen(function* () {
        const principal = yield* authenticate(request)
        yield* requireScope(principal, "admin")
        if (method !== "DELETE") {
          const [depth, online] = yield* Effect.all([queue.depth(recipient), queue.isOnline(recipient)], {
            concurrency: 2,
          })
          return json(200, { recipient, depth, online })
        }
        return json(200, { purged: yield* queue.purge(recipient) })
      })
    }
    return Effect.fail(apiError("NOT_FOUND", `no route for ${method} ${path}`))
  }

  const send = (request: IncomingMessage, response: ServerResponse, reply: Reply) => {
    if (response.headersSent) return
    // A body nobody read (a route that takes none, a refusal before reading) is discarded, so
    // that the connection's next request is parsed from where it starts.
    if (!request.complete) request.resume()
    const text = typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body)
    response.writeHead(reply.status, {
      "Content-Type": "application/json; charset=utf-8",
      "Content-Length": Buffer.byteLength(text),
      ...reply.headers,
    })
    response.end(text)
  }

  const handle = (request: IncomingMessage, response: ServerResponse) => {
    run(
      // suspend: whatever route throws becomes a defect answered with a 500 below, never a crash.
      Effect.suspend(() => route(request)).pipe(
        Effect.catch((error: AnyError | QueueError) => Effect.succeed(errorReply(error))),
        Effect.catchDefect((defect) =>
          Effect.logError("request failed", { defect: String(defect) }).pipe(
            Effect.as(json(500, { error: { code: "INTERNAL", message: "internal error" } })),
          ),
        ),
        Effect.map((reply) => send(request, response, reply)),
      ),
    )
  }
  return HttpApi.of({ handle })
})
