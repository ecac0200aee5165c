// The one error type the SDK hands to callers: rejected `send` promises and the `error` event.
// `code` is either a wire code from the contract (an `error` frame's `code`, e.g. QUEUE_FULL — the
// contract may add codes, and a gateway's newer code comes through as is) or one of the SDK's own
// codes below, for failures that happen on this side of the socket.
import type { ErrorCode } from "@holdover/protocol"

export type ClientErrorCode =
  /** `send` while the outbox already holds `maxOutbox` unconfirmed messages. */
  | "OUTBOX_FULL"
  /** `close()` was called, or the client stopped for good, before the server confirmed a send. */
  | "CLIENT_CLOSED"
  /** A frame from the server is not JSON or does not match the contract. */
  | "INVALID_SERVER_FRAME"
  /** The `onMessage` handler threw or rejected; the message was not acked and will come back. */
  | "HANDLER_FAILED"
  /** `getToken()` threw or rejected. */
  | "TOKEN_FAILED"
  /** The socket reported an error, or no frame arrived within twice `heartbeatMs`. */
  | "CONNECTION_LOST"

/** `string & {}`: a code the contract added after this SDK, while the known ones still autocomplete. */
export type HoldoverErrorCode = ErrorCode | ClientErrorCode | (string & {})

export class HoldoverError extends Error {
  override readonly name = "HoldoverError"
  readonly code: HoldoverErrorCode

  constructor(code: HoldoverErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}
