// The one error type of libs/queue, with a tagged `reason`. Each reason knows the contract's
// error code and HTTP status (PROTOCOL.md), so the gateway maps failures without a table of
// its own. nats.js errors are translated into these once, in JetStream.ts.
import type { ErrorCode } from "@holdover/protocol"
import { errorStatus } from "@holdover/protocol"
import { Schema } from "effect"

export const QueueFull = Schema.TaggedStruct("QueueFull", { capacity: Schema.Number })
export const MessageTooLarge = Schema.TaggedStruct("MessageTooLarge", {
  bytes: Schema.Number,
  limit: Schema.Number,
})
export const InvalidMessage = Schema.TaggedStruct("InvalidMessage", { path: Schema.String })
export const Unavailable = Schema.TaggedStruct("Unavailable", {})
/** Refused at once to protect JetStream or this node: the breaker is open, or too much is in progress. */
export const Overloaded = Schema.TaggedStruct("Overloaded", {})
export const TopologyConflict = Schema.TaggedStruct("TopologyConflict", { stream: Schema.String })
export const SessionClosed = Schema.TaggedStruct("SessionClosed", {})

export const QueueErrorReason = Schema.Union([
  QueueFull,
  MessageTooLarge,
  InvalidMessage,
  Unavailable,
  Overloaded,
  TopologyConflict,
  SessionClosed,
])
export type QueueErrorReason = typeof QueueErrorReason.Type

export class QueueError extends Schema.TaggedError<QueueError>()("QueueError", {
  reason: QueueErrorReason,
  message: Schema.String,
}) {
  get code(): ErrorCode {
    switch (this.reason._tag) {
      case "QueueFull":
        return "QUEUE_FULL"
      case "MessageTooLarge":
        return "MESSAGE_TOO_LARGE"
      case "InvalidMessage":
        return "INVALID_MESSAGE"
      case "Unavailable":
      case "Overloaded":
        return "QUEUE_UNAVAILABLE"
      case "TopologyConflict":
      case "SessionClosed":
        return "INTERNAL"
    }
  }

  get status(): number {
    return errorStatus[this.code]
  }
}

export const queueError = (reason: QueueErrorReason, message: string): QueueError =>
  new QueueError({ reason, message })
