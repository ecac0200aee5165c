// libs/queue used directly, in the benchmark's own process, the way a service that embeds it
// would: a RecipientQueue layer over a NATS connection of its own, in a namespace of its own (so
// it never shares streams with the gateways), with the benchmark's raised capacities.
// Lifecycle: `InProcessQueue.start(url, namespace)` builds the layer (reconciling the four
// streams); `close()` disposes the runtime (drains NATS), `deleteStreams()` removes the streams.
import { priorities, type Priority } from "@holdover/protocol"
import {
  defaultSettings,
  NatsConnection,
  QueueConfig,
  RecipientQueue,
  streamName,
  type QueueSettings,
} from "@holdover/queue"
import { Effect, Layer, ManagedRuntime, References } from "effect"
import { benchCapacity } from "./Harness.ts"

type Queue = RecipientQueue["Service"]

export class InProcessQueue {
  readonly queue: Queue
  readonly settings: QueueSettings
  private readonly runtime: ManagedRuntime.ManagedRuntime<RecipientQueue | NatsConnection, unknown>

  private constructor(
    queue: Queue,
    settings: QueueSettings,
    runtime: ManagedRuntime.ManagedRuntime<RecipientQueue | NatsConnection, unknown>,
  ) {
    this.queue = queue
    this.settings = settings
    this.runtime = runtime
  }

  /** `namespace` HOLDOVER with `subjectPrefix` hq shares the gateways' streams (same settings). */
  static async start(url: string, namespace: string, subjectPrefix?: string): Promise<InProcessQueue> {
    const policies = Object.fromEntries(
      priorities.map((priority) => [
        priority,
        { ...defaultSettings.policies[priority], capacity: benchCapacity },
      ]),
    ) as QueueSettings["policies"]
    const settings: QueueSettings = {
      ...defaultSettings,
      namespace,
      subjectPrefix: subjectPrefix ?? namespace.toLowerCase(),
      policies,
      maxPendingPublishes: 100_000,
    }
    const layer = RecipientQueue.layer.pipe(
      Layer.provideMerge(QueueConfig.layer(settings)),
      Layer.provideMerge(NatsConnection.layer({ servers: [url], name: "holdover-bench-queue" })),
      // Stream reconciliation logs at Info; the benchmark prints its own progress.
      Layer.provide(Layer.succeed(References.MinimumLogLevel, "Warn")),
    )
    const runtime = ManagedRuntime.make(layer)
    const queue = await runtime.runPromise(
      Effect.gen(function* () {
        return yield* RecipientQueue
      }),
    )
    return new InProcessQueue(queue, settings, runtime)
  }

  /** Enqueues `count` messages (`make(i)` says to whom and at which priority), `concurrency` at once. */
  async enqueueMany(
    count: number,
    concurrency: number,
    make: (i: number) => { to: string; priority: Priority; payload: unknown },
    deadline: number,
  ): Promise<{ count: number; failed: number; ms: number }> {
    let next = 0
    let done = 0
    let failed = 0
    const started = performance.now()
    const worker = async () => {
      while (next < count && Date.now() < deadline) {
        const m = make(next++)
        const exit = await Effect.runPromiseExit(
          this.queue.enqueue(m.to, m.payload, { priority: m.priority }),
        )
        if (exit._tag === "Success" && exit.value._tag === "Queued") done++
        else failed++
      }
    }
    await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, count)) }, worker))
    return { count: done, failed, ms: performance.now() - started }
  }

  /**
   * Opens a session for `recipient`, takes `expected` deliveries (acking them 128 at a time and
   * at the end, like the SDK's coalesced acks) and closes it. Resolves with the time it took and
   * whether the priority order held; rejects after `timeoutMs`.
   */
  replay(
    recipient: string,
    expected: number,
    timeoutMs: number,
  ): Promise<{ ms: number; orderViolations: number }> {
    const queue = this.queue
    return Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const started = performance.now()
          const session = yield* queue.openSession(recipient)
          let got = 0
          let lastRank = -1
          let orderViolations = 0
          let acks: Array<string> = []
          while (got < expected) {
            const delivery = yield* session.next
            if (!delivery) return yield* Effect.die(new Error(`session of ${recipient} ended after ${got}`))
            const rank = priorities.indexOf(delivery.priority)
            if (rank < lastRank) orderViolations++
            lastRank = rank
            got++
            acks.push(delivery.id)
            if (acks.length >= 128) {
              yield* session.ack(acks)
              acks = []
            }
          }
          yield* session.ack(acks)
          return { ms: performance.now() - started, orderViolations }
        }),
      ).pipe(Effect.timeout(timeoutMs)),
    )
  }

  /** Removes this namespace's streams (through the queue's own connection). */
  async deleteStreams(): Promise<void> {
    const settings = this.settings
    await this.runtime.runPromise(
      Effect.gen(function* () {
        const { jsm } = yield* NatsConnection
        for (const priority of priorities)
          yield* Effect.promise(() => jsm.streams.delete(streamName(settings, priority)).catch(() => false))
      }),
    )
  }

  close(): Promise<void> {
    return this.runtime.dispose()
  }
}
