import { expect, layer } from "@effect/vitest"
import { priorities } from "@holdover/protocol"
import { featuresOf, NatsConnection, RecipientQueue, type Delivery } from "@holdover/queue"
import { Effect, Exit, Fiber, Layer, Scope } from "effect"
import { TestClock } from "effect/testing"
import { buildQueue, eventually, queueLayer, take, TestNats, unique } from "./support.ts"

// Two independent connections to one server, like two gateway processes sharing JetStream.
const settings = { namespace: unique("S").toUpperCase(), subjectPrefix: unique("s") }

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
    "delivers messages published while sessions open and reconnect: each acked once, FIFO in every lane",
    () =>
      Effect.gen(function* () {
        const queue = yield* RecipientQueue
        const r = unique("live")
        const n = 400
        // Published while sessions come and go: live copies, reads and opens overlap.
        const producing = yield* Effect.forkChild(
          Effect.forEach(
            Array.from({ length: n }, (_, i) => i),
            (i) =>
              Effect.andThen(
                queue.enqueue(r, { i }, { priority: priorities[i % priorities.length]! }),
                i % 20 === 19 ? Effect.sleep("5 millis") : Effect.void, // paced: most arrive live
              ),
            { discard: true },
          ),
        )
        const acked = new Set<number>()
        for (let cycle = 0; cycle < 60 && acked.size < n; cycle++) {
          const got = yield* Effect.scoped(
            Effect.flatMap(queue.openSession(r, { maxInFlight: 8 }), (session) =>
              take(session, Math.min(25, n - acked.size)),
            ),
          )
          for (const lane of priorities) {
            const order = got.filter((d) => d.priority === lane).map((d) => (d.payload as { i: number }).i)
            expect(order).toEqual([...order].sort((a, b) => a - b)) // FIFO within the lane
          }
          for (const d of got) {
            const i = (d.payload as { i: number }).i
            expect([i, acked.has(i)]).toEqual([i, false]) // an acked message never comes back
            acked.add(i)
          }
        }
        yield* Fiber.join(producing)
        expect(acked.size).toBe(n)
        yield* eventually(
          "the queue is empty",
          Effect.map(queue.depth(r), (d) => d.critical + d.high + d.normal + d.low === 0),
        )
      }),
  )

  it.effect(
    "holds no JetStream consumer while it drains a backlog and live messages, and leaves none behind",
    () =>
      Effect.gen(function* () {
        const queue = yield* RecipientQueue
        const { jsm } = yield* NatsConnection
        const r = unique("noconsumer")
        for (let i = 0; i < 30; i++)
          yield* queue.enqueue(r, { i }, { priority: i % 2 === 0 ? "high" : "low" })
        const consumers = Effect.promise(async () => {
          let total = 0
          for (const priority of priorities)
            total += (await jsm.streams.info(`${settings.namespace}_${priority.toUpperCase()}`)).state
              .consumer_count
          return total
        })
        const got = yield* Effect.scoped(
          Effect.gen(function* () {
            const session = yield* queue.openSession(r, { maxInFlight: 4 })
            expect(session.pending).toEqual({ critical: 0, high: 15, normal: 0, low: 15 })
            const backlog = yield* take(session, 30)
            expect(yield* consumers).toBe(0)
            yield* queue.enqueue(r, { i: 30 }, { priority: "normal" })
            return [...backlog, ...(yield* take(session, 1))]
          }),
        )
        expect(ids(got)).toEqual([
          ...Array.from({ length: 15 }, (_, i) => i * 2),
          ...Array.from({ length: 15 }, (_, i) => i * 2 + 1),
          30,
        ])
        expect(yield* consumers).toBe(0)
        yield* eventually(
          "the queue is empty",
          Effect.map(queue.depth(r), (d) => d.critical + d.high + d.normal + d.low === 0),
        )
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

  it.effect(
    "reads a long backlog while producers append to it and to other recipients: every message once, in order",
    () =>
      Effect.gen(function* () {
        const queue = yield* RecipientQueue
        const r = unique("long")
        const other = unique("other")
        for (let i = 0; i < 400; i++) yield* queue.enqueue(r, { i })
        const got = yield* Effect.scoped(
          Effect.gen(function* () {
            const session = yield* queue.openSession(r, { maxInFlight: 64 })
            // Live appends while the backlog is read (without batched gets, reads of a contiguous
            // backlog are gets side by side: a message stored meanwhile must not be skipped).
            const appending = yield* Effect.forkChild(
              Effect.forEach(
                Array.from({ length: 200 }, (_, k) => 400 + k),
                (i) =>
                  Effect.andThen(
                    queue.enqueue(r, { i }),
                    i % 2 === 0 ? queue.enqueue(other, { i }) : Effect.void,
                  ),
              ),
            )
            const all = yield* take(session, 600, { timeoutMs: 30_000 })
            yield* Fiber.join(appending)
            return all
          }),
        )
        const seen = ids(got)
        expect(new Set(seen).size).toBe(600)
        expect(seen.slice(0, 400)).toEqual(Array.from({ length: 400 }, (_, i) => i))
        expect(seen).toEqual([...seen].sort((a, b) => a - b))
        yield* eventually(
          "the queue is empty",
          Effect.map(queue.depth(r), (d) => d.normal === 0),
        )
      }),
  )

  it.effect(
    "counts each priority's backlog for the welcome, without a JetStream API call where gets tell counts (2.11+)",
    () =>
      Effect.gen(function* () {
        const queue = yield* RecipientQueue
        const conn = yield* NatsConnection
        const server = yield* TestNats
        const r = unique("count")
        // More critical ones than one batched read takes (256): their count is not the read's.
        const stored = { critical: 300, high: 0, normal: 2, low: 5 }
        for (const priority of priorities)
          for (let i = 0; i < stored[priority]; i++) yield* queue.enqueue(r, { i }, { priority })
        // Gets are not JetStream API calls; STREAM.INFO is.
        const apiCalls = Effect.promise(async () => {
          const jsz = (await (await fetch(`${server.monitorUrl}/jsz`)).json()) as { api: { total: number } }
          return jsz.api.total
        })
        const before = yield* apiCalls
        const pending = yield* Effect.scoped(Effect.map(queue.openSession(r), (session) => session.pending))
        const calls = (yield* apiCalls) - before
        expect(pending).toEqual(stored)
        // Nothing was delivered, so the session's end purged nothing either.
        expect(calls).toBe(featuresOf(conn.serverVersion()).batchedDirectGet ? 0 : 3)
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

  it.effect(
    "keeps strict priority when the caller acks each delivery the moment it gets it (the first hand-outs wait for the session record)",
    () =>
      Effect.gen(function* () {
        const queue = yield* RecipientQueue
        const r = unique("inline-ack")
        // maxInFlight 3: the three critical messages are handed out first (held until the record
        // says "open"); an ack given while they are handed over makes room for the normal ones,
        // which must still come after all three.
        for (let i = 0; i < 3; i++) yield* queue.enqueue(r, { i }, { priority: "critical" })
        for (let i = 3; i < 6; i++) yield* queue.enqueue(r, { i }, { priority: "normal" })
        const got = yield* Effect.scoped(
          Effect.gen(function* () {
            const session = yield* queue.openSession(r, { maxInFlight: 3 })
            const out: Array<Delivery> = []
            while (out.length < 6) {
              const delivery = yield* session.next
              if (!delivery) break
              out.push(delivery)
              yield* session.ack([delivery.id]) // at once, in the same turn
            }
            return out
          }),
        )
        expect(got.map((d) => d.priority)).toEqual([
          "critical",
          "critical",
          "critical",
          "normal",
          "normal",
          "normal",
        ])
        expect(ids(got)).toEqual([0, 1, 2, 3, 4, 5])
      }),
  )
  it.effect(
    "deletes a message that expires while it waits for room when the session's clock reaches its expiry, before any ack",
    () =>
      Effect.gen(function* () {
        const queue = yield* RecipientQueue
        const r = unique("expiring")
        // The session's timers run on a TestClock from now: a minute passes at once below, while
        // the stream (on real time) keeps the message.
        yield* TestClock.setTime(Date.now())
        yield* queue.enqueue(r, { i: 0 }, { priority: "normal" })
        yield* queue.enqueue(r, { i: 1 }, { priority: "normal", ttlMs: 60_000 })
        yield* queue.enqueue(r, { i: 2 }, { priority: "normal" })
        yield* Effect.scoped(
          Effect.gen(function* () {
            const session = yield* queue.openSession(r, { maxInFlight: 1 })
            const [first] = yield* take(session, 1, { ack: false })
            expect(first?.payload).toEqual({ i: 0 })
            // i: 1 waits for room; its expiry passes on the session's clock and nobody acks.
            const deadline = Date.now() + 10_000
            for (;;) {
              yield* TestClock.adjust("61 seconds")
              if ((yield* queue.depth(r)).normal === 2) break
              if (Date.now() > deadline)
                return yield* Effect.die(new Error("the expired message was not deleted"))
              yield* TestClock.withLive(Effect.sleep("20 millis"))
            }
            expect(session.stats().expired).toBe(1)
            yield* session.ack([first!.id])
            expect(ids(yield* take(session, 1))).toEqual([2])
          }),
        )
      }).pipe(Effect.provide(TestClock.layer())),
  )
})
