import { expect, layer } from "@effect/vitest"
import type { Priority } from "@holdover/protocol"
import { consumerName, NatsConnection, RecipientQueue, type Delivery } from "@holdover/queue"
import { Effect, Exit, Layer, Scope } from "effect"
import { buildQueue, eventually, queueLayer, take, TestNats, unique } from "./support.ts"

// Two independent connections to one server, like two gateway processes sharing JetStream.
// A long ack_wait proves that nothing waits for it.
const settings = { namespace: unique("S").toUpperCase(), subjectPrefix: unique("s"), ackWaitMs: 120_000 }

/**
 * Enqueues `payload` and has it delivered to a pull request whose requester is gone by the time
 * JetStream answers (an expired fetch on a loaded cluster, a consumer leader that died): it counts
 * as delivered-unacked on the recipient's consumer until ack_wait (120 s here), unseen.
 */
const deliverIntoLimbo = (recipient: string, priority: Priority, payload: unknown) =>
  Effect.gen(function* () {
    const queue = yield* RecipientQueue
    const { nc } = yield* NatsConnection
    const inbox = `limbo.${recipient}`
    const lost = nc.subscribe(inbox, { max: 1 })
    nc.publish(
      `$JS.API.CONSUMER.MSG.NEXT.${settings.namespace}_${priority.toUpperCase()}.${consumerName(recipient)}`,
      JSON.stringify({ batch: 1 }),
      { reply: inbox },
    )
    yield* Effect.promise(() => nc.flush())
    yield* queue.enqueue(recipient, payload, { priority })
    yield* Effect.promise(async () => {
      for await (const _ of lost) break
    }).pipe(Effect.timeout("5 seconds"))
  })

const ids = (deliveries: ReadonlyArray<Delivery>) => deliveries.map((d) => (d.payload as { i: number }).i)

layer(queueLayer(settings).pipe(Layer.provideMerge(TestNats.layer)), {
  excludeTestServices: true,
  timeout: 60_000,
})("sessions", (it) => {
  it.effect(
    "loses and duplicates nothing over 5 rapid disconnect/reconnect cycles with messages in flight",
    () =>
      Effect.gen(function* () {
        const queue = yield* RecipientQueue
        const r = unique("cycle")
        const n = 200
        for (let i = 0; i < n; i++)
          yield* queue.enqueue(r, { i }, { priority: i % 3 === 0 ? "high" : "normal" })
        const handled = new Map<string, number>()
        let redeliveries = 0
        for (let cycle = 0; cycle < 5; cycle++) {
          yield* Effect.scoped(
            Effect.gen(function* () {
              const session = yield* queue.openSession(r, { maxInFlight: 16 })
              // Ack 30, leave up to 16 more in flight unacked, then drop the session.
              const acked = yield* take(session, 30)
              const unacked = yield* take(session, 10, { ack: false })
              for (const d of [...acked, ...unacked]) {
                if (handled.has(d.id)) {
                  expect(d.redelivered).toBe(true)
                  redeliveries++
                }
              }
              for (const d of acked) handled.set(d.id, (handled.get(d.id) ?? 0) + 1)
            }),
          )
        }
        const rest = yield* Effect.scoped(
          Effect.gen(function* () {
            const session = yield* queue.openSession(r)
            const total = n - handled.size
            return yield* take(session, total)
          }),
        )
        for (const d of rest) handled.set(d.id, (handled.get(d.id) ?? 0) + 1)
        expect(handled.size).toBe(n)
        expect([...handled.values()].every((count) => count === 1)).toBe(true)
        expect(redeliveries).toBe(0) // unacked ones come back, but acked ones never do
        yield* eventually(
          "the queue is empty",
          Effect.map(queue.depth(r), (d) => d.high + d.normal === 0),
        )
      }),
  )

  it.effect(
    "keeps FIFO when a delivery is lost in limbo (sent to a fetch that had gone): newer ones never overtake it",
    () =>
      Effect.gen(function* () {
        const queue = yield* RecipientQueue
        const r = unique("limbo")
        const got = yield* Effect.scoped(
          Effect.gen(function* () {
            const session = yield* queue.openSession(r)
            yield* queue.enqueue(r, { i: 0 }, { priority: "normal" })
            const first = yield* take(session, 1)
            yield* eventually(
              "the ack is applied",
              Effect.map(queue.depth(r), (d) => d.normal === 0),
            )
            yield* deliverIntoLimbo(r, "normal", { i: 1 })
            for (let i = 2; i < 5; i++) yield* queue.enqueue(r, { i }, { priority: "normal" })
            const rest = yield* take(session, 4, { timeoutMs: 15_000 })
            return [...first, ...rest]
          }),
        )
        expect(ids(got)).toEqual([0, 1, 2, 3, 4])
        expect(got[1]!.redelivered).toBe(true) // it had been delivered (into limbo) before
      }),
  )

  it.effect(
    "delivers a doorbell message lost in limbo with nothing after it within consumerIdleMs, not after ack_wait",
    () =>
      Effect.gen(function* () {
        const queue = yield* RecipientQueue
        const r = unique("limbo-last")
        const got = yield* Effect.scoped(
          Effect.gen(function* () {
            const session = yield* queue.openSession(r)
            yield* queue.enqueue(r, { i: 0 }, { priority: "high" })
            yield* take(session, 1)
            yield* deliverIntoLimbo(r, "high", { i: 1 })
            // Nothing else comes for this lane: only the lane's own check before dropping its
            // consumer (consumerIdleMs, 5 s) finds the message.
            return yield* take(session, 1, { timeoutMs: 20_000 })
          }),
        )
        expect(ids(got)).toEqual([1])
      }),
  )

  it.effect("delivers the messages of 3 concurrent producers complete and uncorrupted", () =>
    Effect.gen(function* () {
      const queue = yield* RecipientQueue
      const r = unique("multi")
      const producer = (p: number) =>
        Effect.forEach(
          Array.from({ length: 100 }, (_, i) => i),
          (i) =>
            queue.enqueue(r, { p, i, body: `${p}:${i}:${"x".repeat(i)}` }, { producer: `producer-${p}` }),
        )
      yield* Effect.all([producer(0), producer(1), producer(2)], { concurrency: "unbounded" })
      const got = yield* Effect.scoped(
        Effect.flatMap(queue.openSession(r, { maxInFlight: 50 }), (s) => take(s, 300)),
      )
      for (const p of [0, 1, 2]) {
        const mine = got
          .filter((d) => d.producer === `producer-${p}`)
          .map((d) => d.payload as { p: number; i: number; body: string })
        expect(mine.map((m) => m.i)).toEqual(Array.from({ length: 100 }, (_, i) => i)) // each producer's order holds
        expect(mine.every((m) => m.body === `${m.p}:${m.i}:${"x".repeat(m.i)}`)).toBe(true)
      }
    }),
  )

  it.effect("hands everything unacked to a newer session on another node at once, in order", () =>
    Effect.gen(function* () {
      const a = yield* RecipientQueue
      const { queue: b } = yield* buildQueue(settings)
      const r = unique("takeover")
      for (let i = 0; i < 20; i++) yield* a.enqueue(r, { i })
      const scopeA = yield* Scope.make()
      const sessionA = yield* Scope.provide(scopeA)(a.openSession(r, { maxInFlight: 8 }))
      const firstA = yield* take(sessionA, 5) // acked
      yield* take(sessionA, 3, { ack: false }) // in flight when B takes over
      const started = Date.now()
      const got = yield* Effect.scoped(
        Effect.gen(function* () {
          const sessionB = yield* b.openSession(r)
          expect(yield* sessionA.ended).toBe("taken-over")
          return yield* take(sessionB, 15)
        }),
      )
      expect(Date.now() - started).toBeLessThan(10_000) // far below ack_wait (120 s)
      expect(ids(firstA)).toEqual([0, 1, 2, 3, 4])
      expect(ids(got)).toEqual(Array.from({ length: 15 }, (_, i) => i + 5))
      expect(got.slice(0, 3).every((d) => d.redelivered)).toBe(true)
      expect(got.slice(3).some((d) => d.redelivered)).toBe(false)
      yield* Scope.close(scopeA, Exit.void)
    }),
  )

  it.effect("refuses a session whose connection is older than the live one's, wherever it opens", () =>
    Effect.gen(function* () {
      const a = yield* RecipientQueue
      const { queue: b } = yield* buildQueue(settings)
      const r = unique("late")
      for (let i = 0; i < 4; i++) yield* a.enqueue(r, { i })
      const live = yield* b.openSession(r, { since: Date.now() })
      const first = yield* take(live, 2, { ack: false })
      // A socket accepted earlier whose session only now gets to open (it waited for admission).
      const stale = yield* Effect.flip(a.openSession(r, { since: Date.now() - 5_000 }))
      expect(stale.reason._tag).toBe("SessionClosed")
      const rest = yield* take(live, 2)
      expect(ids([...first, ...rest])).toEqual([0, 1, 2, 3])
      expect(live.unacked()).toBe(2)
    }),
  )

  it.effect("takes over from a session whose process died without closing, with no ack_wait stall", () =>
    Effect.gen(function* () {
      const b = yield* RecipientQueue
      const r = unique("crash")
      for (let i = 0; i < 10; i++) yield* b.enqueue(r, { i })
      // A "process" of its own, whose connection dies under an open session: no session end,
      // no consumer clean-up, 4 deliveries unacked.
      const dead = yield* buildQueue(settings)
      const deadSession = yield* dead.queue.openSession(r, { maxInFlight: 4 })
      yield* take(deadSession, 4, { ack: false })
      yield* Effect.promise(() => dead.conn.nc.close())

      const started = Date.now()
      const got = yield* Effect.scoped(Effect.flatMap(b.openSession(r), (s) => take(s, 10)))
      expect(Date.now() - started).toBeLessThan(10_000)
      expect(ids(got)).toEqual(Array.from({ length: 10 }, (_, i) => i))
      expect(got.slice(0, 4).every((d) => d.redelivered)).toBe(true)
    }),
  )
})
