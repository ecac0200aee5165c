import { describe, expect, layer } from "@effect/vitest"
import { RecipientQueue, defaultSettings, type Overflow } from "@holdover/queue"
import { Effect, Layer } from "effect"
import { eventually, queueLayer, take, TestNats, unique } from "./support.ts"

const withCapacity3 = (overflow: Overflow) =>
  queueLayer({
    policies: { ...defaultSettings.policies, normal: { maxAgeMs: 3_600_000, capacity: 3, overflow } },
  }).pipe(Layer.provide(TestNats.layer))

const payloads = (deliveries: ReadonlyArray<{ payload: unknown }>) => deliveries.map((d) => d.payload)

describe("overflow with capacity 3", () => {
  layer(withCapacity3("drop_oldest"), { excludeTestServices: true })("drop_oldest", (it) => {
    it.effect("keeps the newest 3", () =>
      Effect.gen(function* () {
        const queue = yield* RecipientQueue
        const r = unique("r")
        for (let i = 1; i <= 5; i++) expect((yield* queue.enqueue(r, i))._tag).toBe("Queued")
        expect((yield* queue.depth(r)).normal).toBe(3)
        const got = yield* Effect.scoped(Effect.flatMap(queue.openSession(r), (s) => take(s, 3)))
        expect(payloads(got)).toEqual([3, 4, 5])
      }),
    )
  })

  layer(withCapacity3("drop_newest"), { excludeTestServices: true })("drop_newest", (it) => {
    it.effect("keeps the first 3 and reports the rest dropped", () =>
      Effect.gen(function* () {
        const queue = yield* RecipientQueue
        const r = unique("r")
        const results = []
        for (let i = 1; i <= 5; i++) results.push((yield* queue.enqueue(r, i, { id: `k${i}` }))._tag)
        expect(results).toEqual(["Queued", "Queued", "Queued", "Dropped", "Dropped"])
        const got = yield* Effect.scoped(Effect.flatMap(queue.openSession(r), (s) => take(s, 3)))
        expect(payloads(got)).toEqual([1, 2, 3])
      }),
    )
  })

  layer(withCapacity3("reject"), { excludeTestServices: true })("reject", (it) => {
    it.effect("fails the 4th with QueueFull and accepts again once the queue drains", () =>
      Effect.gen(function* () {
        const queue = yield* RecipientQueue
        const r = unique("r")
        for (let i = 1; i <= 3; i++) yield* queue.enqueue(r, i)
        const full = yield* Effect.flip(queue.enqueue(r, 4))
        expect([full.reason._tag, full.code, full.status]).toEqual(["QueueFull", "QUEUE_FULL", 429])
        // Another recipient is unaffected.
        expect((yield* queue.enqueue(unique("other"), 1))._tag).toBe("Queued")
        const got = yield* Effect.scoped(Effect.flatMap(queue.openSession(r), (s) => take(s, 3)))
        expect(payloads(got)).toEqual([1, 2, 3])
        yield* eventually(
          "the acks drain the queue",
          Effect.map(queue.depth(r), (d) => d.normal === 0),
        )
        expect((yield* queue.enqueue(r, 4))._tag).toBe("Queued")
      }),
    )
  })
})
