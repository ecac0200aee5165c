// The SDK's public types: what `createClient` takes, the client it returns, its states and
// events, and the smallest WebSocket shape it needs (the browser's, Node's built-in and `ws`'s
// all fit). Kept apart from Client.ts so that the contract is readable on one page.
import type { WelcomeFrame } from "@holdover/protocol"
import type { BackoffOptions } from "./Backoff.ts"
import type { HoldoverMessage } from "./Delivery.ts"
import type { HoldoverError } from "./HoldoverError.ts"
import type { SendOptions, SendResult } from "./Outbox.ts"

/**
 * `connecting`: opening a socket and waiting for the welcome. `open`: welcomed; messages flow.
 * `reconnecting`: waiting for the backoff timer. `closed`: final (close(), or a close code after
 * which the contract says not to reconnect).
 */
export type ClientState = "connecting" | "open" | "reconnecting" | "closed"

export interface ClientEvents {
  readonly connecting: { readonly attempt: number }
  readonly open: { readonly welcome: WelcomeFrame }
  /** The session was lost; the next attempt starts after `delayMs`. */
  readonly reconnecting: {
    readonly attempt: number
    readonly delayMs: number
    readonly code: number
    readonly reason: string
  }
  /** Final: the client will not reconnect. `reason` says why in words. */
  readonly closed: { readonly code: number; readonly reason: string }
  /** A newer connection of the same recipient took the session over (4409); `closed` follows. */
  readonly "taken-over": { readonly reason: string }
  readonly error: HoldoverError
}

/** The part of the WebSocket interface the client uses. */
export interface WebSocketLike {
  readonly readyState: number
  send(data: string): void
  close(code?: number, reason?: string): void
  onopen: ((event: never) => unknown) | null
  onmessage: ((event: never) => unknown) | null
  onclose: ((event: never) => unknown) | null
  onerror: ((event: never) => unknown) | null
}

/** The global `WebSocket`, or `ws`'s (whose third argument carries headers in `authMode: "header"`). */
export type WebSocketConstructor = new (
  url: string,
  protocols?: Array<string>,
  options?: { readonly headers: Record<string, string> },
) => WebSocketLike

export interface ClientOptions {
  /** `ws://…/v1/ws` or `wss://…/v1/ws`. */
  readonly url: string
  /** A static JWT. With only this, a 4401 close (expired token) stops the client. */
  readonly token?: string
  /** Called before every connection attempt; after a 4401 this is how a fresh token comes in. */
  readonly getToken?: () => string | Promise<string>
  /**
   * Each message once, in arrival order, one at a time. The message is acked when this returns
   * (or its promise resolves); if it throws or rejects, it is not acked and comes back later.
   */
  readonly onMessage: (message: HoldoverMessage) => unknown
  /** Ack only when `client.ack(id)` is called. Default false. */
  readonly manualAck?: boolean
  readonly onStateChange?: (state: ClientState) => void
  /** Unconfirmed sends kept across reconnects; beyond this `send` rejects with OUTBOX_FULL. Default 1000. */
  readonly maxOutbox?: number
  /** How many handled message ids are remembered to drop redeliveries. Default 10 000. */
  readonly dedupWindow?: number
  /** Reconnect delays. Default `{ initialMs: 250, maxMs: 30000 }`. */
  readonly backoff?: Partial<BackoffOptions>
  /** A WebSocket implementation other than the global one (tests, older runtimes). */
  readonly WebSocket?: WebSocketConstructor
  /**
   * `frame` (default): an `auth` frame right after open — the only way in a browser.
   * `header`: `Authorization: Bearer …` on the upgrade (Node's built-in WebSocket or `ws`).
   */
  readonly authMode?: "frame" | "header"
  /** Give up on an attempt that has no welcome after this long, and retry. Default 10 000 ms. */
  readonly connectTimeoutMs?: number
}

export interface HoldoverClient {
  readonly state: ClientState
  /** The welcome of the current (or last) session. */
  readonly welcome: WelcomeFrame | undefined
  /**
   * Enqueues a message for `to`. Resolves with the server's answer (`queued`, or `dropped` when
   * the recipient's queue is full under drop_newest); rejects with a HoldoverError carrying the
   * server's code (QUEUE_FULL, FORBIDDEN, …), INVALID_MESSAGE, OUTBOX_FULL or CLIENT_CLOSED.
   * While disconnected the send waits in the outbox and goes out after the next welcome, with the
   * same `id`, so the server never queues it twice.
   */
  send(to: string, payload: unknown, options?: SendOptions): Promise<SendResult>
  /** Acks a message (with `manualAck`; harmless otherwise). */
  ack(id: string): void
  /** Closes with 1000, clears every timer, rejects unconfirmed sends with CLIENT_CLOSED. */
  close(): Promise<void>
  /** Subscribes to an event; returns the unsubscribe function. */
  on<E extends keyof ClientEvents>(event: E, listener: (data: ClientEvents[E]) => void): () => void
}
