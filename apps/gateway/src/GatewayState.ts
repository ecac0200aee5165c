// Node-level state shared by the HTTP and WebSocket sides: readiness, the drain flag, and
// whether the node itself is overloaded. `draining` is the one mutable bit: set once on SIGTERM.
//
// Overload = the event loop fell behind (its delay over the last 100 ms passed
// HOLDOVER_SHED_EVENT_LOOP_DELAY). A saturated node that keeps taking producer work answers
// everything late — probes included, so Kubernetes would restart a working node — and JetStream's
// breaker cannot see it (JetStream is fine). While overloaded, new producer requests are refused
// at once with 503 QUEUE_UNAVAILABLE + Retry-After, before their body is read or their token
// checked; deliveries, acks and probes go on.
import { monitorEventLoopDelay } from "node:perf_hooks"
import { QueueConfig, RecipientQueue } from "@holdover/queue"
import { Context, Effect, Layer } from "effect"
import { GatewayConfig } from "./GatewayConfig.ts"

export interface GatewayStateShape {
  draining: boolean
  readonly maxMessageBytes: number
  /** Ready = JetStream reachable (streams were reconciled at start) and not draining. */
  readonly isReady: () => boolean
  /** The event loop is behind: shed new producer work. */
  readonly isOverloaded: () => boolean
}

const windowMs = 100

export class GatewayState extends Context.Service<GatewayState, GatewayStateShape>()(
  "holdover/GatewayState",
) {
  static readonly layer = Layer.effect(
    GatewayState,
    Effect.gen(function* () {
      const queue = yield* RecipientQueue
      const settings = yield* QueueConfig
      const config = yield* GatewayConfig
      let overloaded = false
      if (config.shedEventLoopDelayMs > 0) {
        const delay = monitorEventLoopDelay({ resolution: 10 })
        delay.enable()
        const timer = yield* Effect.acquireRelease(
          Effect.sync(() =>
            setInterval(() => {
              overloaded = delay.max / 1e6 > config.shedEventLoopDelayMs
              delay.reset()
            }, windowMs),
          ),
          (timer) => Effect.sync(() => (clearInterval(timer), delay.disable())),
        )
        timer.unref()
      }
      const state: GatewayStateShape = {
        draining: false,
        maxMessageBytes: settings.maxMessageBytes,
        isReady: () => !state.draining && queue.isAvailable(),
        isOverloaded: () => overloaded,
      }
      return state
    }),
  )
}
