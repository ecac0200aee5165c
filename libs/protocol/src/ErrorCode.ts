// The contract's error codes (PROTOCOL.md), with the HTTP status each maps to. Errors that
// reach a client — as an HTTP body `{"error":{code,message,path?}}` or an `error` frame — carry
// one of these codes.
import { Schema } from "effect"

export const errorStatus = {
  INVALID_MESSAGE: 400,
  INVALID_FRAME: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  MESSAGE_TOO_LARGE: 413,
  QUEUE_FULL: 429,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  QUEUE_UNAVAILABLE: 503,
} as const

export type ErrorCode = keyof typeof errorStatus
export const ErrorCode = Schema.Literals(Object.keys(errorStatus) as Array<ErrorCode>)

export const ErrorBody = Schema.Struct({
  code: ErrorCode,
  message: Schema.String,
  path: Schema.optionalKey(Schema.String),
})
export type ErrorBody = typeof ErrorBody.Type

export const ErrorResponse = Schema.Struct({ error: ErrorBody })
export type ErrorResponse = typeof ErrorResponse.Type
