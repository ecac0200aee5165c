// The fibers a session owns (reads, timers, purges): started with the session's services, kept
// only while they run, awaited or interrupted when the session ends.
import { OwnedFibers } from "@holdover/queue"
import { Deferred, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { describe, expect, it } from "vitest"

describe("OwnedFibers", () => {
  it("keeps a fiber only while it runs, and runs it with the services it was given (a TestClock)", async () => {
    const result = await Effect.runPromise(
      Effect.gen(function* () {
        const owned = new OwnedFibers(Effect.runForkWith(yield* Effect.context<never>()))
        const woke: Array<string> = []
        owned.fork(Effect.sync(() => woke.push("at once"))) // done before fork returns: not kept
        const keptAfterSync = owned.size
        owned.fork(
          Effect.andThen(
            Effect.sleep("1 hour"),
            Effect.sync(() => woke.push("an hour later")),
          ),
        )
        const keptWhileSleeping = owned.size
        yield* TestClock.adjust("1 hour") // the fiber's clock is the test's: the hour passes at once
        yield* owned.awaitEmpty()
        return { woke, keptAfterSync, keptWhileSleeping, keptAfter: owned.size }
      }).pipe(Effect.provide(TestClock.layer())),
    )
    expect(result).toEqual({
      woke: ["at once", "an hour later"],
      keptAfterSync: 0,
      keptWhileSleeping: 1,
      keptAfter: 0,
    })
  })

  it("awaits fibers started while it waits, and a failing fiber is only removed", async () => {
    const order = await Effect.runPromise(
      Effect.gen(function* () {
        const owned = new OwnedFibers(Effect.runForkWith(yield* Effect.context<never>()))
        const first = yield* Deferred.make<void>()
        const second = yield* Deferred.make<void>()
        const order: Array<string> = []
        owned.fork(Effect.fail("a failed purge"))
        owned.fork(
          Deferred.await(first).pipe(
            Effect.andThen(
              Effect.sync(() => {
                order.push("first")
                // Started while awaitEmpty waits for the first: it waits for this one too.
                owned.fork(
                  Deferred.await(second).pipe(Effect.andThen(Effect.sync(() => order.push("second")))),
                )
              }),
            ),
          ),
        )
        const waiting = yield* Effect.forkChild(
          Effect.andThen(
            owned.awaitEmpty(),
            Effect.sync(() => order.push("empty")),
          ),
        )
        yield* Deferred.succeed(first, undefined)
        yield* Effect.yieldNow
        yield* Deferred.succeed(second, undefined)
        yield* Fiber.join(waiting)
        return order
      }),
    )
    expect(order).toEqual(["first", "second", "empty"])
  })

  it("interrupts what runs on close and starts nothing after it", async () => {
    const result = await Effect.runPromise(
      Effect.gen(function* () {
        const owned = new OwnedFibers(Effect.runForkWith(yield* Effect.context<never>()))
        const ran: Array<string> = []
        owned.fork(
          Effect.andThen(
            Effect.never,
            Effect.sync(() => ran.push("never")),
          ).pipe(Effect.onInterrupt(() => Effect.sync(() => ran.push("interrupted")))),
        )
        yield* Effect.yieldNow
        yield* owned.close()
        owned.fork(Effect.sync(() => ran.push("after close")))
        return { ran, size: owned.size }
      }),
    )
    expect(result).toEqual({ ran: ["interrupted"], size: 0 })
  })
})
