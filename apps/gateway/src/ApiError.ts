// How failures reach producers and clients: every error becomes the contract's
// `{"error":{code,message,path?}}` body with its HTTP status, or an `error` frame.
import { errorStatus, type ErrorBody, type ErrorCode } from "@holdover/protocol"
import type { QueueError } from "@holdover/queue"
import { Schema, SchemaIssue } from "effect"
import type { AuthError } from "./Auth.ts"

/** A gateway-level failure with a contract code (bad JSON, schema violations, unknown routes…). */
export class ApiError extends Schema.TaggedError<ApiError>()("ApiError", {
  code: Schema.String,
  message: Schema.String,
  path: Schema.optionalKey(Schema.String),
  /** Seconds, for a Retry-After header. */
  retryAfter: Schema.optionalKey(Schema.Number),
  /** The methods a path takes, for the Allow header of a 405. */
  allow: Schema.optionalKey(Schema.String),
}) {}

export const apiError = (code: ErrorCode, message: string, path?: string, retryAfter?: number): ApiError =>
  new ApiError({
    code,
    message,
    ...(path === undefined ? {} : { path }),
    ...(retryAfter === undefined ? {} : { retryAfter }),
  })

/** This node's event loop is behind (GatewayState): producer work is refused until it catches up. */
export const nodeOverloaded = apiError(
  "QUEUE_UNAVAILABLE",
  "this gateway node is overloaded; retry shortly (or on another node)",
  undefined,
  1,
)

/** Seconds a client should wait before retrying, when the error says so. */
export const retryAfterOf = (error: AnyError): number | undefined =>
  error._tag === "ApiError"
    ? error.retryAfter
    : error._tag === "QueueError" && error.reason._tag === "Unavailable"
      ? 1
      : undefined

export type AnyError = ApiError | AuthError | QueueError

export const toErrorBody = (error: AnyError): ErrorBody => {
  switch (error._tag) {
    case "QueueError":
      return error.reason._tag === "InvalidMessage"
        ? { code: error.code, message: error.message, path: error.reason.path }
        : { code: error.code, message: error.message }
    case "AuthError":
      return { code: error.code, message: error.message }
    case "ApiError":
      return error.path === undefined
        ? { code: error.code as ErrorCode, message: error.message }
        : { code: error.code as ErrorCode, message: error.message, path: error.path }
  }
}

export const statusOf = (body: ErrorBody): number => errorStatus[body.code] ?? 500

/** A schema violation as INVALID_MESSAGE (or another code) with the first failing path. */
export const fromSchemaError = (code: ErrorCode, error: Schema.SchemaError, pathPrefix = ""): ApiError => {
  const first = SchemaIssue.makeFormatterStandardSchemaV1()(error.issue).issues[0]
  const path = [
    pathPrefix,
    ...(first?.path ?? []).map((part) => String(typeof part === "object" && part !== null ? part.key : part)),
  ]
    .filter((part) => part !== "")
    .join(".")
  return apiError(
    code,
    first ? `${path ? `${path}: ` : ""}${first.message}` : error.message,
    path || undefined,
  )
}

const reasonPhrase: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  503: "Service Unavailable",
}

/**
 * A complete HTTP/1.1 response with the contract's error body, for the places that answer on the
 * raw socket (a refused WebSocket upgrade, a request Node's parser rejected); the connection
 * closes after it. An answer to HEAD carries the headers only.
 */
export const rawErrorResponse = (code: ErrorCode, message: string, head = false): string => {
  const status = errorStatus[code]
  const body = JSON.stringify({ error: { code, message } })
  return [
    `HTTP/1.1 ${status} ${reasonPhrase[status] ?? "Error"}`,
    "Content-Type: application/json; charset=utf-8",
    `Content-Length: ${Buffer.byteLength(body)}`,
    "Connection: close",
    "",
    head ? "" : body,
  ].join("\r\n")
}
