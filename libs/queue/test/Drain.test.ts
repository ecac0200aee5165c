// The drain policy on its own: event sequences in, decisions out, no NATS and no clock.
import type { Priority } from "@holdover/protocol"
import { describe, expect, it } from "vitest"
import {
  acceptGets,
  Drain,
  retryDelayMs,
  type Decision,
  type DrainEvent,
  type Readable,
} from "@holdover/queue"

interface Msg extends Readable {
  readonly lane: Priority
}
const msg = (lane: Priority, seq: number, expiresAtMs = Number.MAX_SAFE_INTEGER): Msg => ({
  lane,
  seq,
  id: `${lane}-${seq}`,
  expiresAtMs,
})

const drain = (options: Partial<ConstructorParameters<typeof Drain<Msg>>[0]> = {}) =>
  new Drain<Msg>({ maxInFlight: 10, readBatch: 8, random: () => 0, ...options })

const reads = (decisions: ReadonlyArray<Decision<Msg>>) =>
  decisions.flatMap((d) => (d._tag === "Read" ? [[d.lane, d.fromSeq, d.max]] : []))
const delivered = (decisions: ReadonlyArray<Decision<Msg>>) =>
  decisions.flatMap((d) => (d._tag === "Deliver" ? [[d.message.id, d.redelivered]] : []))
const deletes = (decisions: ReadonlyArray<Decision<Msg>>) =>
  decisions.flatMap((d) => (d._tag === "Delete" ? [[d.lane, d.seqs, d.reason]] : []))
const purges = (decisions: ReadonlyArray<Decision<Msg>>) =>
  decisions.flatMap((d) => (d._tag === "Purge" ? [[d.lane, d.beforeSeq]] : []))
const wake = (decisions: ReadonlyArray<Decision<Msg>>) =>
  decisions.find((d): d is Extract<Decision<Msg>, { _tag: "WakeAt" }> => d._tag === "WakeAt")?.at

/** Opens a drain and answers its first reads: `found` per lane, everything else empty. */
const opened = (found: Partial<Record<Priority, Array<Msg>>>, options = {}) => {
  const d = drain(options)
  const first = d.handle({ _tag: "Tick" }, 0)
  const out: Array<Decision<Msg>> = []
  for (const [lane, , max] of reads(first) as Array<[Priority, number, number]>) {
    const messages = found[lane] ?? []
    out.push(...d.handle({ _tag: "ReadDone", lane, messages, exhausted: messages.length < max }, 0))
  }
  return { d, first, out }
}

describe("the drain policy", () => {
  it("reads every lane at open: the top one in a batch, the others once to learn whether they hold anything", () => {
    const { first } = opened({})
    expect(reads(first)).toEqual([
      ["critical", 0, 8],
      ["high", 0, 1],
      ["normal", 0, 1],
      ["low", 0, 1],
    ])
  })

  it("hands nothing of a lower lane out while a higher lane may still hold messages", () => {
    const d = drain()
    d.handle({ _tag: "Tick" }, 0)
    const early = d.handle({ _tag: "ReadDone", lane: "low", messages: [msg("low", 3)], exhausted: true }, 0)
    expect(delivered(early)).toEqual([])
    d.handle({ _tag: "ReadDone", lane: "high", messages: [], exhausted: true }, 0)
    d.handle({ _tag: "ReadDone", lane: "normal", messages: [], exhausted: true }, 0)
    const last = d.handle({ _tag: "ReadDone", lane: "critical", messages: [], exhausted: true }, 0)
    expect(delivered(last)).toEqual([["low-3", false]])
  })

  it("replays critical before high before normal before low, FIFO inside each, within maxInFlight", () => {
    const { d, out } = opened(
      { critical: [msg("critical", 7)], high: [msg("high", 2)], low: [msg("low", 1)] },
      { maxInFlight: 2 },
    )
    expect(delivered(out)).toEqual([
      ["critical-7", false],
      ["high-2", false],
    ])
    // critical read its batch and found 1 (exhausted); high's discovery read found 1 and may hold
    // more: high is the lane being drained now, and reads ahead in a batch.
    expect(reads(out)).toContainEqual(["high", 3, 8])
    const afterAck = d.handle({ _tag: "Acked", ids: ["critical-7"] }, 1)
    expect(purges(afterAck)).toEqual([["critical", 8]])
    expect(reads(afterAck)).toEqual([])
    expect(delivered(afterAck)).toEqual([])
    const more = d.handle(
      { _tag: "ReadDone", lane: "high", messages: [msg("high", 5), msg("high", 9)], exhausted: true },
      1,
    )
    expect(delivered(more)).toEqual([["high-5", false]])
    const next = d.handle({ _tag: "Acked", ids: ["high-2", "high-5", "unknown"] }, 2)
    // Everything of high below the oldest message still out (high-9, handed out just now) goes.
    expect(purges(next)).toEqual([["high", 9]])
    expect(delivered(next)).toEqual([
      ["high-9", false],
      ["low-1", false],
    ])
    expect(d.stats).toMatchObject({ delivered: 5, acked: 3 })
  })

  it("bounds the payload bytes in flight too, always letting one message out however large", () => {
    const sized = (seq: number, bytes: number): Msg => ({ ...msg("normal", seq), bytes })
    const { d, out } = opened(
      { normal: [sized(1, 400), sized(2, 500), sized(3, 300), sized(4, 5000), sized(5, 10)] },
      { maxInFlight: 10, maxInFlightBytes: 1000 },
    )
    // 400 + 500 fit; 300 more would make 1200.
    expect(delivered(out)).toEqual([
      ["normal-1", false],
      ["normal-2", false],
    ])
    expect(d.inFlightBytes).toBe(900)
    expect(delivered(d.handle({ _tag: "Acked", ids: ["normal-1"] }, 1))).toEqual([["normal-3", false]])
    // 5000 alone is over the bound: it waits until nothing is out, then goes alone.
    expect(delivered(d.handle({ _tag: "Acked", ids: ["normal-2"] }, 2))).toEqual([])
    expect(delivered(d.handle({ _tag: "Acked", ids: ["normal-3"] }, 3))).toEqual([["normal-4", false]])
    expect(delivered(d.handle({ _tag: "Acked", ids: ["normal-4"] }, 4))).toEqual([["normal-5", false]])
    expect(d.inFlightBytes).toBe(10)
    // A message counted expired unsent gives its bytes back as well.
    d.handle({ _tag: "ExpiredUnsent", ids: ["normal-5"] }, 5)
    expect([d.inFlightCount, d.inFlightBytes]).toEqual([0, 0])
  })

  it("reads from the cursor after the last message, never backwards", () => {
    const { d } = opened({})
    d.handle({ _tag: "Doorbell", lane: "normal" }, 1)
    const stale = d.handle(
      { _tag: "ReadDone", lane: "normal", messages: [msg("normal", 40)], exhausted: true },
      1,
    )
    expect(delivered(stale)).toEqual([["normal-40", false]])
    const again = d.handle({ _tag: "Doorbell", lane: "normal" }, 2)
    expect(reads(again)).toEqual([["normal", 41, 8]])
    // A lagging replica answering with an older message than the cursor: ignored.
    const old = d.handle(
      { _tag: "ReadDone", lane: "normal", messages: [msg("normal", 40)], exhausted: true },
      2,
    )
    expect(delivered(old)).toEqual([])
  })

  it("takes a live copy whose predecessor lies behind the cursor as the lane's next message, without a read", () => {
    const copy = (seq: number, previousSeq: number) =>
      ({ _tag: "Copy", lane: "high", message: msg("high", seq), previousSeq }) as const
    const cases: ReadonlyArray<readonly [string, ReturnType<typeof copy>, Array<unknown>, Array<unknown>]> = [
      ["the first message of an empty lane", copy(5, 0), [["high-5", false]], []],
      ["the one stored right after it", copy(9, 5), [["high-9", false]], []],
      [
        "one whose predecessor was removed (expired) before it was stored",
        copy(12, 3),
        [["high-12", false]],
        [],
      ],
      ["a copy of a message already taken: ignored", copy(9, 5), [], []],
      // 14 is stored and unread (its copy was lost): the lane reads from its cursor instead.
      ["one with an unread predecessor rings the doorbell", copy(20, 14), [], [["high", 13, 8]]],
    ]
    const { d } = opened({})
    for (const [what, event, handed, read] of cases) {
      const out = d.handle(event, 1)
      expect([what, delivered(out), reads(out)]).toEqual([what, handed, read])
    }
    // The read returns what was unread and the copied message again: each is handed out once.
    const caught = d.handle(
      { _tag: "ReadDone", lane: "high", messages: [msg("high", 14), msg("high", 20)], exhausted: true },
      2,
    )
    expect(delivered(caught)).toEqual([
      ["high-14", false],
      ["high-20", false],
    ])
    expect(delivered(d.handle(copy(20, 14), 3))).toEqual([])
    expect(delivered(d.handle(copy(21, 20), 3))).toEqual([["high-21", false]])
    expect(d.lane("high").cursor).toBe(22)
  })

  it("takes a copy with no predecessor only into an idle lane known empty, with no doorbell pending", () => {
    // nats-server 2.9 also says 0 when the subject's last message was deleted while older ones
    // stay: a read still owed settles where the lane stands.
    const { d } = opened({})
    d.handle({ _tag: "Doorbell", lane: "normal" }, 1)
    const rung = d.handle({ _tag: "Copy", lane: "normal", message: msg("normal", 4), previousSeq: 0 }, 1)
    expect(delivered(rung)).toEqual([])
    const read = d.handle(
      { _tag: "ReadDone", lane: "normal", messages: [msg("normal", 2), msg("normal", 4)], exhausted: true },
      2,
    )
    expect(delivered(read)).toEqual([
      ["normal-2", false],
      ["normal-4", false],
    ])
    // A read that found only what a copy brought meanwhile owes its doorbell no recheck.
    const { d: e } = opened({})
    e.handle({ _tag: "Copy", lane: "low", message: msg("low", 6), previousSeq: 0 }, 1)
    expect(reads(e.handle({ _tag: "Doorbell", lane: "low" }, 1))).toEqual([["low", 7, 8]])
    const taken = e.handle({ _tag: "Copy", lane: "low", message: msg("low", 7), previousSeq: 6 }, 1)
    expect(delivered(taken)).toEqual([["low-7", false]])
    const late = e.handle({ _tag: "ReadDone", lane: "low", messages: [msg("low", 7)], exhausted: true }, 2)
    expect([delivered(late), reads(late), wake(late)]).toEqual([[], [], undefined])
  })

  it("reads every lane known empty once more when the NATS connection comes back, holding lower lanes until then", () => {
    const { d } = opened({ low: [msg("low", 3)] }, { maxInFlight: 1 })
    const resync = d.handle({ _tag: "Resync" }, 5)
    expect(reads(resync)).toEqual([
      ["critical", 0, 8],
      ["high", 0, 1],
      ["normal", 0, 1],
    ])
    d.handle({ _tag: "ReadDone", lane: "high", messages: [], exhausted: true }, 6)
    d.handle({ _tag: "ReadDone", lane: "normal", messages: [], exhausted: true }, 6)
    // A copy lost while disconnected: the read after the reconnect finds it, before anything lower.
    const found = d.handle(
      { _tag: "ReadDone", lane: "critical", messages: [msg("critical", 9)], exhausted: true },
      6,
    )
    expect(delivered(found)).toEqual([])
    expect(delivered(d.handle({ _tag: "Acked", ids: ["low-3"] }, 7))).toEqual([["critical-9", false]])
    // Nothing found: no rechecks (no doorbell rang).
    expect(wake(d.handle({ _tag: "Resync" }, 8))).toBeUndefined()
  })

  it("reads only the lane of a stream that elected a new leader once more, and only if it is known empty", () => {
    const { d } = opened({ low: [msg("low", 3)] }, { maxInFlight: 1 })
    expect(reads(d.handle({ _tag: "Resync", lane: "high" }, 5))).toEqual([["high", 0, 8]])
    d.handle({ _tag: "ReadDone", lane: "high", messages: [], exhausted: true }, 6)
    // The low lane is not known empty (its message is out): nothing to read again.
    expect(reads(d.handle({ _tag: "Resync", lane: "low" }, 7))).toEqual([])
  })

  it("does not read again for a copy that rang during a read which then found it", () => {
    const { d } = opened({})
    d.handle({ _tag: "Doorbell", lane: "high" }, 1) // a read from 0 under way
    const rung = d.handle({ _tag: "Copy", lane: "high", message: msg("high", 5), previousSeq: 0 }, 1)
    expect(reads(rung)).toEqual([])
    const done = d.handle({ _tag: "ReadDone", lane: "high", messages: [msg("high", 5)], exhausted: true }, 2)
    expect([delivered(done), reads(done), wake(done)]).toEqual([[["high-5", false]], [], undefined])
  })

  it("rings the doorbell instead of buffering a copy when the lane's buffer is full", () => {
    const { d } = opened({}, { maxInFlight: 1 })
    const copy = (seq: number) =>
      ({ _tag: "Copy", lane: "critical", message: msg("critical", seq), previousSeq: seq - 1 }) as const
    expect(delivered(d.handle(copy(1), 1))).toEqual([["critical-1", false]])
    expect(reads(d.handle(copy(2), 1))).toEqual([]) // buffered: no room to hand it out yet
    // No room in the buffer for 3: the lane reads it.
    expect(reads(d.handle(copy(3), 1))).toEqual([["critical", 3, 8]])
    d.handle({ _tag: "ReadDone", lane: "critical", messages: [msg("critical", 3)], exhausted: true }, 2)
    expect(delivered(d.handle({ _tag: "Acked", ids: ["critical-1"] }, 2))).toEqual([["critical-2", false]])
    expect(delivered(d.handle({ _tag: "Acked", ids: ["critical-2"] }, 2))).toEqual([["critical-3", false]])
  })

  it("looks again after growing delays when a doorbell's message is not readable yet, then gives up", () => {
    const { d } = opened({}, { recheckDelaysMs: [2, 5] })
    expect(reads(d.handle({ _tag: "Doorbell", lane: "high" }, 100))).toEqual([["high", 0, 8]])
    const miss = d.handle({ _tag: "ReadDone", lane: "high", messages: [], exhausted: true }, 101)
    expect(reads(miss)).toEqual([])
    expect(wake(miss)).toBe(103)
    expect(reads(d.handle({ _tag: "Tick" }, 102))).toEqual([])
    expect(reads(d.handle({ _tag: "Tick" }, 103))).toEqual([["high", 0, 8]])
    expect(wake(d.handle({ _tag: "ReadDone", lane: "high", messages: [], exhausted: true }, 104))).toBe(109)
    expect(reads(d.handle({ _tag: "Tick" }, 109))).toEqual([["high", 0, 8]])
    const given = d.handle({ _tag: "ReadDone", lane: "high", messages: [], exhausted: true }, 110)
    expect(wake(given)).toBeUndefined()
    expect(reads(d.handle({ _tag: "Tick" }, 10_000))).toEqual([])
  })

  it("holds lower lanes back for a doorbell on a higher lane until its message is read", () => {
    const { d } = opened({ low: [msg("low", 1), msg("low", 2)] }, { maxInFlight: 1 })
    d.handle({ _tag: "Doorbell", lane: "critical" }, 1)
    expect(delivered(d.handle({ _tag: "Acked", ids: ["low-1"] }, 1))).toEqual([])
    const read = d.handle(
      { _tag: "ReadDone", lane: "critical", messages: [msg("critical", 9)], exhausted: true },
      2,
    )
    expect(delivered(read)).toEqual([["critical-9", false]])
    expect(delivered(d.handle({ _tag: "Acked", ids: ["critical-9"] }, 3))).toEqual([["low-2", false]])
  })

  it("lets lower lanes go after a few rechecks when a doorbell's message cannot be found", () => {
    const { d } = opened(
      { low: [msg("low", 1), msg("low", 2)] },
      { maxInFlight: 1, recheckDelaysMs: [1, 1, 1, 1, 1] },
    )
    d.handle({ _tag: "Doorbell", lane: "critical" }, 0)
    d.handle({ _tag: "Acked", ids: ["low-1"] }, 0)
    let now = 0
    const out: Array<Decision<Msg>> = []
    for (let i = 0; i < 4; i++) {
      out.push(...d.handle({ _tag: "ReadDone", lane: "critical", messages: [], exhausted: true }, now))
      now += 1
      out.push(...d.handle({ _tag: "Tick" }, now))
    }
    expect(delivered(out)).toEqual([["low-2", false]])
  })

  it("retries a failed read after a capped exponential delay, holding the lower lanes meanwhile", () => {
    const d = drain()
    d.handle({ _tag: "Tick" }, 0)
    for (const lane of ["high", "normal"] as const)
      d.handle({ _tag: "ReadDone", lane, messages: [], exhausted: true }, 0)
    d.handle({ _tag: "ReadDone", lane: "low", messages: [msg("low", 1)], exhausted: true }, 0)
    const failed = d.handle({ _tag: "ReadFailed", lane: "critical" }, 10)
    expect(wake(failed)).toBe(10 + retryDelayMs(1, 0))
    expect(delivered(failed)).toEqual([])
    const twice = d.handle({ _tag: "ReadFailed", lane: "critical" }, 0) // (as if retried at once)
    expect(wake(twice)).toBe(retryDelayMs(2, 0))
    expect(retryDelayMs(20, 0.999)).toBeLessThanOrEqual(5_000)
    const retried = d.handle({ _tag: "Tick" }, retryDelayMs(2, 0))
    expect(reads(retried)).toEqual([["critical", 0, 8]])
    const done = d.handle({ _tag: "ReadDone", lane: "critical", messages: [], exhausted: true }, 500)
    expect(delivered(done)).toEqual([["low-1", false]])
  })

  it("deletes an expired message unsent and hands out the next one", () => {
    const { out, d } = opened({ normal: [msg("normal", 1, 0), msg("normal", 2)] })
    expect(delivered(out)).toEqual([["normal-2", false]])
    expect(deletes(out)).toEqual([["normal", [1], "expired"]])
    expect(d.stats.expired).toBe(1)
  })

  it("deletes a message that expires while it waits for room when it expires, without waiting for the room", () => {
    const { out, d } = opened(
      { normal: [msg("normal", 1), msg("normal", 2, 50), msg("normal", 3)] },
      { maxInFlight: 1 },
    )
    expect(delivered(out)).toEqual([["normal-1", false]])
    // The window is full: the runner is asked to come back when normal-2 expires…
    expect(wake(out)).toBe(50)
    // …and then normal-2 is deleted at once, while normal-3 still waits.
    const later = d.handle({ _tag: "Tick" }, 60)
    expect(deletes(later)).toEqual([["normal", [2], "expired"]])
    expect(delivered(later)).toEqual([])
    expect(delivered(d.handle({ _tag: "Acked", ids: ["normal-1"] }, 61))).toEqual([["normal-3", false]])
  })

  it("counts a message that expired before the runner could send it as expired, and purges it like an acked one", () => {
    const { d, out } = opened({ normal: [msg("normal", 4, 50), msg("normal", 6)] })
    expect(delivered(out)).toEqual([
      ["normal-4", false],
      ["normal-6", false],
    ])
    expect(purges(d.handle({ _tag: "ExpiredUnsent", ids: ["normal-4", "unknown"] }, 60))).toEqual([
      ["normal", 6],
    ])
    expect([d.inFlightCount, d.stats.expired, d.stats.acked]).toEqual([1, 1, 0])
  })

  it("flags what an earlier session may have sent as redelivered", () => {
    const { d, out } = opened({ high: [msg("high", 4), msg("high", 6)] }, { redeliveredUpTo: { high: 4 } })
    expect(delivered(out)).toEqual([
      ["high-4", true],
      ["high-6", false],
    ])
    expect(d.stats.redelivered).toBe(1)
    // Learnt after the first reads were asked for (the runner reads the session record only
    // when they found something), before their answers.
    const later = drain()
    const first = later.handle({ _tag: "Tick" }, 0)
    later.learnRedelivered({ high: 4 })
    const out2 = reads(first).flatMap(([lane]) =>
      later.handle(
        {
          _tag: "ReadDone",
          lane: lane as Priority,
          messages: lane === "high" ? [msg("high", 4), msg("high", 6)] : [],
          exhausted: true,
        },
        0,
      ),
    )
    expect(delivered(out2)).toEqual([
      ["high-4", true],
      ["high-6", false],
    ])
  })

  it("takes both stored copies of one id with one ack", () => {
    const { d, out } = opened({
      normal: [
        { ...msg("normal", 1), id: "x" },
        { ...msg("normal", 3), id: "x" },
      ],
    })
    expect(delivered(out)).toEqual([
      ["x", false],
      ["x", false],
    ])
    expect(purges(d.handle({ _tag: "Acked", ids: ["x"] }, 1))).toEqual([["normal", 4]])
    expect(d.inFlightCount).toBe(0)
  })

  it("applies acks by one purge per lane below the oldest message still out, one purge at a time", () => {
    const five = [1, 2, 3, 4, 5].map((seq) => msg("normal", seq))
    const { d } = opened({ normal: five }, { readBatch: 1, maxInFlight: 10, purgeEveryMs: 0 })
    // readBatch 1: the discovery read found normal-1; the rest come one read at a time.
    for (const m of five.slice(1))
      d.handle({ _tag: "ReadDone", lane: "normal", messages: [m], exhausted: false }, 0)
    d.handle({ _tag: "ReadDone", lane: "normal", messages: [], exhausted: true }, 0)
    // An ack of 2 while 1 is out purges nothing: 1 must stay.
    expect(purges(d.handle({ _tag: "Acked", ids: ["normal-2"] }, 1))).toEqual([])
    expect(purges(d.handle({ _tag: "Acked", ids: ["normal-1"] }, 1))).toEqual([["normal", 3]])
    // While that purge runs, acks wait for it, then ride on one purge.
    expect(purges(d.handle({ _tag: "Acked", ids: ["normal-3", "normal-4"] }, 2))).toEqual([])
    expect(purges(d.handle({ _tag: "PurgeDone", lane: "normal" }, 3))).toEqual([["normal", 5]])
    // A failed purge is tried again after a delay, then takes what was acked meanwhile too.
    const failed = d.handle({ _tag: "PurgeFailed", lane: "normal" }, 4)
    expect(purges(failed)).toEqual([])
    expect(wake(failed)).toBe(4 + retryDelayMs(1, 0))
    d.handle({ _tag: "Acked", ids: ["normal-5"] }, 5)
    expect(purges(d.handle({ _tag: "Tick" }, 4 + retryDelayMs(1, 0)))).toEqual([["normal", 6]])
  })

  it("paces a lane's purges while messages are out, and purges at once when none is", () => {
    const six = [1, 2, 3, 4, 5, 6].map((seq) => msg("low", seq))
    const { d, out } = opened({ low: six }, { readBatch: 8, maxInFlight: 10, purgeEveryMs: 10 })
    expect(delivered(out)).toHaveLength(6)
    // The first purge starts at once…
    expect(purges(d.handle({ _tag: "Acked", ids: ["low-1"] }, 100))).toEqual([["low", 2]])
    expect(purges(d.handle({ _tag: "PurgeDone", lane: "low" }, 101))).toEqual([])
    // …the acks after it wait for the pace (messages are still out), and ride on one purge.
    const early = d.handle({ _tag: "Acked", ids: ["low-2", "low-3"] }, 102)
    expect(purges(early)).toEqual([])
    expect(wake(early)).toBe(110)
    expect(purges(d.handle({ _tag: "Acked", ids: ["low-4"] }, 105))).toEqual([])
    expect(purges(d.handle({ _tag: "Tick" }, 110))).toEqual([["low", 5]])
    d.handle({ _tag: "PurgeDone", lane: "low" }, 111)
    // Once nothing is out, the last acks are purged without waiting.
    expect(purges(d.handle({ _tag: "Acked", ids: ["low-5", "low-6"] }, 112))).toEqual([["low", 7]])
  })

  it("hands the runner the purges still owed when the session ends", () => {
    const { d } = opened({ high: [msg("high", 1), msg("high", 2)] }, { readBatch: 2 })
    d.handle({ _tag: "Acked", ids: ["high-1"] }, 1) // its purge is under way…
    expect(d.finalPurges()).toEqual([]) // …and covers it
    d.handle({ _tag: "Acked", ids: ["high-2"] }, 2) // waits for that purge to end
    expect(d.finalPurges()).toEqual([{ _tag: "Purge", lane: "high", beforeSeq: 3 }])
    expect(d.finalPurges()).toEqual([])
  })

  it("without batched gets, grows a lane's side-by-side gets while its backlog is contiguous, and falls back to one", () => {
    const d = drain({ parallelGets: true, readBatch: 8, maxInFlight: 100 })
    d.handle({ _tag: "Tick" }, 0)
    for (const lane of ["high", "normal", "low"] as const)
      d.handle({ _tag: "ReadDone", lane, messages: [], exhausted: true }, 0)
    // The discovery read from 0 found critical-10: not at its cursor, so the next read is 1 get.
    let next = d.handle(
      { _tag: "ReadDone", lane: "critical", messages: [msg("critical", 10)], exhausted: false },
      0,
    )
    const sizes: Array<unknown> = []
    let seq = 11
    // A contiguous backlog: every read finds its messages at consecutive sequences from its cursor.
    for (let i = 0; i < 5; i++) {
      const [read] = reads(next) as Array<[Priority, number, number]>
      sizes.push(read)
      const [, from, max] = read!
      const messages = Array.from({ length: max }, (_, k) => msg("critical", from + k))
      seq = from + max
      next = d.handle({ _tag: "ReadDone", lane: "critical", messages, exhausted: false }, 0)
      d.handle({ _tag: "Acked", ids: messages.map((m) => m.id) }, 0)
    }
    expect(sizes).toEqual([
      ["critical", 11, 1],
      ["critical", 12, 2],
      ["critical", 14, 4],
      ["critical", 18, 8],
      ["critical", 26, 8], // capped at readBatch
    ])
    // Interleaved with other recipients' messages: the gets found fewer than they asked for.
    const sparse = d.handle(
      {
        _tag: "ReadDone",
        lane: "critical",
        messages: [msg("critical", seq + 3), msg("critical", seq + 9)],
        exhausted: false,
      },
      0,
    )
    expect(reads(sparse)).toEqual([["critical", seq + 10, 1]])
  })

  it("takes from side-by-side gets only the unbroken run of found answers, each message once, in order", () => {
    const m = (seq: number) => msg("normal", seq)
    const cases: ReadonlyArray<
      readonly [string, ReadonlyArray<Msg | undefined>, ReadonlyArray<number>, boolean]
    > = [
      ["a contiguous backlog", [m(5), m(6), m(7)], [5, 6, 7], false],
      ["interleaved: gets find the same next message", [m(5), m(9), m(9), m(9)], [5, 9], false],
      ["the end of the backlog", [m(5), m(6), undefined, undefined], [5, 6], true],
      ["nothing stored", [undefined, undefined], [], true],
      // The get from 6 ran before 6 was stored; the get from 7 ran after 6 and 7 were: taking 7
      // would move the cursor past 6.
      ["a message stored while the gets ran", [m(5), undefined, m(7)], [5], true],
      ["answers out of order", [m(7), m(5), m(6)], [5, 6, 7], false],
    ]
    for (const [what, answers, seqs, exhausted] of cases) {
      const accepted = acceptGets(answers)
      expect([what, accepted.messages.map((x) => x.seq), accepted.exhausted]).toEqual([what, seqs, exhausted])
    }
  })
  it("lets go for a newer session only: the later start, then the greater id", () => {
    const self = { startedAt: 100, id: "s_m" }
    const cases: ReadonlyArray<readonly [string, { startedAt: number; id: string }, Array<unknown>]> = [
      ["its own request, heard on its own subject", { startedAt: 100, id: "s_m" }, []],
      ["an older session", { startedAt: 50, id: "s_z" }, [{ _tag: "Refuse" }]],
      ["the same start, a smaller id", { startedAt: 100, id: "s_a" }, [{ _tag: "Refuse" }]],
      ["the same start, a greater id", { startedAt: 100, id: "s_n" }, [{ _tag: "LetGo" }]],
      ["a later start", { startedAt: 101, id: "s_a" }, [{ _tag: "LetGo" }]],
    ]
    for (const [what, by, expected] of cases) {
      const { d } = opened({}, { self })
      const out = d.handle({ _tag: "TakeoverAsked", by }, 1)
      expect([what, out]).toEqual([what, expected])
      expect([what, d.ending]).toEqual([what, expected.length > 0 && out[0]?._tag === "LetGo"])
    }
  })

  it("after letting go reads and hands out nothing more, but still purges the acks it gets", () => {
    const { d, out } = opened(
      { high: [msg("high", 3), msg("high", 4)], low: [msg("low", 7)] },
      { self: { startedAt: 100, id: "s_m" }, maxInFlight: 2 },
    )
    expect(delivered(out)).toEqual([
      ["high-3", false],
      ["high-4", false],
    ])
    const letGo = d.handle({ _tag: "TakeoverAsked", by: { startedAt: 200, id: "s_a" } }, 1)
    expect(letGo).toEqual([{ _tag: "LetGo" }])
    const quiet: Array<DrainEvent<Msg>> = [
      { _tag: "Copy", lane: "critical", message: msg("critical", 9), previousSeq: 0 },
      { _tag: "Doorbell", lane: "normal" },
      { _tag: "Resync" },
      { _tag: "Tick" },
    ]
    for (const event of quiet) expect([event._tag, d.handle(event, 2)]).toEqual([event._tag, []])
    // An ack makes room, but low-7 is not handed out: only the purge of what was acked.
    const acked = d.handle({ _tag: "Acked", ids: ["high-3"] }, 3)
    expect([delivered(acked), reads(acked), purges(acked)]).toEqual([[], [], [["high", 4]]])
    // A second, still newer session is let go to as well; an older one is refused.
    expect(d.handle({ _tag: "TakeoverAsked", by: { startedAt: 300, id: "s_b" } }, 4)[0]?._tag).toBe("LetGo")
    expect(d.handle({ _tag: "TakeoverAsked", by: { startedAt: 50, id: "s_b" } }, 4)).toEqual([
      { _tag: "Refuse" },
    ])
  })

  it("when closed reads and hands out nothing more, and leaves the acks still owed to its final purges", () => {
    const { d } = opened({ normal: [msg("normal", 5), msg("normal", 6)] }, { maxInFlight: 1 })
    expect(d.handle({ _tag: "Close" }, 1)).toEqual([])
    expect(d.handle({ _tag: "Doorbell", lane: "critical" }, 1)).toEqual([])
    const acked = d.handle({ _tag: "Acked", ids: ["normal-5"] }, 2)
    expect([delivered(acked), purges(acked)]).toEqual([[], [["normal", 6]]])
    d.handle({ _tag: "PurgeFailed", lane: "normal" }, 3)
    expect(d.finalPurges().map((p) => [p.lane, p.beforeSeq])).toEqual([["normal", 6]])
  })
})
