// A bound on work in progress that thousands may wait for, first come first served: the JetStream
// calls of a node's sessions (RecipientQueue) and the gateway's session admissions (Limits).
//
// Why not Effect's Semaphore: its release wakes by scanning every waiter (4.1), so with thousands
// waiting — a reconnect storm queues 5 000 openings and their reads — each release costs
// O(waiters). A CPU profile of the 5 000-recipient storm put 8 % of the gateway's time in that
// scan. Here a release hands its permit to the oldest waiter directly: O(1).
//
// Interruption: a waiter interrupted before its turn leaves the line; one interrupted just as the
// permit was handed to it passes the permit on. The permit is always given back (ensuring).
import { Effect } from "effect"

interface Waiter {
  /** "granted": the permit was handed over; "left": interrupted before its turn. */
  state: "waiting" | "granted" | "left"
  readonly resume: (effect: Effect.Effect<void>) => void
}

export class Gate {
  private free: number
  private line: Array<Waiter> = []
  private head = 0
  private queued = 0

  constructor(permits: number) {
    this.free = permits
  }

  /** Waiting for a permit now. */
  get waiting(): number {
    return this.queued
  }

  /** Runs `effect` holding one permit; waits in line (FIFO) while none is free. */
  withPermit<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.uninterruptibleMask((restore) =>
      Effect.andThen(restore(this.acquire), restore(effect).pipe(Effect.ensuring(this.release))),
    )
  }

  private readonly acquire: Effect.Effect<void> = Effect.suspend(() => {
    if (this.free > 0 && this.head === this.line.length) {
      this.free--
      return Effect.void
    }
    return Effect.callback<void>((resume) => {
      const waiter: Waiter = { state: "waiting", resume }
      this.line.push(waiter)
      this.queued++
      return Effect.sync(() => {
        if (waiter.state === "granted") this.handOn()
        else if (waiter.state === "waiting") this.queued--
        waiter.state = "left"
      })
    })
  })

  private readonly release: Effect.Effect<void> = Effect.sync(() => this.handOn())

  /** Gives a permit to the oldest waiter still waiting, or back to the pool. */
  private handOn(): void {
    while (this.head < this.line.length) {
      const waiter = this.line[this.head++]!
      if (waiter.state !== "waiting") continue
      this.compact()
      this.queued--
      waiter.state = "granted"
      waiter.resume(Effect.void)
      return
    }
    this.compact()
    this.free++
  }

  private compact(): void {
    if (this.head === this.line.length) {
      this.line = []
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > this.line.length) {
      this.line = this.line.slice(this.head)
      this.head = 0
    }
  }
}
