import { expect, layer } from "@effect/vitest"
import { priorities } from "@holdover/protocol"
import { featuresOf, NatsConnection, QueueConfig, RecipientQueue, streamName } from "@holdover/queue"
import { Effect, Exit, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import { eventually, queueLayer, take, TestNats, unique, waitUntil } from "./support.ts"

const consumersOf = Effect.gen(function* () {
  const { jsm } = yield* NatsConnection
  const settings = yield* QueueConfig
  let total = 0
  for (const priority of priorities) {
    total += (yield* Effect.promise(() => jsm.streams.info(streamName(settings, priority)))).state
      .consumer_count
  }
  return total
})

/** Acks are asynchronous (fire-and-forget, as in JetStream): the queue is empty once they land. */
const emptyAfter = (recipient: string) =>
  Effect.gen(function* () {
    const queue = yield* RecipientQueue
    yield* eventually(
      `the queue of ${recipient} is empty`,
      Effect.map(queue.depth(recipient), (d) => d.critical + d.high + d.normal + d.low === 0),
    )
  })

layer(queueLayer().pipe(Layer.provideMerge(TestNats.layer)), {
  excludeTestServices: true,
})("RecipientQueue", (it) => {
  {
    it.effect(
      "delivers a message queued while offline on reconnect, with id, payload and timestamps intact",
      () =>
        Effect.gen(function* () {
          const queue = yield* RecipientQueue
          const alice = unique("alice")
          const before = Date.now()
          const queued = yield* queue.enqueue(
            alice,
            { text: "hi", n: [1, 2] },
            { priority: "high", id: "order-42", producer: "shop" },
          )
          expect(queued).toMatchObject({
            _tag: "Queued",
            id: "order-42",
            priority: "high",
            duplicate: false,
          })
          expect(yield* queue.depth(alice)).toEqual({ critical: 0, high: 1, normal: 0, low: 0 })

          const [delivery] = yield* Effect.scoped(
            Effect.gen(function* () {
              const session = yield* queue.openSession(alice)
              expect(session.pending).toEqual({ critical: 0, high: 1, normal: 0, low: 0 })
              return yield* take(session, 1)
            }),
          )
          expect(delivery).toMatchObject({
            id: "order-42",
            priority: "high",
            payload: { text: "hi", n: [1, 2] },
            producer: "shop",
            redelivered: false,
          })
          const enqueuedAt = Date.parse(delivery!.enqueuedAt)
          expect(enqueuedAt).toBeGreaterThanOrEqual(before - 5)
          expect(Date.parse(delivery!.expiresAt) - enqueuedAt).toBe(24 * 3_600_000)
          if (queued._tag === "Queued") expect(queued.expiresAt).toBe(delivery!.expiresAt)
          yield* emptyAfter(alice)
        }),
    )

    it.effect("keeps FIFO order over many messages, without duplicates", () =>
      Effect.gen(function* () {
        const queue = yield* RecipientQueue
        const bob = unique("bob")
        const n = 500
        for (let i = 0; i < n; i++) yield* queue.enqueue(bob, { i })
        const got = yield* Effect.scoped(
          Effect.flatMap(queue.openSession(bob, { maxInFlight: 64 }), (session) => take(session, n)),
        )
        expect(got.map((d) => (d.payload as { i: number }).i)).toEqual(Array.from({ length: n }, (_, i) => i))
        expect(new Set(got.map((d) => d.id)).size).toBe(n)
        yield* emptyAfter(bob)
      }),
    )

    it.effect(
      "replays a mixed backlog critical → high → normal → low, FIFO inside each, including messages that arrive during replay",
      () =>
        Effect.gen(function* () {
          const queue = yield* RecipientQueue
          const carol = unique("carol")
          const order = ["low", "normal", "critical", "high", "low", "critical", "normal", "high"] as const
          for (let i = 0; i < 40; i++)
            yield* queue.enqueue(
              carol,
              { i, p: order[i % order.length] },
              { priority: order[i % order.length] },
            )

          const got = yield* Effect.scoped(
            Effect.gen(function* () {
              const session = yield* queue.openSession(carol, { maxInFlight: 1 })
              const first = yield* take(session, 5) // critical ones are under way…
              // …when new messages of every priority arrive: they take their place in the order.
              yield* queue.enqueue(carol, { i: 100, p: "low" }, { priority: "low" })
              yield* queue.enqueue(carol, { i: 101, p: "critical" }, { priority: "critical" })
              yield* queue.enqueue(carol, { i: 102, p: "high" }, { priority: "high" })
              return [...first, ...(yield* take(session, 38))]
            }),
          )
          const rank = (p: string) => priorities.indexOf(p as never)
          const ranks = got.map((d) => rank(d.priority))
          expect(ranks).toEqual([...ranks].sort((a, b) => a - b))
          for (const priority of priorities) {
            const seq = got.filter((d) => d.priority === priority).map((d) => (d.payload as { i: number }).i)
            expect(seq).toEqual([...seq].sort((a, b) => a - b))
          }
          expect(
            got
              .filter((d) => d.priority === "critical")
              .map((d) => (d.payload as { i: number }).i)
              .at(-1),
          ).toBe(101)
          expect(got.at(-1)?.payload).toEqual({ i: 100, p: "low" })
          yield* emptyAfter(carol)
        }),
    )

    it.effect(
      "never delivers an expired message, delivers fresh ones, and removes the expired from the stream",
      () =>
        Effect.gen(function* () {
          const queue = yield* RecipientQueue
          const dave = unique("dave")
          const short = [
            yield* queue.enqueue(dave, "short-1", { ttlMs: 150 }),
            yield* queue.enqueue(dave, "short-2", { ttlMs: 150, priority: "critical" }),
          ].flatMap((result) => (result._tag === "Queued" ? [result.expiresAt] : []))
          yield* queue.enqueue(dave, "long", { ttlMs: 60_000 })
          expect(short).toHaveLength(2)
          // The short TTLs pass while the recipient is offline.
          yield* Effect.promise(() =>
            waitUntil("the short TTLs have passed", () => short.every((at) => Date.now() > Date.parse(at))),
          )
          const { got, expired } = yield* Effect.scoped(
            Effect.gen(function* () {
              const session = yield* queue.openSession(dave)
              const got = yield* take(session, 1)
              yield* eventually(
                "both expired messages are removed",
                Effect.sync(() => session.stats().expired === 2),
              )
              return { got, expired: session.stats().expired }
            }),
          )
          expect(got.map((d) => d.payload)).toEqual(["long"])
          expect(expired).toBe(2)
          yield* emptyAfter(dave)
        }),
    )

    it.effect(
      "removes a message from the stream when its own TTL passes, with no session (nats-server 2.11+)",
      (context) =>
        Effect.gen(function* () {
          const { serverVersion } = yield* NatsConnection
          // Older servers have no per-message TTL: there the message goes when a session meets it (above).
          if (!featuresOf(serverVersion()).messageTtl) return context.skip(`nats-server ${serverVersion()}`)
          const queue = yield* RecipientQueue
          const erin = unique("erin")
          yield* queue.enqueue(erin, "short", { ttlMs: 1_000 })
          yield* queue.enqueue(erin, "long", { ttlMs: 60_000 })
          expect((yield* queue.depth(erin)).normal).toBe(2)
          yield* eventually(
            "the short-lived message left the stream",
            Effect.map(queue.depth(erin), (d) => d.normal === 1),
            10_000,
          )
          const got = yield* Effect.scoped(Effect.flatMap(queue.openSession(erin), (s) => take(s, 1)))
          expect(got.map((d) => d.payload)).toEqual(["long"])
          yield* emptyAfter(erin)
        }),
    )

    it.effect(
      "refuses a TTL above the priority's max age, an empty recipient and a payload over the limit",
      () =>
        Effect.gen(function* () {
          const queue = yield* RecipientQueue
          const eve = unique("eve")
          const tooLong = yield* Effect.exit(queue.enqueue(eve, 1, { priority: "low", ttlMs: 11 * 60_000 }))
          expect(Exit.isFailure(tooLong) && JSON.stringify(tooLong.cause)).toContain("InvalidMessage")
          const failures = yield* Effect.all([
            Effect.flip(queue.enqueue("", 1)),
            Effect.flip(queue.enqueue(eve, "x".repeat(70_000))),
            Effect.flip(queue.enqueue(eve, undefined)),
          ])
          expect(failures.map((e) => [e.reason._tag, e.code, e.status])).toEqual([
            ["InvalidMessage", "INVALID_MESSAGE", 400],
            ["MessageTooLarge", "MESSAGE_TOO_LARGE", 413],
            ["InvalidMessage", "INVALID_MESSAGE", 400],
          ])
          yield* emptyAfter(eve)
        }),
    )

    it.effect("queues a repeated id once and answers with the first result", () =>
      Effect.gen(function* () {
        const queue = yield* RecipientQueue
        const frank = unique("frank")
        const first = yield* queue.enqueue(frank, { v: 1 }, { id: "same" })
        const second = yield* queue.enqueue(frank, { v: 2 }, { id: "same" })
        expect(second).toMatchObject({ _tag: "Queued", id: "same", duplicate: true })
        if (first._tag === "Queued" && second._tag === "Queued") {
          expect(second.seq).toBe(first.seq)
          expect(second.expiresAt).toBe(first.expiresAt)
        }
        expect((yield* queue.depth(frank)).normal).toBe(1)
        const got = yield* Effect.scoped(Effect.flatMap(queue.openSession(frank), (s) => take(s, 1)))
        expect(got[0]?.payload).toEqual({ v: 1 })
      }),
    )

    it.effect(
      "deduplicates an id within (producer, recipient) only, and answers a repeat with the first result whatever its priority",
      () =>
        Effect.gen(function* () {
          const queue = yield* RecipientQueue
          const alice = unique("alice")
          const bob = unique("bob")
          const id = unique("order")
          const first = yield* queue.enqueue(alice, "p1→alice", { id, producer: "p1", priority: "high" })
          // Another recipient, another producer: never suppressed by p1's id.
          const toBob = yield* queue.enqueue(bob, "p2→bob", { id, producer: "p2" })
          const otherProducer = yield* queue.enqueue(alice, "p2→alice", { id, producer: "p2" })
          expect(toBob).toMatchObject({ _tag: "Queued", id, duplicate: false })
          expect(otherProducer).toMatchObject({ _tag: "Queued", id, duplicate: false })
          // The same producer, recipient and id again, with other priorities: the first result.
          for (const priority of ["low", "critical", "high"] as const) {
            const repeat = yield* queue.enqueue(alice, `again ${priority}`, { id, producer: "p1", priority })
            expect(repeat, priority).toMatchObject({ _tag: "Queued", id, priority: "high", duplicate: true })
            if (first._tag === "Queued" && repeat._tag === "Queued") {
              expect(repeat.seq).toBe(first.seq)
              expect(repeat.expiresAt).toBe(first.expiresAt)
            }
          }
          expect(yield* queue.depth(alice)).toEqual({ critical: 0, high: 1, normal: 1, low: 0 })
          expect(yield* queue.depth(bob)).toEqual({ critical: 0, high: 0, normal: 1, low: 0 })
          const got = yield* Effect.scoped(Effect.flatMap(queue.openSession(alice), (s) => take(s, 2)))
          expect(got.map((d) => [d.id, d.priority, d.payload, d.producer])).toEqual([
            [id, "high", "p1→alice", "p1"],
            [id, "normal", "p2→alice", "p2"],
          ])
          const bobs = yield* Effect.scoped(Effect.flatMap(queue.openSession(bob), (s) => take(s, 1)))
          expect(bobs.map((d) => [d.id, d.payload])).toEqual([[id, "p2→bob"]])
        }),
    )

    it.effect("keeps every recipient's messages apart, whatever its id", () =>
      Effect.gen(function* () {
        const queue = yield* RecipientQueue
        const base = unique("iso")
        const ids = [
          `${base}.a.b`,
          `${base}.a.*`,
          `${base}.>`,
          `${base} with spaces`,
          `${base}-🙂-ü`,
          `${base}.a`,
          "*",
          ">",
          "a".repeat(256),
        ]
        for (const id of ids) yield* queue.enqueue(id, { for: id })
        for (const id of ids) {
          const got = yield* Effect.scoped(Effect.flatMap(queue.openSession(id), (s) => take(s, 1)))
          expect(got[0]?.payload).toEqual({ for: id })
          yield* emptyAfter(id)
        }
      }),
    )

    it.effect("delivers messages that arrive while connected, and holds no consumer while idle", () =>
      Effect.gen(function* () {
        const queue = yield* RecipientQueue
        const { nc } = yield* NatsConnection
        const settings = yield* QueueConfig
        const gina = unique("gina")
        // The session's timers run on a TestClock (from now): an idle hour passes at once below.
        yield* TestClock.setTime(Date.now())
        yield* Effect.scoped(
          Effect.gen(function* () {
            const session = yield* queue.openSession(gina)
            expect(yield* consumersOf).toBe(0)
            yield* queue.enqueue(gina, "live-1", { priority: "low" })
            expect((yield* take(session, 1))[0]?.payload).toBe("live-1")
            // A consumer of the session waits for the next delivery, as a gateway always does.
            const waiting = yield* Effect.forkChild(take(session, 1))
            yield* TestClock.withLive(emptyAfter(gina))
            expect(yield* consumersOf).toBe(0)
            // …and stays without one: an idle session makes no JetStream API calls at all.
            const calls: Array<string> = []
            const api = nc.subscribe("$JS.API.>", { callback: (_error, msg) => void calls.push(msg.subject) })
            yield* Effect.promise(() => nc.flush())
            yield* TestClock.adjust("1 hour") // every timer the session holds falls due
            // A marker through the same session: live-2 is delivered after whatever the hour set
            // off — from the stream's copy, without a read — and its ack is purged.
            yield* queue.enqueue(gina, "live-2", { priority: "critical" })
            expect((yield* Fiber.join(waiting))[0]?.payload).toBe("live-2")
            const critical = streamName(settings, "critical")
            yield* Effect.promise(() =>
              waitUntil("the marker's purge", () => calls.includes(`$JS.API.STREAM.PURGE.${critical}`)),
            )
            api.unsubscribe()
            expect(calls.filter((subject) => !subject.split(".").includes(critical))).toEqual([])
            expect(calls.filter((subject) => subject.includes("GET"))).toEqual([])
          }),
        )
        yield* TestClock.withLive(emptyAfter(gina))
      }).pipe(Effect.provide(TestClock.layer())),
    )
  }
})
