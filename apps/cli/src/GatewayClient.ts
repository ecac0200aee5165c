// HTTP calls to one gateway (PROTOCOL.md "HTTP") with the bearer token a command needs, and
// the translation of every failure into a CliFailure: no answer → Unreachable (exit 3), a
// contract error body → Refused with its code (exits 4/5/6), anything else → Unexpected. A 429
// RATE_LIMITED (refused before anything was queued) is asked again after its Retry-After, up to
// ten times, so `send` of a large file keeps to the producer's rate instead of stopping.
// Built per command by `GatewayClient.layer(need)`; it holds no connection (fetch pools them).
import type { MessageRequest, PriorityCounts, SendResult } from "@holdover/protocol"
import { Context, Effect, Layer } from "effect"
import { bearerFor, type Need } from "./Credentials.ts"
import { CliFailure, refused, unexpected } from "./Failure.ts"
import { GatewayUrl } from "./Settings.ts"

export interface ContractError {
  readonly code: Parameters<typeof refused>[0]
  readonly message: string
  readonly path?: string
}

export type BatchResult = SendResult | { readonly error: ContractError }

export interface QueueInfo {
  readonly recipient: string
  readonly depth: PriorityCounts
  readonly online: boolean
}

export interface StreamInfo {
  readonly priority: string
  readonly stream: string
  readonly messages: number
  readonly bytes: number
  readonly consumers: number
  readonly replicas: number
  readonly policy: { readonly maxAgeMs: number; readonly capacity: number; readonly overflow: string }
  readonly cluster?: {
    readonly leader?: string
    readonly replicas: ReadonlyArray<{ name: string; current: boolean }>
  }
}

export interface StatusInfo {
  readonly gateway: { readonly ready: boolean; readonly draining: boolean; readonly version: string }
  readonly nats: { readonly connected: boolean; readonly version: string }
  readonly streams: ReadonlyArray<StreamInfo>
}

const requestTimeoutMs = 60_000

const isContractError = (body: unknown): body is { error: ContractError } =>
  typeof body === "object" &&
  body !== null &&
  "error" in body &&
  typeof body.error === "object" &&
  body.error !== null &&
  "code" in body.error &&
  typeof body.error.code === "string"

const causeText = (error: unknown): string => {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error
  const text = cause instanceof Error ? cause.message : String(cause)
  // fetch refuses a few well-known ports (1, 9, 25, …) outright; say so plainly.
  return text === "bad port" ? "fetch refuses to connect to this port" : text
}

/** A 429 RATE_LIMITED is refused before any work is done: asked again after its Retry-After. */
const maxRateLimitedRetries = 10
const maxRetryAfterMs = 30_000

/** The wait a 429 RATE_LIMITED asks for (Retry-After in seconds), or undefined for any other answer. */
const rateLimitWait = (response: Response, body: unknown): number | undefined => {
  if (response.status !== 429 || !isContractError(body) || body.error.code !== "RATE_LIMITED")
    return undefined
  const seconds = Number(response.headers.get("retry-after") ?? "1")
  return Math.min(maxRetryAfterMs, Math.max(0, Number.isFinite(seconds) ? seconds : 1) * 1000)
}

export const makeGatewayClient = (url: string, token: string) => {
  const request = (
    method: string,
    path: string,
    body?: unknown,
    attempt = 0,
  ): Effect.Effect<{ status: number; body: unknown }, CliFailure> =>
    Effect.gen(function* () {
      const response = yield* Effect.tryPromise({
        try: (signal) =>
          fetch(`${url}${path}`, {
            method,
            headers: {
              Authorization: `Bearer ${token}`,
              ...(body === undefined ? {} : { "Content-Type": "application/json" }),
            },
            ...(body === undefined ? {} : { body: JSON.stringify(body) }),
            signal: AbortSignal.any([signal, AbortSignal.timeout(requestTimeoutMs)]),
          }),
        catch: (error) =>
          new CliFailure({
            reason: { _tag: "Unreachable", url },
            message: `cannot reach the gateway at ${url}: ${causeText(error)}`,
          }),
      })
      const text = yield* Effect.tryPromise({
        try: () => response.text(),
        catch: (error) => unexpected(`${method} ${path}: reading the answer failed: ${causeText(error)}`),
      })
      let parsed: unknown
      try {
        parsed = JSON.parse(text)
      } catch {
        return yield* unexpected(
          `${method} ${path}: HTTP ${response.status} with a non-JSON body: ${text.slice(0, 200)}`,
        )
      }
      const wait = rateLimitWait(response, parsed)
      if (wait !== undefined && attempt < maxRateLimitedRetries)
        return yield* Effect.andThen(Effect.sleep(wait), request(method, path, body, attempt + 1))
      if (isContractError(parsed))
        return yield* refused(parsed.error.code, parsed.error.message, parsed.error.path)
      if (!response.ok)
        return yield* unexpected(`${method} ${path}: HTTP ${response.status}: ${text.slice(0, 200)}`)
      return { status: response.status, body: parsed }
    })

  const recipientPath = (recipient: string) => `/v1/recipients/${encodeURIComponent(recipient)}/queue`

  return {
    url,
    token,
    webSocketUrl: `${url.replace(/^http/, "ws")}/v1/ws`,
    send: (message: MessageRequest) =>
      request("POST", "/v1/messages", message).pipe(Effect.map((r) => r.body as SendResult)),
    sendBatch: (messages: ReadonlyArray<unknown>) =>
      request("POST", "/v1/messages/batch", { messages }).pipe(
        Effect.map((r) => (r.body as { results: ReadonlyArray<BatchResult> }).results),
      ),
    queue: (recipient: string) =>
      request("GET", recipientPath(recipient)).pipe(Effect.map((r) => r.body as QueueInfo)),
    purge: (recipient: string) =>
      request("DELETE", recipientPath(recipient)).pipe(
        Effect.map((r) => (r.body as { purged: number }).purged),
      ),
    status: () => request("GET", "/v1/status").pipe(Effect.map((r) => r.body as StatusInfo)),
  }
}

export class GatewayClient extends Context.Service<GatewayClient, ReturnType<typeof makeGatewayClient>>()(
  "holdover/cli/GatewayClient",
) {
  /** A client for the gateway at `--url`, with a token that has what `need` asks for. */
  static readonly layer = (need: Need) =>
    Layer.effect(
      GatewayClient,
      Effect.gen(function* () {
        const url = yield* GatewayUrl
        const token = yield* bearerFor(need)
        return GatewayClient.of(makeGatewayClient(url, token))
      }),
    )
}
