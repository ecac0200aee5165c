// WebSocket frames (text, one JSON object each), both directions.
import { Schema } from "effect"
import { ErrorCode } from "./ErrorCode.ts"
import { MessageId, TtlMs } from "./Message.ts"
import { Priority, PriorityCounts } from "./Priority.ts"
import { RecipientId } from "./Recipient.ts"

// Client → server
export const AuthFrame = Schema.Struct({ type: Schema.Literal("auth"), token: Schema.String })
export const AckFrame = Schema.Struct({
  type: Schema.Literal("ack"),
  ids: Schema.Array(Schema.String).check(Schema.isMaxLength(10_000)),
})
export const SendFrame = Schema.Struct({
  type: Schema.Literal("send"),
  ref: Schema.optionalKey(Schema.String),
  to: RecipientId,
  priority: Schema.optionalKey(Priority),
  ttlMs: Schema.optionalKey(TtlMs),
  id: Schema.optionalKey(MessageId),
  payload: Schema.Unknown,
})
export const PingFrame = Schema.Struct({ type: Schema.Literal("ping") })

export const ClientFrame = Schema.Union([AuthFrame, AckFrame, SendFrame, PingFrame])
export type ClientFrame = typeof ClientFrame.Type

// Server → client
export const WelcomeFrame = Schema.Struct({
  type: Schema.Literal("welcome"),
  session: Schema.String,
  recipient: Schema.String,
  pending: PriorityCounts,
  maxInFlight: Schema.Number,
  heartbeatMs: Schema.Number,
})
export const MessageFrame = Schema.Struct({
  type: Schema.Literal("message"),
  id: Schema.String,
  priority: Priority,
  payload: Schema.Unknown,
  enqueuedAt: Schema.String,
  expiresAt: Schema.String,
  redelivered: Schema.Boolean,
})
export const SentFrame = Schema.Struct({
  type: Schema.Literal("sent"),
  ref: Schema.optionalKey(Schema.String),
  id: Schema.String,
  status: Schema.Literals(["queued", "dropped"]),
})
export const ErrorFrame = Schema.Struct({
  type: Schema.Literal("error"),
  code: ErrorCode,
  message: Schema.String,
  ref: Schema.optionalKey(Schema.String),
})
export const PongFrame = Schema.Struct({ type: Schema.Literal("pong") })

export const ServerFrame = Schema.Union([WelcomeFrame, MessageFrame, SentFrame, ErrorFrame, PongFrame])
export type ServerFrame = typeof ServerFrame.Type
export type MessageFrame = typeof MessageFrame.Type
export type WelcomeFrame = typeof WelcomeFrame.Type

export const subprotocol = "holdover.v1"
