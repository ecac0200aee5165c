// The HTTP side of a gateway node (PROTOCOL.md "HTTP"): producer calls, queue inspection and
// purge, health, readiness, metrics, the OpenAPI document, a landing page at `/` and, in
// development, the demo page.
// The routes are one table (methods, path pattern, scope, handler): a path no route matches is
// 404, a method none of its routes takes is 405 with `Allow`. Producer routes hand their body to
// the Publisher. Each request runs as an Effect; every failure is answered with the contract's
// error body.
import type { IncomingMessage, ServerResponse } from "node:http"
import { RecipientQueue, type QueueError } from "@holdover/queue"
import { Context, Effect } from "effect"
import { ApiError, apiError, retryAfterOf, statusOf, toErrorBody, type AnyError } from "./ApiError.ts"
import { Auth, requireScope, type Principal } from "./Auth.ts"
import { DemoPage } from "./DemoPage.ts"
import { GatewayState } from "./GatewayState.ts"
import { landingPage } from "./LandingPage.ts"
import { Metrics } from "./Metrics.ts"
import { openApiDocument } from "./OpenApi.ts"
import { Publisher } from "./Publisher.ts"

const gatewayVersion = "0.1.0"

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
const queuePath = /^\/v1\/recipients\/(?<recipient>[^/]+)\/queue$/

interface RouteInput {
  readonly request: IncomingMessage
  readonly path: string
  /** The path pattern's named groups, percent-decoded. */
  readonly params: Readonly<Record<string, string>>
}

/** One entry of the route table: the methods it takes on the paths its pattern matches. */
interface Route {
  readonly methods: ReadonlyArray<string>
  readonly path: string | RegExp
  readonly run: (input: RouteInput) => Effect.Effect<Reply, AnyError>
}

const paramsOf = (pattern: string | RegExp, path: string): Record<string, string> | undefined => {
  if (typeof pattern === "string") return pattern === path ? {} : undefined
  const match = pattern.exec(path)
  return match ? { ...match.groups } : undefined
}

/** A path parameter that is not valid percent-encoding is the request's fault, named by the parameter. */
const decodeParams = (raw: Record<string, string>) =>
  Effect.forEach(Object.entries(raw), ([name, value]) =>
    Effect.try({
      try: () => [name, decodeURIComponent(value)] as const,
      catch: () => apiError("INVALID_MESSAGE", `the ${name} id is not valid percent-encoding`, name),
    }),
  ).pipe(Effect.map((entries) => Object.fromEntries(entries) as Readonly<Record<string, string>>))

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
  const landing = landingPage(demo.enabled)
  const publisher = yield* Publisher
  const context = yield* Effect.context<never>()
  const run = Effect.runForkWith(context)
  const maxMessageBytes = state.maxMessageBytes

  const authenticate = (request: IncomingMessage): Effect.Effect<Principal, AnyError> =>
    Effect.suspend((): Effect.Effect<Principal, AnyError> => {
      const token = bearer(request.headers.authorization)
      return token === undefined
        ? Effect.fail(apiError("UNAUTHORIZED", "missing Authorization: Bearer token"))
        : auth.verify(token)
    })

  /** A route open to anyone. */
  const open = (
    methods: ReadonlyArray<string>,
    path: Route["path"],
    handle: (path: string) => Effect.Effect<Reply, AnyError>,
  ): Route => ({ methods, path, run: ({ path }) => handle(path) })

  /**
   * A route that needs a token with `scope`. Producer routes (`publish`) are refused first while
   * the node is saturated — before their token is checked or their body read (GatewayState).
   */
  const guarded = (
    scope: "publish" | "admin",
    methods: ReadonlyArray<string>,
    path: Route["path"],
    handle: (input: RouteInput & { readonly principal: Principal }) => Effect.Effect<Reply, AnyError>,
  ): Route => ({
    methods,
    path,
    run: (input) =>
      Effect.gen(function* () {
        if (scope === "publish") yield* publisher.shed
        const principal = yield* authenticate(input.request)
        yield* scope === "publish" ? publisher.authorize(principal) : requireScope(principal, "admin")
        return yield* handle({ ...input, principal })
      }),
  })

  const readBodyJson = (request: IncomingMessage, limit: number) =>
    readBody(request, limit).pipe(Effect.flatMap(parseJson))

  const routes: ReadonlyArray<Route> = [
    open(readOnly, "/healthz", () => Effect.succeed(json(200, { status: "ok" }))),
    open(readOnly, "/readyz", () => {
      const ready = state.isReady()
      return Effect.succeed(
        json(ready ? 200 : 503, {
          status: ready ? "ready" : state.draining ? "draining" : "not ready",
          nats: queue.isAvailable(),
        }),
      )
    }),
    open(readOnly, "/metrics", () =>
      Effect.promise(() => metrics.registry.metrics()).pipe(
        Effect.map((text) => json(200, text, { "Content-Type": metrics.registry.contentType })),
      ),
    ),
    open(readOnly, "/v1/openapi.json", () => Effect.succeed(json(200, openApiDocument()))),
    open(readOnly, "/", () => Effect.succeed(landing)),
    open(readOnly, /^\/demo(?:\/.*)?$/s, (path) => demo.serve(path)),
    guarded("publish", ["POST"], "/v1/messages", ({ request, principal }) =>
      readBodyJson(request, maxMessageBytes + 16 * 1024).pipe(
        Effect.flatMap((input) => publisher.publish(principal, input)),
        Effect.map((result) => json(202, result)),
      ),
    ),
    guarded("publish", ["POST"], "/v1/messages/batch", ({ request, principal }) =>
      readBodyJson(request, 1000 * (maxMessageBytes + 1024)).pipe(
        Effect.flatMap((input) => publisher.publishBatch(principal, input)),
        Effect.map((results) => json(200, { results })),
      ),
    ),
    guarded("admin", readOnly, "/v1/status", () =>
      queue.status().pipe(
        Effect.map((nats) =>
          json(200, {
            gateway: { ready: state.isReady(), draining: state.draining, version: gatewayVersion },
            nats: { connected: nats.connected, version: nats.serverVersion },
            streams: nats.streams,
          }),
        ),
      ),
    ),
    guarded("admin", readOnly, queuePath, ({ params: { recipient = "" } }) =>
      Effect.all([queue.depth(recipient), queue.isOnline(recipient)], { concurrency: 2 }).pipe(
        Effect.map(([depth, online]) => json(200, { recipient, depth, online })),
      ),
    ),
    guarded("admin", ["DELETE"], queuePath, ({ params: { recipient = "" } }) =>
      queue.purge(recipient).pipe(Effect.map((purged) => json(200, { purged }))),
    ),
  ]

  const route = (request: IncomingMessage): Effect.Effect<Reply, AnyError> => {
    const method = request.method ?? "GET"
    const path = requestPath(request.url)
    const matching = routes.flatMap((route) => {
      const params = paramsOf(route.path, path)
      return params === undefined ? [] : [{ route, params }]
    })
    const chosen = matching.find(({ route }) => route.methods.includes(method))
    if (chosen !== undefined)
      return decodeParams(chosen.params).pipe(
        Effect.flatMap((params) => chosen.route.run({ request, path, params })),
      )
    if (matching.length === 0) return Effect.fail(apiError("NOT_FOUND", `no route for ${method} ${path}`))
    const allowed = matching.flatMap(({ route }) => route.methods)
    return Effect.fail(
      new ApiError({
        code: "METHOD_NOT_ALLOWED",
        message: `${method} is not allowed on ${path}; use ${allowed.join(" or ")}`,
        allow: allowed.join(", "),
      }),
    )
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
