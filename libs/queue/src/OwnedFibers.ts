// The fibers one session starts (reads, timers, purges): what FiberSet does, for the few a session
// has at a time. An idle session holds none, so nothing is allocated until the first one starts —
// a FiberSet costs its set, a Deferred, a scope finalizer and a runtime closure per session from
// the open on (about 1 KB of heap for each idle connection, measured in the idle bench's heap
// snapshots). Fibers run with the services they were given (the session's: its Clock, which is
// a TestClock in tests); one that fails is only removed (callers handle their own failures).
// Its effects are built when asked for (methods), not held by each instance.
import { Effect, Fiber } from "effect"

export class OwnedFibers {
  private fibers: Set<Fiber.Fiber<unknown, unknown>> | undefined
  private closed = false
  private readonly runFork: (effect: Effect.Effect<unknown, unknown>) => Fiber.Fiber<unknown, unknown>

  /** `runFork` starts a fiber with the owner's services: `Effect.runForkWith(services)`. */
  constructor(runFork: (effect: Effect.Effect<unknown, unknown>) => Fiber.Fiber<unknown, unknown>) {
    this.runFork = runFork
  }

  /** Starts `effect` in a fiber of its own, kept until it is done; none once closed. */
  fork(effect: Effect.Effect<unknown, unknown>): void {
    if (this.closed) return
    const fiber = this.runFork(effect)
    // It may have finished already (a synchronous effect): then there is nothing to keep.
    if (fiber.pollUnsafe() !== undefined) return
    const fibers = (this.fibers ??= new Set())
    fibers.add(fiber)
    fiber.addObserver(() => fibers.delete(fiber))
  }

  get size(): number {
    return this.fibers?.size ?? 0
  }

  /** Interrupts every fiber still running (new ones may still start). */
  interruptAll(): Effect.Effect<void> {
    return Effect.suspend(() =>
      this.fibers === undefined || this.fibers.size === 0
        ? Effect.void
        : Fiber.interruptAll([...this.fibers]),
    )
  }

  /** Waits until none is running, including fibers started while it waits. */
  awaitEmpty(): Effect.Effect<void> {
    return Effect.suspend(() =>
      this.fibers === undefined || this.fibers.size === 0
        ? Effect.void
        : Effect.andThen(Fiber.awaitAll([...this.fibers]), this.awaitEmpty()),
    )
  }

  /** Interrupts what runs and starts nothing more. */
  close(): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.closed = true
      return this.interruptAll()
    })
  }
}
