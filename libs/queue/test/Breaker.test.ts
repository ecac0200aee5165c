import { expect, layer } from "@effect/vitest"
import { NatsConnection, QueueConfig, RecipientQueue, streamName } from "@holdover/queue"
import { Effect, Layer } from "effect"
import { eventually, queueLayer, TestNats, unique } from "./support.ts"

layer(queueLayer({ requestTimeoutMs: 300 }).pipe(Layer.provideMerge(TestNats.layer)), {
  excludeTestServices: true,
  timeout: 60_000,
})("publish circuit breaker", (it) => {
  it.effect(
    "opens when JetStream stops answering, fails fast while open, and closes again once it answers",
    () =>
      Effect.gen(function* () {
        const queue = yield* RecipientQueue
        const server = yield* TestNats
        const r = unique("breaker")
        expect((yield* queue.enqueue(r, "before"))._tag).toBe("Queued")
        server.signal("SIGSTOP")
        try {
          for (let i = 0; i < 5; i++) {
            const error = yield* Effect.flip(queue.enqueue(r, i, { id: `paused-${i}` }))
            expect(error.reason._tag).toBe("Unavailable")
          }
          const started = Date.now()
          const open = yield* Effect.flip(queue.enqueue(r, "open"))
          expect(open.message).toContain("circuit open")
          expect(Date.now() - started).toBeLessThan(100) // no waiting on a timeout
        } finally {
          server.signal("SIGCONT")
        }
        yield* eventually(
          "a half-open probe succeeds and the breaker closes",
          Effect.map(
            Effect.exit(queue.enqueue(r, "after", { id: "after" })),
            (exit) => exit._tag === "Success",
          ),
          15_000,
        )
        const depth = yield* queue.depth(r)
        expect(depth.normal).toBeGreaterThanOrEqual(2)
      }),
  )

  it.effect("pauses only the priority whose stream does not answer; the others go on being queued", () =>
    Effect.gen(function* () {
      const queue = yield* RecipientQueue
      const { jsm } = yield* NatsConnection
      const settings = yield* QueueConfig
      const r = unique("breaker-high")
      // The high stream gone: its publishes find no responder, as on a cluster whose high
      // stream's leader is cut off.
      yield* Effect.promise(() => jsm.streams.delete(streamName(settings, "high")))
      for (let i = 0; i < 5; i++) {
        const error = yield* Effect.flip(queue.enqueue(r, i, { priority: "high" }))
        expect(error.reason._tag).toBe("Unavailable")
      }
      const open = yield* Effect.flip(queue.enqueue(r, "open", { priority: "high" }))
      expect(open.message).toContain("circuit open")
      expect(open.message).toContain("high")
      expect(queue.breakerState()).toBe("open")
      for (const priority of ["critical", "normal", "low"] as const)
        expect((yield* queue.enqueue(r, priority, { priority }))._tag).toBe("Queued")
    }),
  )
})
