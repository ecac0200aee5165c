// Rate limits and admission control of one node (token buckets from effect's RateLimiter,
// in memory): messages per producer `sub` across HTTP and `send` frames, frames per WebSocket
// connection, and the rate at which sessions open — each opening reads the recipient's lanes,
// so a reconnect storm is admitted at a bounded pace instead of flooding JetStream's API.
// Clients beyond the admission queue are told to come back later (4429), never dropped silently.
import { Gate } from "@holdover/queue"
import { Context, Duration, Effect, Layer } from "effect"
import { RateLimiter } from "effect/persistence"
import { apiError, type ApiError } from "./ApiError.ts"
import { GatewayConfig } from "./GatewayConfig.ts"
import { Metrics } from "./Metrics.ts"

export interface LimitsShape {
  /** Takes `count` messages from the producer's bucket, or fails with RATE_LIMITED (and a retry delay). */
  readonly publish: (sub: string, count: number) => Effect.Effect<void, ApiError>
  /** Takes one frame from the connection's bucket; false when over the limit. */
  readonly frame: (connection: string) => Effect.Effect<boolean>
  /**
   * Runs a session opening in its turn (rate and concurrency bounded); fails with RATE_LIMITED
   * when too many already wait.
   */
  readonly admitted: <A, E, R>(open: Effect.Effect<A, E, R>) => Effect.Effect<A, E | ApiError, R>
}

const windowFor = (rate: number, burst: number) =>
  `${Math.max(1, Math.round((burst / rate) * 1000))} millis` as const

export class Limits extends Context.Service<Limits, LimitsShape>()("holdover/Limits") {
  static readonly layer = Layer.effect(
    Limits,
    Effect.gen(function* () {
      const config = yield* GatewayConfig
      const metrics = yield* Metrics
      const limiter = yield* Effect.gen(function* () {
        return yield* RateLimiter.RateLimiter
      }).pipe(Effect.provide(RateLimiter.layer.pipe(Layer.provide(RateLimiter.layerStoreMemory))))
      const take = (key: string, limit: number, window: string, tokens: number) =>
        limiter.consume({
          key,
          limit,
          window: window as `${number} millis`,
          tokens,
          algorithm: "token-bucket",
          onExceeded: "fail",
        })

      const publishWindow = windowFor(config.publishRate, config.publishBurst)
      const publish = (sub: string, count: number) =>
        take(`publish:${sub}`, config.publishBurst, publishWindow, count).pipe(
          Effect.asVoid,
          Effect.catch((error) => {
            metrics.rateLimited.inc({ reason: "publish" })
            const retryAfterMs =
              error.reason._tag === "RateLimitExceeded" ? Duration.toMillis(error.reason.retryAfter) : 1000
            return Effect.fail(
              apiError(
                "RATE_LIMITED",
                `over ${config.publishRate} messages/s for this producer; retry in ${Math.ceil(retryAfterMs / 1000)} s`,
                undefined,
                Math.max(1, Math.ceil(retryAfterMs / 1000)),
              ),
            )
          }),
        )

      const frameWindow = windowFor(config.frameRate, config.frameBurst)
      const frame = (connection: string) =>
        take(`frame:${connection}`, config.frameBurst, frameWindow, 1).pipe(
          Effect.as(true),
          Effect.catch(() => Effect.sync(() => (metrics.rateLimited.inc({ reason: "frames" }), false))),
        )

      // Session openings: a token bucket of `admissionRate`/s (burst = rate) and at most
      // `admissionConcurrency` in progress, waiting in line (FIFO) for both.
      let waiting = 0
      const opening = new Gate(config.admissionConcurrency)
      const admissionWindow = windowFor(config.admissionRate, config.admissionRate)
      const admitted = <A, E, R>(open: Effect.Effect<A, E, R>): Effect.Effect<A, E | ApiError, R> =>
        Effect.gen(function* () {
          if (waiting >= config.admissionQueue) {
            metrics.rateLimited.inc({ reason: "admission" })
            return yield* Effect.fail(
              apiError("RATE_LIMITED", "too many sessions are opening; retry with backoff"),
            )
          }
          waiting++
          metrics.admissionQueue.set(waiting)
          let counted = true
          const leaveQueue = Effect.sync(() => {
            if (counted) metrics.admissionQueue.set(--waiting)
            counted = false
          })
          const turn = limiter
            .consume({
              key: "admission",
              limit: config.admissionRate,
              window: admissionWindow as `${number} millis`,
              algorithm: "token-bucket",
              onExceeded: "delay",
            })
            .pipe(
              // "delay" computes the wait; the caller sleeps it.
              Effect.flatMap((result) => Effect.sleep(result.delay)),
              Effect.orDie,
            )
          return yield* opening
            .withPermit(Effect.andThen(Effect.andThen(leaveQueue, turn), open))
            .pipe(Effect.ensuring(leaveQueue))
        })

      return Limits.of({ publish, frame, admitted })
    }),
  )
}
