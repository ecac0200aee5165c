// Node-level state shared by the HTTP and WebSocket sides: readiness and the drain flag.
// `draining` is the one mutable bit: set once on SIGTERM, never cleared.
import { QueueConfig, RecipientQueue } from "@holdover/queue"
import { Context, Effect, Layer } from "effect"

export interface GatewayStateShape {
  draining: boolean
  readonly maxMessageBytes: number
  /** Ready = JetStream reachable (streams were reconciled at start) and not draining. */
  readonly isReady: () => boolean
}

export class GatewayState extends Context.Service<GatewayState, GatewayStateShape>()(
  "holdover/GatewayState",
) {
  static readonly layer = Layer.effect(
    GatewayState,
    Effect.gen(function* () {
      const queue = yield* RecipientQueue
      const settings = yield* QueueConfig
      const state: GatewayStateShape = {
        draining: false,
        maxMessageBytes: settings.maxMessageBytes,
        isReady: () => !state.draining && queue.isAvailable(),
      }
      return state
    }),
  )
}
