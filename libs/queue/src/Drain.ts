// The drain policy of one recipient's delivery session, without I/O (STYLE.md, "sans-I/O"): which
// lane is read next and from where, what is handed out in which order, what an ack, a doorbell or
// a failed read does, when to look again. State and events in, decisions out; no sockets, no
// clocks (`now` comes with every event), no promises. Session.ts performs the decisions against
// JetStream and feeds the results back.
//
// The model: a lane per priority reads its recipient's subject from a cursor (the first stored
// message at or after it: a get by subject, `next_by_subj`), so nothing but the stream holds
// state and no JetStream consumer exists. Messages stay stored until acked: acks are applied by
// one filtered purge per lane of everything below the oldest message still out (one call for a
// run of acks), one purge at a time per lane, and while messages are out at most one every
// `purgeEveryMs` (a replay's acks ride on a few purges; each costs the server a scan).
// - Strict priority: a lane that may still hold messages (never read, or its last read found
//   one) holds back every lower lane until it is known empty; so does a doorbell on an empty lane
//   (a message stored while the session runs) until its message is read — or, when it cannot be
//   found, for the first few rechecks only.
// - FIFO within a lane: reads move the cursor forward only; messages are handed out in seq order.
// - Read sizes: with batched gets (nats-server 2.11+, one server) the lane being drained reads
//   `readBatch` messages a call. Without them (2.9, 2.10, and leader-answered reads on a
//   replicated stream) a read of `max` is `max` gets by subject side by side, from consecutive
//   sequences (`parallelGets`); the lane asks for 1, and doubles (up to `readBatch`) while its
//   messages sit at consecutive sequences — a contiguous backlog — and falls back to 1 as soon as
//   they do not (recipients' messages interleaved, where the side-by-side gets would only find
//   the same message again). `acceptGets` keeps what such a read may safely take.
// - At most `maxInFlight` messages are handed out and unacked at once, and (past the first) at
//   most `maxInFlightBytes` of payload: the window of a session of large messages is bounded in
//   bytes too, and with it what a gateway holds for a client that reads slowly.
// - Live messages come as copies: each stream republishes what it stored (its sequence, and the
//   sequence of the subject's message stored before it, `previousSeq`) to the session. A copy
//   whose predecessor is behind the cursor is the very next message of its lane: it is taken as
//   if read, and the cursor moves past it — no read at all. Any other copy (something unread lies
//   before it, or there is no room) rings the doorbell instead; one already read is ignored.
// - A doorbell (streams that do not republish, or a copy not taken) makes the lane read from its
//   cursor. A doorbell can arrive before the message is readable (the server tells subscribers
//   before the stream has stored it; a replica may lag). A doorbell-driven read that finds
//   nothing is repeated after short, growing delays (`recheckDelaysMs`), then given up (the
//   publish may have been refused: a full queue, a duplicate).
// - A failed read is retried after a capped, jittered exponential delay; the lane keeps its turn.
// - An expired message is deleted unsent (one handed out but expired before the runner could send
//   it comes back as ExpiredUnsent, and is purged like an acked one). Anything at or below a
//   lane's `redeliveredUpTo` (what an earlier session may have sent) is flagged redelivered.
// - One session per recipient, the newest wins: a takeover asked by a newer session (a later
//   start, or the same start and a greater id) lets go — the session ends, and its runner tells
//   the asker what its caller was handed (which it flags redelivered); an older asker is
//   refused. A session that ends, by takeover or closed, reads and hands out nothing more; acks
//   given until it is gone are still applied (`finalPurges`).
import { priorities, type Priority } from "@holdover/protocol"

/** What the policy needs to know of a stored message. */
export interface Readable {
  readonly seq: number
  readonly id: string
  readonly expiresAtMs: number
  /** Its payload's size: counts against `maxInFlightBytes` while it is out. */
  readonly bytes?: number
}

/** Which of two sessions of a recipient is newer: the later start, then the greater id. */
export interface SessionAge {
  readonly startedAt: number
  readonly id: string
}

const isNewer = (a: SessionAge, than: SessionAge): boolean =>
  a.startedAt > than.startedAt || (a.startedAt === than.startedAt && a.id > than.id)

export type Decision<M extends Readable> =
  | { readonly _tag: "Read"; readonly lane: Priority; readonly fromSeq: number; readonly max: number }
  /** Answer a takeover: this session is the newer one and stays. */
  | { readonly _tag: "Refuse" }
  /**
   * End this session for the newer one that asked, and answer it once the end is done (the acks
   * given until then applied) with what the caller was handed.
   */
  | { readonly _tag: "LetGo" }
  | { readonly _tag: "Deliver"; readonly lane: Priority; readonly message: M; readonly redelivered: boolean }
  | {
      readonly _tag: "Delete"
      readonly lane: Priority
      readonly seqs: ReadonlyArray<number>
      readonly reason: "expired"
    }
  /**
   * Remove every message of the lane's subject below `beforeSeq` (one filtered purge): all of
   * them are acked, or expired. Answered with PurgeDone, or PurgeFailed.
   */
  | { readonly _tag: "Purge"; readonly lane: Priority; readonly beforeSeq: number }
  /** Call again (with a Tick) at this time: a retry or a recheck falls due. */
  | { readonly _tag: "WakeAt"; readonly at: number }

export type DrainEvent<M extends Readable> =
  | { readonly _tag: "Tick" }
  /** A read from `fromSeq` returned these messages, in seq order; `exhausted`: nothing after them. */
  | {
      readonly _tag: "ReadDone"
      readonly lane: Priority
      readonly messages: ReadonlyArray<M>
      readonly exhausted: boolean
    }
  | { readonly _tag: "ReadFailed"; readonly lane: Priority }
  | { readonly _tag: "Doorbell"; readonly lane: Priority }
  /**
   * Copies may have been lost — the NATS connection came back (every lane), or a replicated
   * stream elected a new leader (its lane): a lane known empty is read once more (as at open: it
   * holds the lower lanes back until read).
   */
  | { readonly _tag: "Resync"; readonly lane?: Priority }
  /**
   * A stream's copy of a message it just stored: `previousSeq` is the sequence of the last
   * message of the same subject stored before it (0: none).
   */
  | { readonly _tag: "Copy"; readonly lane: Priority; readonly message: M; readonly previousSeq: number }
  | { readonly _tag: "Acked"; readonly ids: ReadonlyArray<string> }
  /**
   * Handed out, but expired before they could be sent (held while the session record was written,
   * or while the client's socket was full): removed like acked messages, counted as expired.
   */
  | { readonly _tag: "ExpiredUnsent"; readonly ids: ReadonlyArray<string> }
  | { readonly _tag: "PurgeDone"; readonly lane: Priority }
  | { readonly _tag: "PurgeFailed"; readonly lane: Priority }
  /** Another session of the recipient asks this one to let go (answered Refuse or LetGo). */
  | { readonly _tag: "TakeoverAsked"; readonly by: SessionAge }
  /** The session is closing: nothing more is read or handed out. */
  | { readonly _tag: "Close" }

export interface DrainOptions {
  readonly maxInFlight: number
  /**
   * Payload bytes handed out and unacked at most (a message is always let out when none is, however
   * large); unbounded when absent.
   */
  readonly maxInFlightBytes?: number
  /** Messages one read may return: a batched get's size, or the most gets side by side. */
  readonly readBatch: number
  /**
   * The server has no batched gets: a read of `max` is `max` gets by subject issued side by side
   * from `fromSeq`, `fromSeq + 1`, … (combined by `acceptGets`), and the lane grows its reads from
   * 1 while its messages are contiguous.
   */
  readonly parallelGets?: boolean
  /** Per lane: stream sequences up to this one may have been sent by an earlier session. */
  readonly redeliveredUpTo?: Partial<Record<Priority, number>>
  /** Delays of the re-reads after a doorbell that found nothing. */
  readonly recheckDelaysMs?: ReadonlyArray<number>
  /**
   * While any message is out, a lane's purges start at most this often (0: whenever the last one
   * is done). Once nothing is out, acks are purged at once.
   */
  readonly purgeEveryMs?: number
  /** A number in [0, 1) for jitter (tests pass a constant). */
  readonly random?: () => number
  /** This session's start and id, for takeovers (none: any other session is newer). */
  readonly self?: SessionAge
}

export const defaultPurgeEveryMs = 10

/**
 * What a session that is ending still takes: acks, the answers of purges under way, and takeover
 * requests (a newer session is let go to as well, answered once this one is gone).
 */
const afterEnd: ReadonlySet<DrainEvent<Readable>["_tag"]> = new Set([
  "Acked",
  "ExpiredUnsent",
  "PurgeDone",
  "PurgeFailed",
  "TakeoverAsked",
])

export const defaultRecheckDelaysMs: ReadonlyArray<number> = [2, 5, 10, 25, 50, 100, 250, 500]

/**
 * A doorbell holds the lower lanes back until its message is read, or for this many rechecks
 * (≈ 17 ms with the default delays): a publish the stream refused (a full queue, a duplicate)
 * rings too, and must not stall them for long.
 */
const holdRechecks = 3

/**
 * The answers of side-by-side gets by subject from consecutive sequences (`answers[i]`: the first
 * message at or after `fromSeq + i`, or undefined when there is none), combined into what a read
 * may take: the answers up to the first empty one, in seq order, each once; `exhausted` when an
 * answer was empty. Later answers are dropped: a get that found nothing may have run before a
 * message was stored that a later get then skipped over (it found only the one after it), so
 * only an unbroken run of found answers proves that nothing between them was missed.
 */
export const acceptGets = <M extends { readonly seq: number }>(
  answers: ReadonlyArray<M | undefined>,
): { readonly messages: ReadonlyArray<M>; readonly exhausted: boolean } => {
  const found: Array<M> = []
  let exhausted = false
  for (const answer of answers) {
    if (answer === undefined) {
      exhausted = true
      break
    }
    found.push(answer)
  }
  found.sort((a, b) => a.seq - b.seq)
  const messages = found.filter((message, i) => i === 0 || message.seq !== found[i - 1]!.seq)
  return { messages, exhausted }
}

/**
 * Retry delay of a failed read or purge: 100 ms doubling, capped at 5 s, jittered to 50–100 %.
 * A plain function, not a `Schedule`: the policy decides synchronously, with time and randomness
 * handed in (a Schedule steps inside an Effect); the runner's retries of a single call use one
 * (Session.ts, `callRetry`).
 */
export const retryDelayMs = (failures: number, random: number): number =>
  Math.min(100 * 2 ** (failures - 1), 5_000) * (0.5 + random / 2)

type Knowledge = "unknown" | "more" | "empty"

export interface LaneState<M extends Readable> {
  readonly priority: Priority
  /** The next read asks for the first message at or after this sequence. */
  cursor: number
  /** Read, not handed out yet, in seq order. */
  readonly buffer: Array<M>
  knowledge: Knowledge
  reading: boolean
  /** A doorbell rang and no read has started since. */
  rang: boolean
  /** The highest sequence a copy that rang the doorbell had (Infinity for a plain doorbell). */
  rangFor: number
  /** The read under way was started by a doorbell. */
  readForDoorbell: boolean
  /** Re-reads done for the current doorbell. */
  rechecks: number
  /** Gets side by side for the next read of the lane being drained (`parallelGets` only). */
  span: number
  /** The read under way: from where, and how many it asked for. */
  readFrom: number
  readMax: number
  failures: number
  purgeFailures: number
  /** No purge before this time (a failed one waits). */
  purgeNotBefore: number
  /** When the last purge started. */
  purgedAt: number
  /** Acked sequences no purge has covered yet. */
  acked: Array<number>
  /** Acked sequences the purge under way covers. */
  inPurge: Array<number>
  /** No read before this time (a retry or a recheck waits). */
  notBefore: number
  redeliveredUpTo: number
}

export interface DrainStats {
  delivered: number
  redelivered: number
  expired: number
  acked: number
}

export class Drain<M extends Readable> {
  readonly lanes: ReadonlyArray<LaneState<M>>
  readonly stats: DrainStats = { delivered: 0, redelivered: 0, expired: 0, acked: 0 }
  /** Handed out and not acked: id → where it is stored. */
  readonly inFlight = new Map<
    string,
    Array<{ readonly lane: Priority; readonly seq: number; readonly bytes: number }>
  >()
  /** Messages handed out and not acked (an id may stand for two). */
  inFlightCount = 0
  /** Their payload bytes. */
  inFlightBytes = 0
  /** Let go or closed: nothing more is read or handed out. */
  ending = false
  private readonly maxInFlightBytes: number
  private readonly options: DrainOptions
  private readonly recheckDelays: ReadonlyArray<number>
  private readonly random: () => number
  private readonly purgeEveryMs: number

  constructor(options: DrainOptions) {
    this.options = options
    this.recheckDelays = options.recheckDelaysMs ?? defaultRecheckDelaysMs
    this.random = options.random ?? Math.random
    this.purgeEveryMs = options.purgeEveryMs ?? defaultPurgeEveryMs
    this.maxInFlightBytes = options.maxInFlightBytes ?? Number.POSITIVE_INFINITY
    this.lanes = priorities.map((priority) => ({
      priority,
      cursor: 0,
      buffer: [],
      knowledge: "unknown",
      reading: false,
      rang: false,
      rangFor: 0,
      readForDoorbell: false,
      rechecks: 0,
      span: 1,
      readFrom: 0,
      readMax: 0,
      failures: 0,
      purgeFailures: 0,
      purgeNotBefore: 0,
      purgedAt: Number.NEGATIVE_INFINITY,
      acked: [],
      inPurge: [],
      notBefore: 0,
      redeliveredUpTo: options.redeliveredUpTo?.[priority] ?? 0,
    }))
  }

  /**
   * What earlier sessions may have sent, learnt after the open's first reads (the session record
   * is read only when they found something); before any message is handed out.
   */
  learnRedelivered(upTo: Partial<Record<Priority, number>>): void {
    for (const lane of this.lanes)
      lane.redeliveredUpTo = Math.max(lane.redeliveredUpTo, upTo[lane.priority] ?? 0)
  }

  lane(priority: Priority): LaneState<M> {
    return this.lanes.find((lane) => lane.priority === priority)!
  }

  handle(event: DrainEvent<M>, now: number): Array<Decision<M>> {
    const decisions: Array<Decision<M>> = []
    if (this.ending && !afterEnd.has(event._tag)) return decisions
    switch (event._tag) {
      case "TakeoverAsked": {
        const self = this.options.self ?? { startedAt: Number.NEGATIVE_INFINITY, id: "" }
        if (event.by.id === self.id) return decisions // its own request, heard on its subject
        if (!isNewer(event.by, self)) return [{ _tag: "Refuse" }]
        this.ending = true
        return [{ _tag: "LetGo" }]
      }
      case "Close":
        this.ending = true
        return decisions
      case "Tick":
        break
      case "Doorbell":
        this.ring(this.lane(event.lane))
        break
      case "Copy":
        this.copied(this.lane(event.lane), event.message, event.previousSeq)
        break
      case "Resync":
        for (const lane of this.lanes)
          if (lane.knowledge === "empty" && (event.lane === undefined || event.lane === lane.priority))
            lane.knowledge = "unknown"
        break
      case "ReadDone":
        this.readDone(this.lane(event.lane), event.messages, event.exhausted, now)
        break
      case "ReadFailed": {
        const lane = this.lane(event.lane)
        lane.reading = false
        lane.failures++
        lane.rang ||= lane.readForDoorbell
        lane.notBefore = now + retryDelayMs(lane.failures, this.random())
        break
      }
      case "Acked":
        this.acked(event.ids, "acked")
        break
      case "ExpiredUnsent":
        this.acked(event.ids, "expired")
        break
      case "PurgeDone": {
        const lane = this.lane(event.lane)
        lane.inPurge = []
        lane.purgeFailures = 0
        break
      }
      case "PurgeFailed": {
        // Nothing lost: the acked messages stay stored until the next purge takes them (or the
        // next session delivers them again, flagged redelivered).
        const lane = this.lane(event.lane)
        lane.acked.push(...lane.inPurge)
        lane.inPurge = []
        lane.purgeFailures++
        lane.purgeNotBefore = now + retryDelayMs(lane.purgeFailures, this.random())
        break
      }
    }
    this.plan(now, decisions)
    return decisions
  }

  private ring(lane: LaneState<M>, upTo = Number.POSITIVE_INFINITY): void {
    lane.rang = true
    lane.rangFor = Math.max(lane.rangFor, upTo)
    lane.rechecks = 0
    if (!lane.reading && lane.failures === 0) lane.notBefore = 0
  }

  /**
   * A copy is the lane's next message when nothing of its subject stored before it is unread:
   * its predecessor lies behind the cursor. A predecessor of 0 (nothing else stored) is taken
   * only from an idle lane known empty with no doorbell pending: nats-server 2.9 answers 0 also
   * when the subject's last message was deleted while older ones stay (never an unread one in
   * how a session deletes: docs/semantics.md), and so a read still owed settles it instead.
   * A read under way may return the copy's message again: `readDone` keeps only what lies at or
   * after the cursor.
   */
  private copied(lane: LaneState<M>, message: M, previousSeq: number): void {
    if (message.seq < lane.cursor) return // read already
    const next =
      previousSeq > 0 ? previousSeq < lane.cursor : lane.knowledge === "empty" && !lane.reading && !lane.rang
    if (!next || lane.buffer.length >= this.options.maxInFlight) return this.ring(lane, message.seq)
    lane.buffer.push(message)
    lane.cursor = message.seq + 1
  }

  private readDone(lane: LaneState<M>, messages: ReadonlyArray<M>, exhausted: boolean, now: number): void {
    lane.reading = false
    lane.failures = 0
    if (this.options.parallelGets) {
      const first = messages[0]
      const last = messages.at(-1)
      const contiguous =
        first !== undefined &&
        last !== undefined &&
        messages.length === lane.readMax &&
        first.seq === Math.max(1, lane.readFrom) &&
        last.seq - first.seq + 1 === messages.length
      lane.span = contiguous ? Math.min(lane.span * 2, this.options.readBatch) : 1
    }
    const fresh = messages.filter((message) => message.seq >= lane.cursor)
    for (const message of fresh) lane.buffer.push(message)
    const last = fresh.at(-1)
    if (last) lane.cursor = last.seq + 1
    // Copies that rang while this read ran, and that it found: nothing more to look for.
    if (lane.rang && lane.rangFor < lane.cursor) lane.rang = false
    // Something found, if only what copies brought meanwhile (then the cursor is past it): no
    // doorbell is owed a recheck, and a full read says there may be more.
    if (fresh.length > 0 || (messages.length > 0 && !exhausted)) {
      lane.knowledge = exhausted ? "empty" : "more"
      lane.rechecks = 0
      return
    }
    lane.knowledge = "empty"
    // A doorbell's message not readable yet: look again shortly, a bounded number of times.
    if (messages.length === 0 && lane.readForDoorbell && lane.rechecks < this.recheckDelays.length) {
      lane.notBefore = now + this.recheckDelays[lane.rechecks]!
      lane.rechecks++
      lane.rang = true
    }
  }

  /** Takes messages out of flight: what lies below the oldest one still out can be purged. */
  private acked(ids: ReadonlyArray<string>, as: "acked" | "expired"): void {
    for (const id of ids) {
      const entries = this.inFlight.get(id)
      if (!entries) continue
      this.inFlight.delete(id)
      this.inFlightCount -= entries.length
      this.stats[as]++
      for (const entry of entries) {
        this.inFlightBytes -= entry.bytes
        this.lane(entry.lane).acked.push(entry.seq)
      }
    }
  }

  /**
   * The purges that acks still call for, when the session ends: its runner has stopped feeding
   * PurgeDone events, and an ack given before the end must not be lost.
   */
  finalPurges(): Array<Extract<Decision<M>, { _tag: "Purge" }>> {
    return this.lanes.flatMap((lane) => this.purgeOf(lane) ?? [])
  }

  /** A purge of what is acked below the oldest message still out, if any acked message is. */
  private purgeOf(lane: LaneState<M>): Extract<Decision<M>, { _tag: "Purge" }> | undefined {
    const before = this.settledBefore(lane)
    const covered = lane.acked.filter((seq) => seq < before)
    if (covered.length === 0) return undefined
    lane.acked = lane.acked.filter((seq) => seq >= before)
    lane.inPurge = covered
    return { _tag: "Purge", lane: lane.priority, beforeSeq: before }
  }

  /**
   * Below this sequence every message of the lane's subject is acked or expired: the cursor
   * passed it (reads never skip one), and it is neither in flight nor waiting in the buffer.
   */
  private settledBefore(lane: LaneState<M>): number {
    let floor = lane.buffer[0]?.seq ?? lane.cursor
    for (const entries of this.inFlight.values())
      for (const entry of entries) if (entry.lane === lane.priority && entry.seq < floor) floor = entry.seq
    return floor
  }

  /** Whether `message` may be handed out now: within the window in count and in bytes. */
  private hasRoomFor(message: M): boolean {
    if (this.inFlightCount >= this.options.maxInFlight) return false
    return this.inFlightCount === 0 || this.inFlightBytes + (message.bytes ?? 0) <= this.maxInFlightBytes
  }

  /**
   * Acks: one purge per lane at a time removes everything acked below the oldest message still
   * out; acks that arrive meanwhile ride on the next one. Returns when a paced purge falls due.
   */
  private planPurges(now: number, decisions: Array<Decision<M>>): number {
    let wakeAt = Number.POSITIVE_INFINITY
    for (const lane of this.lanes) {
      // A purge is under way while it has acks in hand: one at a time per lane.
      if (lane.acked.length === 0 || lane.inPurge.length > 0) continue
      // While messages are out, purges of a lane are paced (a backlog's acks come every few ms
      // and each purge costs the server a scan): the acks of a pace ride on one purge. An ending
      // session does not pace.
      const paced = this.inFlightCount > 0 && !this.ending
      const notBefore = Math.max(lane.purgeNotBefore, paced ? lane.purgedAt + this.purgeEveryMs : 0)
      if (notBefore > now) {
        wakeAt = Math.min(wakeAt, notBefore)
        continue
      }
      const purge = this.purgeOf(lane)
      if (purge) {
        lane.purgedAt = now
        decisions.push(purge)
      }
    }
    return wakeAt
  }

  private plan(now: number, decisions: Array<Decision<M>>): void {
    // Ending: nothing more is read or handed out; acks are still purged as they come, unpaced
    // (no wake-up: `finalPurges` takes what is left).
    if (this.ending) return void this.planPurges(now, decisions)
    let wakeAt = Number.POSITIVE_INFINITY
    // Hand out in strict priority order while there is room.
    for (const lane of this.lanes) {
      const expired: Array<number> = []
      while (lane.buffer.length > 0) {
        const message = lane.buffer[0]!
        // Expired: deleted unsent, room or not (it must not hold the lane up).
        if (message.expiresAtMs <= now) {
          lane.buffer.shift()
          expired.push(message.seq)
          this.stats.expired++
          continue
        }
        if (!this.hasRoomFor(message)) {
          // Waiting for room: once it expires it is deleted unsent, without waiting for an ack.
          wakeAt = Math.min(wakeAt, message.expiresAtMs)
          break
        }
        lane.buffer.shift()
        const redelivered = message.seq <= lane.redeliveredUpTo
        // Two stored messages with one id (reused after the dedup window): one ack takes both.
        const entries = this.inFlight.get(message.id) ?? []
        const bytes = message.bytes ?? 0
        entries.push({ lane: lane.priority, seq: message.seq, bytes })
        this.inFlight.set(message.id, entries)
        this.inFlightCount++
        this.inFlightBytes += bytes
        this.stats.delivered++
        if (redelivered) this.stats.redelivered++
        decisions.push({ _tag: "Deliver", lane: lane.priority, message, redelivered })
      }
      if (expired.length > 0)
        decisions.push({ _tag: "Delete", lane: lane.priority, seqs: expired, reason: "expired" })
      // Buffered messages left (no room), a lane that may still hold some, or a doorbell not
      // looked into yet (for a few rechecks at most) hold back the lower lanes.
      const doorbell = (lane.rang || (lane.reading && lane.readForDoorbell)) && lane.rechecks < holdRechecks
      if (lane.buffer.length > 0 || lane.knowledge !== "empty" || doorbell) break
    }
    wakeAt = Math.min(wakeAt, this.planPurges(now, decisions))
    // Reads: the lanes down to the first that may hold messages (the one being drained) read
    // ahead in batches; the lanes below it read only once, to learn whether they hold anything
    // (the welcome's counts, and the next lane is ready when this one empties).
    let draining = true
    for (const lane of this.lanes) {
      const batch = !draining ? 1 : this.options.parallelGets ? lane.span : this.options.readBatch
      const wanted = (lane.knowledge !== "empty" || lane.rang) && (draining || lane.knowledge === "unknown")
      if (lane.buffer.length > 0 || lane.knowledge !== "empty") draining = false
      if (lane.reading || !wanted || lane.buffer.length >= Math.ceil(batch / 2)) continue
      if (lane.notBefore > now) {
        wakeAt = Math.min(wakeAt, lane.notBefore)
        continue
      }
      lane.reading = true
      lane.readForDoorbell = lane.rang
      lane.rang = false
      lane.rangFor = 0
      lane.readFrom = lane.cursor
      lane.readMax = batch
      decisions.push({ _tag: "Read", lane: lane.priority, fromSeq: lane.cursor, max: batch })
    }
    if (wakeAt !== Number.POSITIVE_INFINITY) decisions.push({ _tag: "WakeAt", at: wakeAt })
  }
}
