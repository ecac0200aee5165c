// The NATS connection of a process, with its JetStream client and manager.
//
// Lifecycle: connected when the layer is built — a process that starts before NATS (a rolling
// deploy, a cluster still electing its JetStream meta leader) waits, logging each failed attempt,
// until a server answers and JetStream with it (`untilAvailable`) — and drained when the layer's
// scope closes. Once connected, nats.js reconnects on its own, forever, with jitter; nothing here
// stacks a retry on top of that. `connected` reflects the live state from `nc.status()`
// (readiness, 503s), `statusChanges` lets sessions resume.
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream"
import { connect, type NatsConnection as Nc } from "@nats-io/transport-node"
import type { Config } from "effect"
import { Context, Effect, Layer, PubSub, Schedule, Stream } from "effect"
import { fastHeaders } from "./NatsHeaders.ts"
import { coalesceWrites, skipErrorPerAnsweredRequest } from "./NatsRequests.ts"
import { natsUrlVariable } from "./QueueConfig.ts"
import { queueError, type QueueError } from "./QueueError.ts"
import { readVariable, type InvalidConfig } from "./Variables.ts"

export interface NatsOptions {
  readonly servers: ReadonlyArray<string>
  readonly name?: string
  /** Tests against a single container of a cluster need this; default false. */
  readonly ignoreClusterUpdates?: boolean
  readonly connectTimeoutMs?: number
}

export interface NatsConnectionShape {
  readonly nc: Nc
  readonly js: JetStreamClient
  readonly jsm: JetStreamManager
  /** True while the client is connected to a server. */
  readonly isConnected: () => boolean
  /** How many times the connection was lost so far: a changed count means commands may have been lost. */
  readonly disconnects: () => number
  /** Emits `true`/`false` whenever the connection comes back or goes away. */
  readonly statusChanges: Stream.Stream<boolean>
  readonly serverVersion: () => string
}

export class NatsConnection extends Context.Service<NatsConnection, NatsConnectionShape>()(
  "holdover/NatsConnection",
) {
  static readonly layer = (options: NatsOptions): Layer.Layer<NatsConnection, QueueError> =>
    Layer.effect(NatsConnection, make(options))

  /** Reads HOLDOVER_NATS_URL (comma-separated; default nats://127.0.0.1:4222). */
  static readonly layerConfig: Layer.Layer<NatsConnection, QueueError | InvalidConfig | Config.ConfigError> =
    Layer.effect(
      NatsConnection,
      Effect.gen(function* () {
        const servers = yield* readVariable(natsUrlVariable)
        return yield* make({ servers: [...servers], name: "holdover-gateway" })
      }),
    )
}

/**
 * Retries what fails as Unavailable (no server answering, JetStream not ready) with a backoff
 * capped at 5 s, forever, logging each failure: a node started before its NATS cluster waits for
 * it. Anything else (a topology conflict, bad settings) fails at once.
 */
export const untilAvailable = <A, R>(
  what: string,
  effect: Effect.Effect<A, QueueError, R>,
): Effect.Effect<A, QueueError, R> =>
  Effect.suspend(() => {
    let attempt = 0
    return effect.pipe(
      Effect.tapError((error) =>
        error.reason._tag === "Unavailable"
          ? Effect.logWarning(`waiting for ${what}`, { attempt: ++attempt, error: error.message })
          : Effect.void,
      ),
      Effect.retry({
        schedule: Schedule.min([Schedule.exponential("250 millis"), Schedule.spaced("5 seconds")]),
        while: (error) => error.reason._tag === "Unavailable",
      }),
    )
  })

/** One attempt: a connection to a server that answers JetStream API requests (closed if not). */
const connectOnce = (options: NatsOptions) =>
  Effect.gen(function* () {
    skipErrorPerAnsweredRequest()
    fastHeaders()
    const nc = yield* Effect.tryPromise({
      try: () =>
        connect({
          servers: [...options.servers],
          name: options.name ?? "holdover",
          maxReconnectAttempts: -1,
          reconnectTimeWait: 500,
          reconnectJitter: 250,
          // A paused or cut-off server is noticed within ~15 s, not the default 4 minutes.
          pingInterval: 5_000,
          maxPingOut: 3,
          timeout: options.connectTimeoutMs ?? 5_000,
          ignoreClusterUpdates: options.ignoreClusterUpdates ?? false,
          // A stack trace captured for every request costs more than the request on a busy node;
          // errors still carry the subject and the server's code.
          noAsyncTraces: true,
        }),
      catch: (cause) =>
        queueError(
          { _tag: "Unavailable" },
          `cannot connect to NATS at ${options.servers.join(",")}: ${String(cause)}`,
        ),
    })
    coalesceWrites(nc)
    const jsm = yield* Effect.tryPromise({
      try: () => jetstreamManager(nc, { timeout: 5_000 }),
      catch: (cause) => queueError({ _tag: "Unavailable" }, `JetStream is not available: ${String(cause)}`),
    }).pipe(Effect.tapError(() => Effect.promise(() => nc.close().catch(() => undefined))))
    return { nc, jsm }
  })

const make = (options: NatsOptions) =>
  Effect.gen(function* () {
    const { nc, jsm } = yield* Effect.acquireRelease(
      untilAvailable("NATS JetStream", connectOnce(options)),
      ({ nc }) =>
        Effect.promise(() =>
          nc.isClosed() ? Promise.resolve() : nc.drain().catch(() => nc.close().catch(() => undefined)),
        ),
    )
    const js = jetstream(nc, { timeout: 5_000 })

    let connected = true
    let disconnects = 0
    const changes = yield* PubSub.unbounded<boolean>()
    const services = yield* Effect.context<never>()
    const log = (message: string, fields: Record<string, unknown>) =>
      Effect.runForkWith(services)(Effect.logWarning(message, fields))
    yield* Effect.forkScoped(
      Effect.promise(async () => {
        for await (const status of nc.status()) {
          if (
            status.type === "disconnect" ||
            status.type === "reconnect" ||
            status.type === "slowConsumer" ||
            status.type === "error"
          )
            log(`nats ${status.type}`, {
              detail: "server" in status ? status.server : "error" in status ? String(status.error) : "",
            })
          const next =
            status.type === "disconnect" || status.type === "staleConnection"
              ? false
              : status.type === "reconnect"
                ? true
                : connected
          if (next !== connected) {
            connected = next
            if (!next) disconnects++
            PubSub.publishUnsafe(changes, next)
          }
        }
      }),
    )

    return NatsConnection.of({
      nc,
      js,
      jsm,
      isConnected: () => connected && !nc.isClosed(),
      disconnects: () => disconnects,
      statusChanges: Stream.fromPubSub(changes),
      serverVersion: () => nc.info?.version ?? "0.0.0",
    })
  })
