import { expect, layer } from "@effect/vitest"
import { RecipientQueue } from "@holdover/queue"
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
})
