// One delivery session of one recipient: the Effect runner of the drain policy (Drain.ts). It
// reads the recipient's four subjects directly from the streams — no JetStream consumer — hands
// messages out in the order the policy decides, deletes what the client acks, and owns the one
// NATS subscription a session needs, in the session's scope.
//
// Cost model (docs/semantics.md, "How a session works", "What it costs"): opening asks an older
// session to let go (one core-NATS request; no responders answers at once), reads each lane once from
// the start (a get by subject: found or not), and reads the session record when nobody answered
// and a lane found messages. A lane that holds messages tells its count for the welcome with
// that first read on nats-server 2.11+ (a batched get: `Nats-Num-Pending`); elsewhere it costs a
// STREAM.INFO with the subject as filter. A stored backlog costs one read a message (or a share
// of a batched read on nats-server 2.11+) and a share of a purge; a live message costs no read
// (its copy) and a share of a purge.
// - One subscription, the control subject `<prefix>.ctl.<token>`: each stream republishes there
//   what it stores for the recipient (a copy with its sequence and its predecessor's), which the
//   session takes as the lane's next message without reading it (Drain.ts, "Copy"); takeover and
//   presence requests come there too. Streams created by an older Holdover on nats-server 2.9 do
//   not republish: then the subscription is `<prefix>.*.<token>`, and a publish to one of those
//   lanes' subjects is a doorbell that makes the lane read.
// - Requests (direct gets, the takeover and presence asks) go through Replies.ts: one reply
//   subscription per connection, and answers such as "no responders" or "not found" arrive as
//   status codes, not as Errors built by nats.js.
// - Reads: direct gets on a single server (batched from 2.11); on a replicated stream the
//   leader-answered STREAM.MSG.GET, so a just-deleted message never comes back and a just-stored
//   one is never skipped by a lagging replica (docs/semantics.md). Without batched gets (2.9,
//   2.10, replicas) a contiguous backlog is read with up to 16 gets side by side (Drain.ts).
// - One session per recipient, cluster-wide: opening sends a takeover request; an older session
//   stops, waits for its deletes, and answers with what it sent, which the new session flags
//   redelivered (the policy decides whom to let go: Drain.ts, TakeoverAsked).
//   A refused request (this connection is older than the live one) fails the open with
//   SessionClosed.
// - The session record (`<prefix>.session.<token>`, one per recipient): written "open" before a
//   session hands out its first message and "closed" with what it sent when it ends. A session
//   that finds "open" with nobody answering follows a crash: it flags everything stored at open
//   redelivered (conservative); "closed" tells exactly what was sent.
// - Acks: one filtered STREAM.PURGE per lane removes everything below the oldest message still
//   out (a run of acks in one call; Drain.ts decides). Expired messages are deleted one by one.
// - The runner: the policy runs synchronously on each event (a doorbell, a read's answer, an ack,
//   a purge done, a timer) and its decisions are applied at once — hand-outs to the caller, I/O in
//   fibers of its own (in the session's scope). An idle session has no fiber; events met while
//   one is being handled wait their turn, in order (`step`).
// - JetStream trouble: reads and purges are retried by the policy (and a timed-out call on
//   `callRetry`); an ack whose purge never succeeds leaves the message for the next session.
import { randomUUID } from "node:crypto"
import { priorities, type Priority } from "@holdover/protocol"
import type { Msg, Subscription } from "@nats-io/transport-node"
import { Clock, Deferred, Effect, Exit, Schedule, Stream, type Scope } from "effect"
import { acceptGets, Drain, type Decision, type DrainEvent } from "./Drain.ts"
import { decodeStored, type Delivery, type StoredRecord } from "./Envelope.ts"
import type { NatsConnectionShape } from "./NatsConnection.ts"
import type { QueueSettings } from "./QueueConfig.ts"
import { subjectToken } from "./RecipientKey.ts"
import { OwnedFibers } from "./OwnedFibers.ts"
import { queueError, type QueueError } from "./QueueError.ts"
import { Replies, Status } from "./Replies.ts"
import {
  apiCode,
  controlSubject,
  featuresOf,
  sessionStreamName,
  sessionSubject,
  streamName,
  subjectFor,
  unavailable,
} from "./Topology.ts"

export type SessionEnd = "closed" | "taken-over"

export interface SessionStats {
  expired: number
  delivered: number
  redelivered: number
  acked: number
}

/** Where a listening session pushes its deliveries (instead of `next`), and how it tells its end. */
export interface SessionSink {
  /** Called in strict priority order, as soon as the policy hands a message out. */
  readonly deliver: (delivery: Delivery) => void
  /** Called once, after the last delivery, when the session has ended. */
  readonly ended: (end: SessionEnd) => void
}

export interface RecipientSession {
  readonly id: string
  readonly recipient: string
  /** Messages stored per priority when the session opened. */
  readonly pending: Record<Priority, number>
  readonly maxInFlight: number
  /** Deliveries in strict priority order; ends when the session ends. */
  readonly deliveries: Stream.Stream<Delivery>
  /** The next delivery (waits for one); undefined once the session has ended. */
  readonly next: Effect.Effect<Delivery | undefined>
  /**
   * Deliveries pushed to `sink` from now on (any not taken yet first), and its end: no fiber
   * waits for them. Use either this or `next`/`deliveries`, not both.
   */
  readonly listen: (sink: SessionSink) => void
  /** Acks by id; returns how many were in flight. Unknown ids are ignored. */
  readonly ack: (ids: ReadonlyArray<string>) => Effect.Effect<number>
  /** The same, synchronously (for a caller outside any fiber). */
  readonly ackNow: (ids: ReadonlyArray<string>) => number
  /**
   * Deliveries the caller held back (a full socket) until they expired, and so never sent: removed
   * like acked ones, counted as expired.
   */
  readonly expiredUnsent: (ids: ReadonlyArray<string>) => void
  readonly unacked: () => number
  /** Completes when the session ends: closed, or taken over by a newer session. */
  readonly ended: Effect.Effect<SessionEnd>
  readonly end: Effect.Effect<void>
  readonly stats: () => SessionStats
}

/** What every session of a node shares. */
export interface SessionContext {
  readonly conn: NatsConnectionShape
  readonly settings: QueueSettings
  /** Bounds the JetStream API calls of all sessions of a node in flight. */
  readonly limited: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E>
  /** Priorities whose stream republishes live copies to the control subjects (Topology.ts). */
  readonly copies: ReadonlySet<Priority>
  /** Which lane each priority stream holds (a copy names its stream in `Nats-Stream`). */
  readonly laneOfStream: ReadonlyMap<string, Priority>
  /**
   * Calls `resync` whenever copies may have been lost, until the returned function is called:
   * the NATS connection came back (no lane: all of them), or a replicated stream's leader changed.
   */
  readonly onResync: (resync: (lane?: Priority) => void) => () => void
}

export interface SessionOptions {
  readonly maxInFlight: number
  /** When the client's connection began: of two sessions of a recipient the later one wins. */
  readonly since: number
}

type Stored = Omit<Delivery, "redelivered"> & { readonly expiresAtMs: number; readonly bytes: number }

/** What a session record holds (JSON). */
interface SessionRecord {
  readonly state: "open" | "closed"
  readonly session: string
  readonly sentUpTo?: Partial<Record<Priority, number>>
}

type ControlRequest =
  { readonly op: "takeover"; readonly id: string; readonly startedAt: number } | { readonly op: "presence" }

/** A JetStream call that timed out or met a lost connection is tried twice more. */
const callRetry = Schedule.exponential("100 millis").pipe(Schedule.jittered, Schedule.upTo({ times: 2 }))

/** Messages one batched read asks for (nats-server 2.11+, single server). */
const readBatch = 256
/** The most gets by subject one read issues side by side (no batched gets: 2.9, 2.10, replicas). */
const maxParallelGets = 16

/** Where a stream answers direct gets (Holdover uses no JetStream domain or API prefix). */
const directGetSubject = (stream: string) => `$JS.API.DIRECT.GET.${stream}`

/**
 * A direct get's answer: the stored message, null when there is none (404), undefined for a
 * batch's end marker; any other status (503: the stream is not answering) fails the read.
 */
const answerOf = (stream: string, msg: Msg, status: number): StoredRecord | null | undefined => {
  if (status === Status.NotFound) return null
  if (status === Status.EndOfBatch) return undefined
  if (status !== Status.Ok)
    throw new Error(`direct get from ${stream}: status ${status} ${msg.headers?.description ?? ""}`)
  return recordOf(msg, new Date(0))
}

/**
 * A stored message as a direct get or a stream's copy carries it (`Nats-Sequence`, and
 * `Nats-Time-Stamp` where the server sends one; `unstamped` otherwise).
 */
const recordOf = (msg: Msg, unstamped: Date): StoredRecord => {
  const header = msg.headers
  return {
    seq: Number(header?.get("Nats-Sequence")),
    header,
    get time() {
      const stamp = header?.get("Nats-Time-Stamp")
      return stamp ? new Date(stamp) : unstamped
    },
    data: msg.data,
    string: () => msg.string(),
  }
}

/** What the drain policy holds of a stored message of `lane`. */
const storedOf = (lane: Priority, record: StoredRecord): Stored => {
  const stored = decodeStored(lane, record)
  return { ...stored, expiresAtMs: Date.parse(stored.expiresAt), bytes: record.data?.length ?? 0 }
}

const parse = <A>(text: string): A | undefined => {
  try {
    return JSON.parse(text) as A
  } catch {
    return undefined
  }
}

export const openSession = Effect.fnUntraced(function* (
  context: SessionContext,
  recipient: string,
  options: SessionOptions,
): Effect.fn.Return<RecipientSession, QueueError, Scope.Scope> {
  const { conn, settings, limited } = context
  const { nc, js, jsm } = conn
  const id = `s_${randomUUID()}`
  const features = featuresOf(conn.serverVersion())
  const replicated = settings.replicas > 1
  const batched = features.batchedDirectGet && !replicated
  const control = controlSubject(settings, recipient)
  const timeout = settings.requestTimeoutMs

  /** One JetStream call, within the node's bound on calls in flight; fails with what nats.js threw. */
  const call = <A>(request: () => Promise<A>) =>
    limited(Effect.tryPromise({ try: request, catch: (cause) => cause }))
  /** …tried again on `callRetry` when it timed out or met a lost connection (not on an API error). */
  const retried = <A>(effect: Effect.Effect<A, unknown>) =>
    effect.pipe(
      Effect.retry({
        schedule: callRetry,
        while: (cause) => apiCode(cause) === undefined && conn.isConnected(),
      }),
    )

  const replies = Replies.of(nc)
  /** A get by subject: the first message of `subject` at or after `seq` (or the last one). */
  const getOne = (
    stream: string,
    query: { seq: number; next_by_subj: string; batch?: number } | { last_by_subj: string },
  ) =>
    call((): Promise<StoredRecord | null> =>
      replicated
        ? // Leader-answered: consistent on a replicated stream (nats.js types list seq/last only).
          jsm.streams.getMessage(stream, query as { last_by_subj: string })
        : replies
            .one(directGetSubject(stream), JSON.stringify(query), timeout)
            .then(({ msg, status }) => answerOf(stream, msg, status) ?? null),
    )

  const readLane = (lane: Priority, fromSeq: number, max: number) =>
    Effect.gen(function* () {
      const stream = streamName(settings, lane)
      const subject = subjectFor(settings, lane, recipient)
      let found: ReadonlyArray<StoredRecord>
      let exhausted: boolean
      if (batched && max > 1) {
        const got: Array<StoredRecord> = []
        yield* call(() =>
          replies.request(
            directGetSubject(stream),
            JSON.stringify({ seq: Math.max(1, fromSeq), next_by_subj: subject, batch: max }),
            timeout,
            (msg, status) => {
              // Messages, then an end-of-batch status; a batch that found nothing is a 404.
              const stored = answerOf(stream, msg, status)
              if (stored) got.push(stored)
              return stored === null || status === Status.EndOfBatch
            },
          ),
        )
        found = got
        exhausted = got.length < max
      } else {
        // Gets by subject side by side from consecutive sequences (Drain.ts grows `max` on a
        // contiguous backlog where the server has no batched gets; otherwise 1), and
        // `acceptGets` keeps the unbroken run of found answers. On 2.11+ a get is asked as a
        // batch of one, for its `Nats-Num-Pending` (below).
        const answers = yield* Effect.forEach(
          Array.from({ length: max }, (_, i) => Math.max(1, fromSeq) + i),
          (seq) =>
            getOne(
              stream,
              batched ? { seq, next_by_subj: subject, batch: 1 } : { seq, next_by_subj: subject },
            ).pipe(Effect.map((message) => message ?? undefined)),
          { concurrency: "unbounded" },
        )
        const accepted = acceptGets(answers)
        found = accepted.messages
        exhausted = accepted.exhausted
      }
      // On 2.11+ the messages of a batched get say how many messages of the subject follow them
      // (`Nats-Num-Pending`): the first one's, plus one, is the welcome's count — no STREAM.INFO.
      const following = batched ? Number(found[0]?.header?.get("Nats-Num-Pending") || Number.NaN) : Number.NaN
      /** Messages of the subject from the first one found on (when the server says). */
      const count = Number.isInteger(following) ? following + 1 : undefined
      const messages = found.map((message) => storedOf(lane, message))
      return { messages, exhausted, count }
    })

  const deleteOne = (lane: Priority, seq: number) =>
    retried(call(() => jsm.streams.deleteMessage(streamName(settings, lane), seq, false))).pipe(
      // An API error (already deleted, or removed by max age or overflow) means it is gone.
      Effect.catch((cause) => (apiCode(cause) === undefined ? Effect.fail(cause) : Effect.void)),
      Effect.ignore,
    )

  /** Removes every message of the lane's subject below `beforeSeq` (all acked or expired). */
  const purgeBefore = (lane: Priority, beforeSeq: number) =>
    retried(
      call(() =>
        jsm.streams.purge(streamName(settings, lane), {
          filter: subjectFor(settings, lane, recipient),
          seq: beforeSeq,
        }),
      ),
    )

  const writeRecord = (record: SessionRecord) =>
    call(() =>
      js.publish(sessionSubject(settings, recipient), JSON.stringify(record), {
        expect: { streamName: sessionStreamName(settings) },
        timeout,
      }),
    ).pipe(Effect.ignore)

  /** What earlier sessions may have sent, per lane, when no live session answered. */
  const earlierSends = Effect.gen(function* () {
    const message = yield* getOne(sessionStreamName(settings), {
      last_by_subj: sessionSubject(settings, recipient),
    })
    const record = message ? parse<SessionRecord>(message.string()) : undefined
    if (!record) return {}
    if (record.state === "closed") return record.sentUpTo ?? {}
    // Its session died without closing: anything stored now may have been sent.
    const lasts = yield* Effect.forEach(
      priorities,
      (lane) =>
        getOne(streamName(settings, lane), { last_by_subj: subjectFor(settings, lane, recipient) }).pipe(
          Effect.map((last) => [lane, last?.seq ?? 0] as const),
        ),
      { concurrency: "unbounded" },
    )
    return Object.fromEntries(lasts) as Record<Priority, number>
  })

  // One session per recipient, cluster-wide: the newest connection wins.
  const answer = yield* Effect.promise(() =>
    replies
      .one(
        control,
        JSON.stringify({ op: "takeover", id, startedAt: options.since }),
        settings.takeoverTimeoutMs,
      )
      .then(
        ({ msg, status }) =>
          status === Status.Ok
            ? parse<{ refused?: boolean; sentUpTo?: Partial<Record<Priority, number>> }>(msg.string())
            : undefined, // no responders: nobody holds a session
        () => undefined, // a hung one: go ahead
      ),
  )
  if (answer?.refused)
    return yield* queueError({ _tag: "SessionClosed" }, "a newer session of this recipient is open")

  const drain = new Drain<Stored>({
    maxInFlight: options.maxInFlight,
    maxInFlightBytes: settings.maxInFlightBytes,
    readBatch: batched ? readBatch : Math.min(maxParallelGets, settings.apiConcurrency),
    parallelGets: !batched,
    self: { startedAt: options.since, id },
  })
  const ended = yield* Deferred.make<SessionEnd>()
  const clock = yield* Clock.Clock
  // Reads, the first record write and timers; interrupted when the session ends.
  const runFork = Effect.runForkWith(yield* Effect.context<never>())
  const work = new OwnedFibers(runFork)
  // Purges and deletes of acked or expired messages: awaited when the session ends.
  const deletes = new OwnedFibers(runFork)
  // The policy runs synchronously on each event (doorbells, reads done, acks, purges done,
  // timers): no fiber waits while the session is idle, and none is started per event. Events
  // that come while one is handled (or before the open is done) wait here, in order.
  const events: Array<DrainEvent<Stored>> = []
  let handling = true // until the open is done (below)
  /** Deliveries held until the session record says "open" (the first hand-out waits for it). */
  let held: Array<Delivery> | undefined
  let endedAs: SessionEnd | undefined
  // Deliveries handed out: pushed to the listening sink, or kept for `next`.
  let sink: SessionSink | undefined
  const output: Array<Delivery> = []
  const takers: Array<(delivery: Delivery | undefined) => void> = []
  let ending = false
  let recordWritten = false
  /** Per lane, the highest sequence handed to the caller: what the next session flags redelivered. */
  const sentUpTo: Record<Priority, number> = { critical: 0, high: 0, normal: 0, low: 0 }
  let wakeAt = Number.POSITIVE_INFINITY

  const end = (reason: SessionEnd): Effect.Effect<SessionEnd> =>
    Effect.suspend(() => {
      if (ending) return Deferred.await(ended)
      ending = true
      // Nothing more is read or handed out (a takeover's LetGo has said so already).
      drain.handle({ _tag: "Close" }, clock.currentTimeMillisUnsafe())
      return Effect.gen(function* () {
        // The driver, reads and timers stop here; deletes go on.
        yield* work.interruptAll()
        // Acks already given are applied before anyone else reads this recipient's queue.
        yield* deletes
          .awaitEmpty()
          .pipe(Effect.timeoutOrElse({ duration: timeout * 3, orElse: () => Effect.void }))
        // …and so are the ones whose purge was still to come.
        yield* Effect.forEach(
          drain.finalPurges(),
          (purge) => Effect.ignore(purgeBefore(purge.lane, purge.beforeSeq)),
          {
            concurrency: "unbounded",
            discard: true,
          },
        )
        if (recordWritten && !nc.isClosed()) yield* writeRecord({ state: "closed", session: id, sentUpTo })
        yield* Effect.sync(() => {
          endedAs = reason
          Deferred.doneUnsafe(ended, Exit.succeed(reason))
          for (const take of takers.splice(0)) take(undefined)
          sink?.ended(reason)
        })
        return reason
      })
    })

  const onControl = (msg: Msg) => {
    const request = parse<ControlRequest>(msg.string())
    if (request?.op === "presence") {
      if (!ending) msg.respond(JSON.stringify({ session: id }))
      return
    }
    if (request?.op !== "takeover" || typeof request.id !== "string" || typeof request.startedAt !== "number")
      return
    // Answered at once, not through the event queue: a takeover may come while the open is
    // still reading (its events wait), and the newer session waits for this answer.
    for (const decision of drain.handle(
      { _tag: "TakeoverAsked", by: request },
      clock.currentTimeMillisUnsafe(),
    ))
      if (decision._tag === "Refuse") msg.respond(JSON.stringify({ refused: true }))
      else if (decision._tag === "LetGo")
        Effect.runFork(
          end("taken-over").pipe(
            Effect.andThen(Effect.sync(() => msg.respond(JSON.stringify({ released: true, sentUpTo })))),
          ),
        )
  }

  /** A stream's copy of a message it stored, as a lane's next message (Drain.ts, "Copy"). */
  const token = subjectToken(recipient)
  const onCopy = (msg: Msg, lane: Priority) => {
    const record = recordOf(msg, new Date()) // 2.9 sends no time stamp: it was stored just now
    // Only the stream's own copy of this recipient's subject, with a sequence (anything else on
    // the control subject could move a lane's cursor).
    if (record.header?.get("Nats-Subject") !== `${settings.subjectPrefix}.${lane}.${token}`) return
    if (!Number.isSafeInteger(record.seq) || record.seq < 1) return
    emit({
      _tag: "Copy",
      lane,
      message: storedOf(lane, record),
      previousSeq: Number(record.header.get("Nats-Last-Sequence")) || 0,
    })
  }
  // One subscription: the control subject carries takeover and presence requests and the copies
  // of what the recipient's streams store. Where a stream does not republish (created by an
  // older Holdover on nats-server 2.9), its own subject rings the doorbell: `<prefix>.*.<token>`.
  const everyLaneCopies = priorities.every((lane) => context.copies.has(lane))
  const prefixLength = settings.subjectPrefix.split(".").length
  // One finalizer for everything the session holds (a scope's finalizer costs a closure chain
  // and a map entry each, per idle connection): its end once it is open, then the
  // subscription and the resync hook, and any fiber still running.
  let opened = false
  const holding: { subscription?: Subscription; offResync?: () => void } = {}
  yield* Effect.addFinalizer(() =>
    Effect.suspend(() => (opened ? end("closed") : Effect.void)).pipe(
      Effect.ensuring(
        Effect.suspend(() => {
          holding.offResync?.()
          holding.subscription?.unsubscribe()
          return Effect.andThen(work.close(), deletes.close())
        }),
      ),
    ),
  )
  holding.subscription = nc.subscribe(everyLaneCopies ? control : `${settings.subjectPrefix}.*.${token}`, {
    callback: (error, msg) => {
      if (error) return
      if (msg.subject === control) {
        const lane = context.laneOfStream.get(msg.headers?.get("Nats-Stream") ?? "")
        return lane ? onCopy(msg, lane) : onControl(msg)
      }
      const kind = msg.subject.split(".")[prefixLength] as Priority
      if (priorities.includes(kind) && !context.copies.has(kind)) emit({ _tag: "Doorbell", lane: kind })
    },
  })
  holding.offResync = context.onResync((lane) => emit(lane ? { _tag: "Resync", lane } : { _tag: "Resync" }))
  // On one server no flush (a round trip) is needed before the reads: they are requests on the
  // same connection, after the subscription, so the server has its interest before it reads — a
  // message stored after a read looked sends its copy here. In a cluster the stream leader
  // answers the reads and sends the copies, and the interest may reach it over another route
  // connection than the request (route pooling, the system account's): waiting for this server
  // to have it first keeps the margin the flush always gave.
  if (replicated) yield* Effect.promise(() => nc.flush())

  /** Performs the policy's decisions, in order: I/O in fibers of its own, hand-outs at once. */
  const apply = (decisions: ReadonlyArray<Decision<Stored>>): void => {
    for (const decision of decisions)
      switch (decision._tag) {
        case "Read":
          work.fork(
            readLane(decision.lane, decision.fromSeq, decision.max).pipe(
              Effect.match({
                onSuccess: ({ messages, exhausted }) =>
                  emit({ _tag: "ReadDone", lane: decision.lane, messages, exhausted }),
                onFailure: () => emit({ _tag: "ReadFailed", lane: decision.lane }),
              }),
            ),
          )
          break
        case "Deliver": {
          const { expiresAtMs: _, bytes: __, ...stored } = decision.message
          const delivery = { ...stored, redelivered: decision.redelivered }
          if (!recordWritten) {
            // The record says "open" before anything is handed out; what comes meanwhile waits.
            recordWritten = true
            held = []
            work.fork(
              writeRecord({ state: "open", session: id }).pipe(
                Effect.andThen(
                  Effect.sync(() =>
                    step(() => {
                      const waiting = held ?? []
                      held = undefined
                      if (ending) return
                      // The write may have taken long (a cluster electing a leader): what
                      // expired meanwhile is not sent.
                      const now = clock.currentTimeMillisUnsafe()
                      const expired: Array<string> = []
                      for (const next of waiting)
                        if (Date.parse(next.expiresAt) <= now) expired.push(next.id)
                        else handOut(next)
                      if (expired.length > 0) expireUnsent(expired)
                    }),
                  ),
                ),
              ),
            )
          }
          if (held) held.push(delivery)
          else handOut(delivery)
          break
        }
        case "Purge":
          deletes.fork(
            purgeBefore(decision.lane, decision.beforeSeq).pipe(
              Effect.match({
                onSuccess: () => emit({ _tag: "PurgeDone", lane: decision.lane }),
                onFailure: () => emit({ _tag: "PurgeFailed", lane: decision.lane }),
              }),
            ),
          )
          break
        case "Delete":
          for (const seq of decision.seqs) deletes.fork(deleteOne(decision.lane, seq))
          break
        case "WakeAt": {
          if (decision.at >= wakeAt) break
          const at = decision.at
          wakeAt = at
          work.fork(
            Effect.sleep(Math.max(0, at - clock.currentTimeMillisUnsafe())).pipe(
              Effect.andThen(
                Effect.sync(() => {
                  if (wakeAt === at) wakeAt = Number.POSITIVE_INFINITY
                  emit({ _tag: "Tick" })
                }),
              ),
            ),
          )
          break
        }
      }
  }

  /** Handles the events waiting, one after the other (each to the end before the next). */
  const handleEvents = () => {
    handling = true
    try {
      for (let event = events.shift(); event !== undefined; event = events.shift()) {
        apply(drain.handle(event, clock.currentTimeMillisUnsafe()))
      }
    } finally {
      handling = false
    }
  }
  /**
   * Runs `hand` (which hands deliveries out) as one step. Whoever takes a delivery may act at
   * once — a fiber waiting in `next` resumes inside the hand-out and may ack — so the events it
   * causes wait until the step is done: otherwise messages released by that ack would be handed
   * out before the rest of this step's, out of priority order.
   */
  function step(hand: () => void): void {
    if (handling) return hand()
    handling = true
    try {
      hand()
    } finally {
      handling = false
    }
    handleEvents()
  }
  function emit(event: DrainEvent<Stored>): void {
    events.push(event)
    if (!handling) handleEvents()
  }

  // Opening reads every lane once: the welcome's counts come from what they found.
  const first = drain.handle({ _tag: "Tick" }, clock.currentTimeMillisUnsafe())
  const initial = first.filter((d): d is Extract<Decision<Stored>, { _tag: "Read" }> => d._tag === "Read")
  const results = yield* Effect.forEach(
    initial,
    (read) =>
      readLane(read.lane, read.fromSeq, read.max).pipe(Effect.map((result) => [read, result] as const)),
    { concurrency: "unbounded" },
  ).pipe(Effect.mapError(unavailable("cannot read the recipient's queue")))
  // What an earlier session may have sent: from the one that let go, or else from the session
  // record — read only when the queue holds something (an idle open never needs it: whatever is
  // stored later is newer than anything an earlier session sent).
  drain.learnRedelivered(
    answer?.sentUpTo ??
      (results.some(([, { messages }]) => messages.length > 0)
        ? yield* earlierSends.pipe(Effect.mapError(unavailable("cannot read the session record")))
        : {}),
  )
  const later: Array<Decision<Stored>> = first.filter((d) => d._tag !== "Read")
  const now = clock.currentTimeMillisUnsafe()
  const pending: Record<Priority, number> = { critical: 0, high: 0, normal: 0, low: 0 }
  yield* Effect.forEach(
    results,
    ([read, { messages, exhausted, count }]) =>
      Effect.gen(function* () {
        pending[read.lane] = exhausted
          ? messages.length
          : count !== undefined
            ? count
            : yield* call(async () => {
                const subject = subjectFor(settings, read.lane, recipient)
                const info = await jsm.streams.info(streamName(settings, read.lane), {
                  subjects_filter: subject,
                })
                return info.state.subjects?.[subject] ?? messages.length
              }).pipe(Effect.mapError(unavailable("cannot count the recipient's queue")))
      }),
    { concurrency: "unbounded", discard: true },
  )
  for (const [read, { messages, exhausted }] of results)
    later.push(...drain.handle({ _tag: "ReadDone", lane: read.lane, messages, exhausted }, now))

  /** Records what the caller was handed (the next session flags it redelivered) and hands it over. */
  const give = (delivery: Delivery) => {
    sentUpTo[delivery.priority] = Math.max(sentUpTo[delivery.priority], delivery.seq)
    return delivery
  }
  function handOut(delivery: Delivery): void {
    if (sink) return sink.deliver(give(delivery))
    const take = takers.shift()
    if (take) take(give(delivery))
    else output.push(delivery)
  }
  // The open's own decisions first, then whatever came meanwhile.
  apply(later)
  handleEvents()
  opened = true

  /** Applied at once: an ack given before the session ends is purged before it ends. */
  const ackNow = (ids: ReadonlyArray<string>): number => {
    const acked = ids.filter((ackedId) => drain.inFlight.has(ackedId)).length
    if (acked > 0) emit({ _tag: "Acked", ids })
    return acked
  }
  function expireUnsent(ids: ReadonlyArray<string>): void {
    if (ids.some((expiredId) => drain.inFlight.has(expiredId))) emit({ _tag: "ExpiredUnsent", ids })
  }

  // Undefined only once the session has ended (not while it is ending): whoever waits on it
  // learns how it ended from `ended` at the same time.
  const next: Effect.Effect<Delivery | undefined> = Effect.suspend(() => {
    if (ending) return Effect.as(Deferred.await(ended), undefined)
    const delivery = output.shift()
    if (delivery) return Effect.succeed(give(delivery))
    return Effect.callback<Delivery | undefined>((resume) => {
      const take = (delivery: Delivery | undefined) => resume(Effect.succeed(delivery))
      takers.push(take)
      return Effect.sync(() => {
        const at = takers.indexOf(take)
        if (at >= 0) takers.splice(at, 1)
      })
    })
  })
  return withDeliveries({
    id,
    recipient,
    pending,
    maxInFlight: options.maxInFlight,
    next,
    listen: (listener) =>
      step(() => {
        sink = listener
        for (let delivery = output.shift(); delivery !== undefined; delivery = output.shift())
          listener.deliver(give(delivery))
        if (endedAs) listener.ended(endedAs)
      }),
    ack: (ids) => Effect.sync(() => ackNow(ids)),
    ackNow,
    expiredUnsent: expireUnsent,
    unacked: () => drain.inFlightCount,
    ended: Deferred.await(ended),
    end: Effect.asVoid(end("closed")),
    stats: () => ({ ...drain.stats }),
  })
})

/**
 * `deliveries` is built when asked for (most sessions are listened to instead), by a getter on a
 * prototype all sessions share: a getter in each session's object literal would put its
 * properties in dictionary mode (≈ 0.8 KB of heap a session).
 */
const deliveriesPrototype = {
  get deliveries(): Stream.Stream<Delivery> {
    return Stream.fromEffectRepeat((this as unknown as RecipientSession).next).pipe(
      Stream.takeWhile((delivery): delivery is Delivery => delivery !== undefined),
    )
  },
}
const withDeliveries = (session: Omit<RecipientSession, "deliveries">): RecipientSession =>
  Object.assign(
    Object.create(deliveriesPrototype) as { readonly deliveries: Stream.Stream<Delivery> },
    session,
  )

/** Asks whether a session of the recipient is open anywhere in the cluster. */
export const askPresence = (conn: NatsConnectionShape, settings: QueueSettings, recipient: string) =>
  Effect.promise(() =>
    Replies.of(conn.nc)
      .one(controlSubject(settings, recipient), JSON.stringify({ op: "presence" }), 500)
      .then(
        ({ status }) => status === Status.Ok,
        () => false,
      ),
  )
