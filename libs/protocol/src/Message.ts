// What producers send (HTTP `POST /v1/messages`, the `send` frame, libs/queue's enqueue) and
// what they get back. `payload` is any JSON value.
import { Schema } from "effect"
import { Priority } from "./Priority.ts"
import { RecipientId } from "./Recipient.ts"

export const maxMessageIdLength = 256

export const MessageId = Schema.String.check(
  Schema.makeFilter((id: string) => id.length > 0 && id.length <= maxMessageIdLength, {
    expected: `a message id of 1 to ${maxMessageIdLength} characters`,
  }),
)

export const TtlMs = Schema.Number.check(Schema.isInt(), Schema.isGreaterThan(0))

export const MessageRequest = Schema.Struct({
  to: RecipientId,
  priority: Schema.optionalKey(Priority),
  ttlMs: Schema.optionalKey(TtlMs),
  id: Schema.optionalKey(MessageId),
  payload: Schema.Unknown,
})
export type MessageRequest = typeof MessageRequest.Type

export const BatchRequest = Schema.Struct({
  messages: Schema.Array(Schema.Unknown).check(Schema.isMaxLength(1000)),
})

export const QueuedResult = Schema.Struct({
  id: Schema.String,
  status: Schema.Literal("queued"),
  priority: Priority,
  expiresAt: Schema.String,
})
export type QueuedResult = typeof QueuedResult.Type

export const DroppedResult = Schema.Struct({
  id: Schema.String,
  status: Schema.Literal("dropped"),
  reason: Schema.Literal("QUEUE_FULL"),
})
export type DroppedResult = typeof DroppedResult.Type

export const SendResult = Schema.Union([QueuedResult, DroppedResult])
export type SendResult = typeof SendResult.Type
