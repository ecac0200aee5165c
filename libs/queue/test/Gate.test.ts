// The FIFO permit gate that bounds a node's JetStream calls and the gateway's session admissions.
import { Gate } from "@holdover/queue"
import { Deferred, Effect, Exit, Fiber } from "effect"
import { describe, expect, it } from "vitest"

/** Forks `count` holders of a permit, each waiting on its own latch; resolves with their handles. */
const holders = (gate: Gate, count: number, started: Array<number>) =>
  Effect.gen(function* () {
    const latches = yield* Effect.forEach(Array.from({ length: count }), () => Deferred.make<void>())
    const fibers = yield* Effect.forEach(latches, (latch, i) =>
      Effect.forkChild(
        gate.withPermit(
          Effect.gen(function* () {
            started.push(i)
            yield* Deferred.await(latch)
            return i
          }),
        ),
      ),
    )
    yield* Effect.yieldNow
    return { latches, fibers }
  })

describe("Gate", () => {
  it("runs at most `permits` at once and lets waiters in first come, first served", async () => {
    const started: Array<number> = []
    const order = await Effect.runPromise(
      Effect.gen(function* () {
        const gate = new Gate(2)
        const { latches, fibers } = yield* holders(gate, 6, started)
        expect(started).toEqual([0, 1])
        expect(gate.waiting).toBe(4)
        // Release out of order: the next in line starts each time, not whoever asked last.
        for (const i of [1, 0, 3, 2, 4, 5]) {
          yield* Deferred.succeed(latches[i]!, undefined)
          yield* Effect.yieldNow
        }
        yield* Effect.forEach(fibers, Fiber.join)
        expect(gate.waiting).toBe(0)
        return started
      }),
    )
    expect(order).toEqual([0, 1, 2, 3, 4, 5])
  })

  it("a waiter interrupted before its turn leaves the line; the permit goes to the next one", async () => {
    const started: Array<number> = []
    await Effect.runPromise(
      Effect.gen(function* () {
        const gate = new Gate(1)
        const { latches, fibers } = yield* holders(gate, 3, started)
        yield* Fiber.interrupt(fibers[1]!)
        expect(gate.waiting).toBe(1)
        yield* Deferred.succeed(latches[0]!, undefined)
        yield* Effect.yieldNow
        expect(started).toEqual([0, 2])
        yield* Deferred.succeed(latches[2]!, undefined)
        expect(yield* Fiber.join(fibers[2]!)).toBe(2)
        // Exactly one permit again: of two new holders one runs, one waits.
        const again: Array<number> = []
        const next = yield* holders(gate, 2, again)
        expect(again).toEqual([0])
        expect(gate.waiting).toBe(1)
        yield* Effect.forEach(next.latches, (latch) => Deferred.succeed(latch, undefined))
        yield* Effect.forEach(next.fibers, Fiber.join)
        expect(again).toEqual([0, 1])
      }),
    )
  })

  it("gives the permit back when the work fails, dies or is interrupted", async () => {
    await Effect.runPromise(
      Effect.gen(function* () {
        const gate = new Gate(1)
        expect(Exit.isFailure(yield* Effect.exit(gate.withPermit(Effect.fail("no"))))).toBe(true)
        expect(Exit.isFailure(yield* Effect.exit(gate.withPermit(Effect.die("boom"))))).toBe(true)
        const stuck = yield* Effect.forkChild(gate.withPermit(Effect.never))
        yield* Effect.yieldNow
        yield* Fiber.interrupt(stuck)
        // One permit, free again: this would wait forever otherwise.
        expect(yield* gate.withPermit(Effect.succeed("ran")).pipe(Effect.timeout("1 second"))).toBe("ran")
      }),
    )
  })

  it("serves a line of 5 000 in order, never more than its permits at once", async () => {
    const result = await Effect.runPromise(
      Effect.gen(function* () {
        const gate = new Gate(8)
        let running = 0
        let most = 0
        const order: Array<number> = []
        yield* Effect.forEach(
          Array.from({ length: 5_000 }, (_, i) => i),
          (i) =>
            gate.withPermit(
              Effect.gen(function* () {
                order.push(i)
                most = Math.max(most, ++running)
                yield* Effect.yieldNow
                running--
              }),
            ),
          { concurrency: "unbounded", discard: true },
        )
        return { most, order, waiting: gate.waiting }
      }),
    )
    expect(result.most).toBe(8)
    expect(result.order).toEqual(Array.from({ length: 5_000 }, (_, i) => i))
    expect(result.waiting).toBe(0)
  })
})
