// @holdover/client — the browser-safe SDK for Holdover's WebSocket contract (PROTOCOL.md).
export type {
  ClientEvents,
  ClientOptions,
  ClientState,
  HoldoverClient,
  WebSocketConstructor,
  WebSocketLike,
} from "./Api.ts"
export { Backoff, backoffDelay, defaultBackoff } from "./Backoff.ts"
export type { BackoffOptions } from "./Backoff.ts"
export { createClient } from "./Client.ts"
export { DedupWindow } from "./Dedup.ts"
export type { HoldoverMessage } from "./Delivery.ts"
export { Heartbeat } from "./Heartbeat.ts"
export { HoldoverError } from "./HoldoverError.ts"
export type { ClientErrorCode, HoldoverErrorCode } from "./HoldoverError.ts"
export { Outbox, randomId } from "./Outbox.ts"
export type { SendFrameOut, SendOptions, SendResult } from "./Outbox.ts"
