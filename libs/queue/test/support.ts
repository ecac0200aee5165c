// Test support: a real nats-server per test file (from the vitest globalSetup's launcher), the
// queue layers on top of it with a namespace of their own, and small helpers for sessions.
import { startNats, type RunningNats, waitUntil as waitFor } from "@holdover/local-nats"
import {
  NatsConnection,
  QueueConfig,
  RecipientQueue,
  type Delivery,
  type QueueSettings,
  type RecipientSession,
} from "@holdover/queue"
import { Context, Effect, Layer } from "effect"
import { connect, type ConnectionOptions, type NatsConnection as Nc } from "@nats-io/transport-node"
import { afterAll, beforeAll, inject } from "vitest"

let counter = 0
/** Unique per call: stream namespaces and recipients never collide between tests. */
export const unique = (prefix: string) => `${prefix}${Date.now().toString(36)}${(counter++).toString(36)}`

export class TestNats extends Context.Service<TestNats, RunningNats>()("test/TestNats") {
  static readonly layer = Layer.effect(
    TestNats,
    Effect.acquireRelease(
      Effect.promise(() => startNats(inject("natsLauncher"), { monitoring: true })),
      (server) => Effect.promise(() => server.stop()),
    ),
  )
}

/** RecipientQueue (plus its connection and config) over a connection of its own to the suite's server. */
export const queueLayer = (settings: Partial<QueueSettings> = {}) =>
  RecipientQueue.layer.pipe(
    Layer.provideMerge(
      QueueConfig.layer({ namespace: unique("T").toUpperCase(), subjectPrefix: unique("q"), ...settings }),
    ),
    Layer.provideMerge(
      Layer.unwrap(
        Effect.gen(function* () {
          const server = yield* TestNats
          return NatsConnection.layer({ servers: [server.url], ignoreClusterUpdates: true })
        }),
      ),
    ),
  )

/** Polls until `condition` holds; fails with `description` after `timeoutMs`. */
export const waitUntil = (
  description: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
) => waitFor(description, condition, timeoutMs)

/** Takes `count` deliveries from a session, acking each unless `ack` is false. */
export const take = (
  session: RecipientSession,
  count: number,
  options: { ack?: boolean; timeoutMs?: number } = {},
) =>
  Effect.promise(async () => {
    const got: Array<Delivery> = []
    const deadline = Date.now() + (options.timeoutMs ?? 10_000)
    while (got.length < count) {
      const remaining = deadline - Date.now()
      if (remaining <= 0) throw new Error(`got ${got.length} of ${count} deliveries in time`)
      const next = await Promise.race([
        Effect.runPromise(session.next),
        new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), remaining)),
      ])
      if (next === "timeout") throw new Error(`got ${got.length} of ${count} deliveries in time`)
      if (next === undefined) throw new Error(`the session ended after ${got.length} of ${count} deliveries`)
      got.push(next)
      if (options.ack !== false) await Effect.runPromise(session.ack([next.id]))
    }
    return got
  })

/** Re-checks `check` every 20 ms until it is true; fails with `description` after `timeoutMs`. */
export const eventually = <E, R>(
  description: string,
  check: Effect.Effect<boolean, E, R>,
  timeoutMs = 10_000,
) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting until ${description}`))
      yield* Effect.sleep("20 millis")
    }
  })

/** Builds a queue with a connection of its own (like another gateway process) in the current scope. */
export const buildQueue = (settings: Partial<QueueSettings>) =>
  Effect.gen(function* () {
    const context = yield* Layer.build(queueLayer(settings))
    return { queue: Context.get(context, RecipientQueue), conn: Context.get(context, NatsConnection) }
  })

/**
 * A nats-server and one plain nats.js connection to it for the whole file: started before its
 * first test, closed after its last. Read `suite.server` and `suite.nc` inside tests.
 */
export const suiteNats = (options: Partial<ConnectionOptions> = {}) => {
  const suite = {} as { server: RunningNats; nc: Nc }
  beforeAll(async () => {
    suite.server = await startNats(inject("natsLauncher"))
    suite.nc = await connect({ servers: suite.server.url, ...options })
  })
  afterAll(async () => {
    await suite.nc?.close()
    await suite.server?.stop()
  })
  return suite
}
