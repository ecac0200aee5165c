import { expect, layer } from "@effect/vitest"
import { priorities, type Priority } from "@holdover/protocol"
import { RecipientQueue } from "@holdover/queue"
import { Effect, Layer } from "effect"
import fc from "fast-check"
import { queueLayer, take, TestNats, unique } from "./support.ts"

layer(queueLayer().pipe(Layer.provide(TestNats.layer)), { excludeTestServices: true, timeout: 60_000 })(
  "ordering (property)",
  (it) => {
    it.effect("replays any backlog sorted by priority, then by enqueue order, whatever maxInFlight", () =>
      Effect.gen(function* () {
        const queue = yield* RecipientQueue
        const backlog = fc.array(fc.constantFrom<Priority>(...priorities), { minLength: 1, maxLength: 40 })
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(backlog, fc.integer({ min: 1, max: 8 }), async (sequence, maxInFlight) => {
              const r = unique("prop")
              await Effect.runPromise(
                Effect.forEach(sequence, (priority, i) => queue.enqueue(r, i, { priority }), {
                  discard: true,
                }),
              )
              const got = await Effect.runPromise(
                Effect.scoped(
                  Effect.flatMap(queue.openSession(r, { maxInFlight }), (s) => take(s, sequence.length)),
                ),
              )
              const expected = sequence
                .map((priority, i) => ({ priority, i }))
                .sort((a, b) => priorities.indexOf(a.priority) - priorities.indexOf(b.priority) || a.i - b.i)
                .map(({ i }) => i)
              expect(got.map((d) => d.payload)).toEqual(expected)
            }),
            { numRuns: 15 },
          ),
        )
      }),
    )
  },
)
