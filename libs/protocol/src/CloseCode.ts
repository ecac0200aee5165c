// WebSocket close codes of the contract and what a client does on each.
export const CloseCode = {
  Normal: 1000,
  /** A text frame that is not valid UTF-8 (RFC 6455; closed by the `ws` library). */
  InvalidPayload: 1007,
  TooLarge: 1009,
  /** The gateway could not read a frame (a defect on its side): come back with backoff. */
  InternalError: 1011,
  Restarting: 1012,
  ProtocolViolation: 4400,
  Unauthenticated: 4401,
  Forbidden: 4403,
  TakenOver: 4409,
  RateLimited: 4429,
} as const
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode]

export type ReconnectPolicy = "no" | "backoff" | "immediately" | "fresh-token"

/** The contract's "SDK reconnects?" column. Unknown codes (e.g. 1006, abnormal) reconnect with backoff. */
export const reconnectPolicy = (code: number): ReconnectPolicy => {
  switch (code) {
    case CloseCode.Normal:
    case CloseCode.ProtocolViolation:
    case CloseCode.Forbidden:
    case CloseCode.TakenOver:
      return "no"
    case CloseCode.Restarting:
      return "immediately"
    case CloseCode.Unauthenticated:
      return "fresh-token"
    case CloseCode.InvalidPayload: // a corrupted frame, not a lasting state: come back, gently
    case CloseCode.InternalError:
    case CloseCode.TooLarge:
    case CloseCode.RateLimited:
      return "backoff"
    default:
      return "backoff"
  }
}
