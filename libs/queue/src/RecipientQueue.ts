// The queue API everything else uses: enqueue for a recipient, open a delivery session,
// inspect and purge a recipient's queue. Built on NatsConnection + QueueConfig; its layer
// reconciles the stream topology before it is handed out.
//
// Failure semantics: every failure is a QueueError with a tagged reason. A publish that meets
// a disconnected client fails at once as Unavailable; one that times out is retried (same
// Nats-Msg-Id, so a retry never queues twice) on `publishRetry`, then fails as Unavailable.
import { createHash, randomUUID } from "node:crypto"
import {
  maxMessageIdLength,
  priorities,
  recipientByteLength,
  maxRecipientBytes,
  zeroCounts,
  type Priority,
  type PriorityCounts,
} from "@holdover/protocol"
import { Cause, Clock, Context, Effect, Exit, Layer, Schedule, Scope, Stream } from "effect"
import { Breaker, type BreakerState, type Outcome } from "./Breaker.ts"
import { envelopeHeaders, Header } from "./Envelope.ts"
import { Gate } from "./Gate.ts"
import { NatsConnection, untilAvailable } from "./NatsConnection.ts"
import { QueueConfig, type PriorityPolicy } from "./QueueConfig.ts"
import { queueError, type QueueError } from "./QueueError.ts"
import {
  askPresence,
  openSession as openRecipientSession,
  type RecipientSession,
  type SessionContext,
} from "./Session.ts"
import {
  ApiCode,
  apiCode,
  dedupStreamName,
  dedupSubject,
  featuresOf,
  reconcile,
  streamName,
  subjectFor,
  unavailable,
  warnIfPartitionUnsafe,
} from "./Topology.ts"

export interface EnqueueOptions {
  readonly priority?: Priority | undefined
  readonly ttlMs?: number | undefined
  readonly id?: string | undefined
  /** The producer's identity (token `sub`), stored with the message. */
  readonly producer?: string | undefined
  /**
   * This message's place among publishes to one recipient that must be stored in order
   * (a batch): its publish goes out once the one before it went out, without waiting for that
   * one's answer. The place is released however the enqueue ends.
   */
  readonly turn?: PublishTurn | undefined
}

/** One place in a PublishOrder. */
export interface PublishTurn {
  /** Resolves once every earlier place's publish went out (or will not go out). */
  readonly ready: Promise<void>
  /** This place's publish went out, or will not: the next place may go. Idempotent. */
  readonly release: () => void
  /** Whether a later place's publish already went out. */
  readonly overtaken: () => boolean
}

/**
 * Publishes that go out in the order their places were taken, pipelined: JetStream stores what
 * one connection sends in the order it arrives, so a recipient's batch needs no round trip per
 * message to stay FIFO (docs/semantics.md, "Batches"). Take the places in order, up front.
 */
export class PublishOrder {
  private tail: Promise<void> = Promise.resolve()
  private taken = 0
  private wentOut = -1

  take(): PublishTurn {
    const place = this.taken++
    const ready = this.tail
    let next!: () => void
    this.tail = new Promise<void>((resolve) => (next = resolve))
    let released = false
    return {
      ready,
      release: () => {
        if (released) return
        released = true
        // A place that is given up early (an invalid message) still passes on only in its turn.
        void ready.then(() => {
          this.wentOut = Math.max(this.wentOut, place)
          next()
        })
      },
      overtaken: () => this.wentOut > place,
    }
  }
}

export type EnqueueResult =
  | {
      readonly _tag: "Queued"
      readonly id: string
      readonly priority: Priority
      readonly expiresAt: string
      readonly seq: number
      readonly duplicate: boolean
    }
  | { readonly _tag: "Dropped"; readonly id: string; readonly priority: Priority }

export interface StreamStatus {
  readonly priority: Priority
  readonly stream: string
  readonly messages: number
  readonly bytes: number
  readonly consumers: number
  readonly replicas: number
  readonly policy: PriorityPolicy
  /** Cluster leader and replicas with their health, when JetStream runs clustered. */
  readonly cluster:
    | {
        readonly leader?: string
        readonly replicas: ReadonlyArray<{ name: string; current: boolean; lagging: number }>
      }
    | undefined
}

export interface QueueStatus {
  readonly connected: boolean
  readonly serverVersion: string
  readonly streams: ReadonlyArray<StreamStatus>
}

export { breakerLevel, type BreakerState } from "./Breaker.ts"

export interface OpenOptions {
  readonly maxInFlight?: number | undefined
  /**
   * When the client's connection began (ms since the epoch; default: now). Of two sessions of
   * one recipient the one whose connection began later wins, wherever and whenever each opens.
   */
  readonly since?: number | undefined
}

/** Retries of a publish that timed out: exponential from 50 ms, jittered, at most 2 more tries. */
export const publishRetry = Schedule.exponential("50 millis").pipe(
  Schedule.jittered,
  Schedule.upTo({ times: 2 }),
)

/**
 * The publish circuit breakers, one per priority (each priority is a stream of its own, with a
 * leader of its own on a cluster): 5 consecutive publishes that JetStream did not answer
 * (timeouts, lost connection) or answered slower than `slowPublishMs` open a priority's breaker;
 * while open, producers of that priority get Unavailable at once instead of piling up; after 2 s
 * one probe is let through (half-open) and a success closes it. A stream without a leader for a
 * while (its node cut off from the cluster) pauses its priority only, never the others.
 */
export const publishBreaker = { failuresToOpen: 5, openMs: 2_000 } as const

/** What a publish refused by an open circuit fails with (turned into Overloaded below). */
const circuitOpen = { circuit: "open" } as const

const failureOf = <A, E>(exit: Exit.Exit<A, E>): unknown =>
  Exit.isFailure(exit) ? exit.cause.reasons.find((reason) => reason._tag === "Fail")?.error : undefined

/** The dedup key of a producer-supplied id: scoped to (producer, recipient), a subject token. */
export const scopedDedupKey = (producer: string | undefined, recipient: string, id: string): string =>
  createHash("sha256")
    .update(`${producer ?? ""}\u0000${recipient}\u0000${id}`)
    .digest("base64url")

const invalid = (path: string, message: string) => queueError({ _tag: "InvalidMessage", path }, message)

const checkRecipient = (recipient: string, path: string) =>
  recipient.length === 0 || recipientByteLength(recipient) > maxRecipientBytes
    ? Effect.fail(invalid(path, `a recipient id is 1 to ${maxRecipientBytes} bytes of UTF-8`))
    : Effect.void

export class RecipientQueue extends Context.Service<
  RecipientQueue,
  {
    readonly enqueue: (
      to: string,
      payload: unknown,
      options?: EnqueueOptions,
    ) => Effect.Effect<EnqueueResult, QueueError>
    readonly depth: (recipient: string) => Effect.Effect<PriorityCounts, QueueError>
    readonly purge: (recipient: string) => Effect.Effect<number, QueueError>
    readonly openSession: (
      recipient: string,
      options?: OpenOptions,
    ) => Effect.Effect<RecipientSession, QueueError, Scope.Scope>
    /** JetStream health: connection, server version, and the four streams with their policies. */
    readonly status: () => Effect.Effect<QueueStatus, QueueError>
    /** Whether a delivery session of the recipient is open anywhere in the cluster. */
    readonly isOnline: (recipient: string) => Effect.Effect<boolean, QueueError>
    readonly isAvailable: () => boolean
    /** The worst state of the publish circuit breakers (one per priority), for metrics. */
    readonly breakerState: () => BreakerState
    /** Publishes in progress on this node (bounded by maxPendingPublishes). */
    readonly pendingPublishes: () => number
    /** Session JetStream API calls waiting for a slot (bounded in flight by apiConcurrency). */
    readonly apiQueued: () => number
  }
>()("holdover/RecipientQueue") {
  static readonly layer = Layer.effect(RecipientQueue, make())
}

/**
 * A stream's leader sends its copies. When a replicated stream elects a new leader, a message the
 * old one stored (and acknowledged) but did not copy yet is never copied: every session reads
 * that lane once more if it believes it empty — at the election, and again `electionRecheckMs`
 * later (the new leader may not have applied all its predecessor acknowledged when it announces
 * itself). One subscription per node, to the server's own advisory.
 */
const resyncOnLeaderChange = (
  conn: NatsConnection["Service"],
  laneOfStream: ReadonlyMap<string, Priority>,
  resyncAll: (lane: Priority) => Effect.Effect<void>,
) =>
  Effect.gen(function* () {
    const scope = yield* Scope.Scope
    const elections = yield* Effect.acquireRelease(
      Effect.sync(() => conn.nc.subscribe(`${leaderElectedPrefix}.*`)),
      (subscription) => Effect.sync(() => subscription.unsubscribe()),
    )
    yield* Effect.forkScoped(
      Stream.runForEach(
        Stream.fromAsyncIterable(elections, (cause) => cause),
        (msg) => {
          const lane = laneOfStream.get(msg.subject.slice(leaderElectedPrefix.length + 1))
          if (!lane) return Effect.void
          return resyncAll(lane).pipe(
            Effect.andThen(
              Effect.forkIn(Effect.andThen(Effect.sleep(electionRecheckMs), resyncAll(lane)), scope),
            ),
          )
        },
      ).pipe(Effect.ignore),
    )
  })

const leaderElectedPrefix = "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED"
/** The second read after a leader election (see resyncOnLeaderChange). */
const electionRecheckMs = 1_000

function make() {
  return Effect.gen(function* () {
    const conn = yield* NatsConnection
    const settings = yield* QueueConfig
    yield* warnIfPartitionUnsafe()
    const topology = yield* untilAvailable("the JetStream streams", reconcile())
    const { js, jsm } = conn
    const features = featuresOf(conn.serverVersion())
    const clock = yield* Clock.Clock
    const breaker = new Breaker({ ...publishBreaker, now: () => clock.currentTimeMillisUnsafe() })
    let pendingPublishes = 0
    // Sessions' JetStream API calls in flight on this node are bounded (reconnect storms).
    const apiPermits = new Gate(settings.apiConcurrency)
    const limited = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> => apiPermits.withPermit(effect)
    // Sessions read their lanes again when copies may have been lost: when the connection comes
    // back (copies sent meanwhile are gone), and on a replicated stream when its leader changes.
    const resyncs = new Set<(lane?: Priority) => void>()
    const resyncAll = (lane?: Priority) =>
      Effect.sync(() => {
        for (const resync of resyncs) resync(lane)
      })
    yield* Effect.forkScoped(Stream.runForEach(conn.statusChanges, (up) => (up ? resyncAll() : Effect.void)))
    const laneOfStream = new Map(priorities.map((lane) => [streamName(settings, lane), lane] as const))
    if (settings.replicas > 1) yield* resyncOnLeaderChange(conn, laneOfStream, resyncAll)
    const sessions: SessionContext = {
      conn,
      settings,
      limited,
      copies: topology.copies,
      laneOfStream,
      onResync: (resync) => {
        resyncs.add(resync)
        return () => void resyncs.delete(resync)
      },
    }

    const ensureConnected = Effect.suspend(() =>
      conn.isConnected()
        ? Effect.void
        : Effect.fail(queueError({ _tag: "Unavailable" }, "not connected to NATS")),
    )

    // Per message and per session open: untraced (a traced Effect.fn captures a stack trace per
    // call, ≈ 4 µs here).
    const enqueueMessage = Effect.fnUntraced(function* (
      to: string,
      payload: unknown,
      options: EnqueueOptions = {},
    ) {
      const priority = options.priority ?? "normal"
      if (!priorities.includes(priority))
        return yield* invalid("priority", `priority must be one of ${priorities.join(", ")}`)
      yield* checkRecipient(to, "to")
      const policy = settings.policies[priority]
      const ttlMs = options.ttlMs ?? policy.maxAgeMs
      if (!Number.isInteger(ttlMs) || ttlMs <= 0)
        return yield* invalid("ttlMs", "ttlMs must be a positive integer of milliseconds")
      if (ttlMs > policy.maxAgeMs)
        return yield* invalid(
          "ttlMs",
          `ttlMs ${ttlMs} exceeds the ${priority} priority's max age of ${policy.maxAgeMs} ms`,
        )
      const id = options.id ?? `m_${randomUUID()}`
      if (id.length === 0 || id.length > maxMessageIdLength || /[\r\n]/.test(id))
        return yield* invalid("id", `an id is 1 to ${maxMessageIdLength} characters without line breaks`)
      let body: string | undefined
      try {
        body = JSON.stringify(payload)
      } catch (error) {
        return yield* invalid("payload", `payload is not serialisable as JSON: ${String(error)}`)
      }
      if (body === undefined) return yield* invalid("payload", "payload is required and must be a JSON value")
      const bytes = Buffer.byteLength(body)
      if (bytes > settings.maxMessageBytes)
        return yield* queueError(
          { _tag: "MessageTooLarge", bytes, limit: settings.maxMessageBytes },
          `payload is ${bytes} bytes; the limit is ${settings.maxMessageBytes}`,
        )

      // A producer's id deduplicates within (producer, recipient), never across them: the stored
      // Nats-Msg-Id is a hash of the three, and a claim pins the priority of the first message so
      // that a repeat with another priority meets JetStream's dedup in the first one's stream.
      const dedupKey = options.id === undefined ? undefined : scopedDedupKey(options.producer, to, id)
      const now = Date.now()
      const turn = options.turn
      /** Connection losses before this message's publish went out (see the retry below). */
      let disconnectsAtSend = -1
      const publish = Effect.tryPromise({
        try: async () => {
          const target = dedupKey === undefined ? priority : await claimPriority(dedupKey, priority)
          if (turn) await turn.ready
          const stream = streamName(settings, target)
          // A repeat pinned to another priority keeps within that priority's max age.
          const targetMaxAge = settings.policies[target].maxAgeMs
          const expiresAtMs = now + Math.min(ttlMs, targetMaxAge)
          // The stream removes it at its own time (whole seconds, never before it expires).
          const ttlSeconds =
            features.messageTtl && ttlMs < targetMaxAge ? Math.max(1, Math.ceil(ttlMs / 1000)) : undefined
          if (disconnectsAtSend === -1) disconnectsAtSend = conn.disconnects()
          // nats.js writes the request before publish() returns its promise: the next turn may go.
          const acked = js.publish(subjectFor(settings, target, to), body, {
            msgID: dedupKey ?? id,
            headers: envelopeHeaders({
              id: dedupKey === undefined ? undefined : id,
              enqueuedAt: now,
              expiresAt: expiresAtMs,
              producer: options.producer,
              ttlSeconds,
            }),
            expect: { streamName: stream },
            timeout: settings.requestTimeoutMs,
          })
          turn?.release()
          const ack = await acked
          return { ack, priority: target, stream, expiresAtMs }
        },
        catch: (cause) => cause,
      })
      if (pendingPublishes >= settings.maxPendingPublishes)
        return yield* queueError(
          { _tag: "Overloaded" },
          `too many publishes in progress on this node (${settings.maxPendingPublishes}); retry shortly`,
        )
      pendingPublishes++
      const started = Date.now()
      const outcome = yield* ensureConnected.pipe(
        Effect.andThen(publish),
        Effect.retry({
          schedule: publishRetry,
          // A retry that a later message of the batch overtook stays in order only if the first
          // try reached JetStream before it: the connection was never lost since (then a timeout
          // is a late answer, and the retry's Nats-Msg-Id meets the stored message's).
          while: (cause) =>
            apiCode(cause) === undefined &&
            conn.isConnected() &&
            !(turn?.overtaken() && conn.disconnects() !== disconnectsAtSend),
        }),
        (attempt) =>
          Effect.suspend(() => {
            const ticket = breaker.admit(priority)
            if (!ticket) return Effect.fail(circuitOpen)
            return attempt.pipe(
              // JetStream answering (even "full") is health; no answer, or a slow one, is a failure.
              Effect.onExit((exit) =>
                Effect.sync(() => {
                  const outcome: Outcome =
                    Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)
                      ? "ignored"
                      : Date.now() - started > settings.slowPublishMs
                        ? "failure"
                        : Exit.isSuccess(exit) || apiCode(failureOf(exit)) !== undefined
                          ? "success"
                          : "failure"
                  breaker.record(ticket, outcome)
                }),
              ),
            )
          }),
        Effect.ensuring(Effect.sync(() => pendingPublishes--)),
        Effect.catch((cause) =>
          Effect.succeed({
            failed:
              cause === circuitOpen
                ? queueError(
                    { _tag: "Overloaded" },
                    `JetStream is not answering for the ${priority} queue; publishing ${priority} messages is paused (circuit open)`,
                  )
                : cause,
          } as const),
        ),
      )
      if ("failed" in outcome) {
        const cause = outcome.failed
        if (apiCode(cause) === ApiCode.MaxMessagesPerSubject) {
          if (policy.overflow === "drop_newest") return { _tag: "Dropped", id, priority } as EnqueueResult
          return yield* queueError(
            { _tag: "QueueFull", capacity: policy.capacity },
            `the ${priority} queue of this recipient is full (${policy.capacity} messages)`,
          )
        }
        if (cause instanceof Error && "reason" in cause) return yield* Effect.fail(cause as QueueError)
        return yield* unavailable("JetStream did not store the message")(cause)
      }
      const { ack, stream } = outcome
      let expiresAt = new Date(outcome.expiresAtMs).toISOString()
      if (ack.duplicate) {
        // Same id inside the dedup window: report the first message's expiry if it is still stored.
        const first = yield* Effect.promise(() =>
          jsm.streams.getMessage(stream, { seq: ack.seq }).catch(() => null),
        )
        expiresAt = first?.header.get(Header.ExpiresAt) || expiresAt
      }
      // A message's trace (HOLDOVER_LOG_LEVEL=debug): stored here, then sent and acked by a session.
      yield* Effect.logDebug("message stored", {
        id,
        recipient: to,
        priority: outcome.priority,
        stream,
        seq: ack.seq,
        duplicate: ack.duplicate,
      })
      return {
        _tag: "Queued",
        id,
        priority: outcome.priority,
        expiresAt,
        seq: ack.seq,
        duplicate: ack.duplicate,
      } as EnqueueResult
    })

    const enqueue = (to: string, payload: unknown, options: EnqueueOptions = {}) =>
      enqueueMessage(to, payload, options).pipe(Effect.ensuring(Effect.sync(() => options.turn?.release())))

    /**
     * The priority a dedup key's first message went to: this one if the claim is new (JetStream
     * refuses a second message on a claim's subject, atomically), else the claimed one.
     */
    const claimPriority = async (key: string, priority: Priority): Promise<Priority> => {
      const stream = dedupStreamName(settings)
      const subject = dedupSubject(settings, key)
      // A claim that expires between the refusal and the read is claimed again: twice at most.
      for (let attempt = 0; attempt < 2; attempt++) {
        // No Nats-Msg-Id: a second claim must meet the subject's one-message limit, not dedup.
        const claimed = await js
          .publish(subject, priority, { expect: { streamName: stream }, timeout: settings.requestTimeoutMs })
          .then(
            () => true,
            (error: unknown) => {
              if (apiCode(error) !== ApiCode.MaxMessagesPerSubject) throw error
              return false
            },
          )
        if (claimed) return priority
        const first = await jsm.streams
          .getMessage(stream, { last_by_subj: subject })
          .catch((error: unknown) => {
            if (apiCode(error) === ApiCode.NoMessageFound) return null
            throw error
          })
        const pinned = first?.string()
        if (pinned !== undefined && (priorities as ReadonlyArray<string>).includes(pinned))
          return pinned as Priority
      }
      return priority
    }

    const depth = Effect.fn("RecipientQueue.depth")(function* (recipient: string) {
      yield* checkRecipient(recipient, "recipient")
      yield* ensureConnected
      const counts = zeroCounts()
      yield* Effect.forEach(
        priorities,
        (priority) =>
          Effect.tryPromise({
            try: async () => {
              const subject = subjectFor(settings, priority, recipient)
              const info = await jsm.streams.info(streamName(settings, priority), {
                subjects_filter: subject,
              })
              counts[priority] = info.state.subjects?.[subject] ?? 0
            },
            catch: unavailable("cannot read queue depth"),
          }),
        { concurrency: "unbounded", discard: true },
      )
      return counts as PriorityCounts
    })

    const purge = Effect.fn("RecipientQueue.purge")(function* (recipient: string) {
      yield* checkRecipient(recipient, "recipient")
      yield* ensureConnected
      const purged = yield* Effect.forEach(
        priorities,
        (priority) =>
          Effect.tryPromise({
            try: () =>
              jsm.streams
                .purge(streamName(settings, priority), { filter: subjectFor(settings, priority, recipient) })
                .then((response) => response.purged),
            catch: unavailable("cannot purge the queue"),
          }),
        { concurrency: "unbounded" },
      )
      return purged.reduce((sum, n) => sum + n, 0)
    })

    const openSession = Effect.fnUntraced(function* (recipient: string, options: OpenOptions = {}) {
      yield* checkRecipient(recipient, "recipient")
      yield* ensureConnected
      return yield* openRecipientSession(sessions, recipient, {
        maxInFlight: Math.max(1, options.maxInFlight ?? settings.maxInFlight),
        since: options.since ?? clock.currentTimeMillisUnsafe(),
      })
    })

    const isOnline = Effect.fnUntraced(function* (recipient: string) {
      yield* checkRecipient(recipient, "recipient")
      yield* ensureConnected
      // No responders answers at once when nobody holds a session; a session answers in a round trip.
      return yield* askPresence(conn, settings, recipient)
    })

    const status = Effect.fn("RecipientQueue.status")(function* () {
      yield* ensureConnected
      const streams = yield* Effect.forEach(
        priorities,
        (priority) =>
          Effect.tryPromise({
            try: () => jsm.streams.info(streamName(settings, priority)),
            catch: unavailable("cannot read stream state"),
          }).pipe(
            Effect.map((info): StreamStatus => ({
              priority,
              stream: info.config.name,
              messages: info.state.messages,
              bytes: info.state.bytes,
              consumers: info.state.consumer_count,
              replicas: info.config.num_replicas,
              policy: settings.policies[priority],
              cluster: info.cluster
                ? {
                    ...(info.cluster.leader ? { leader: info.cluster.leader } : {}),
                    replicas: (info.cluster.replicas ?? []).map((peer) => ({
                      name: peer.name,
                      current: peer.current,
                      lagging: peer.lag ?? 0,
                    })),
                  }
                : undefined,
            })),
          ),
        { concurrency: "unbounded" },
      )
      return {
        connected: conn.isConnected(),
        serverVersion: conn.serverVersion(),
        streams,
      } satisfies QueueStatus
    })

    return RecipientQueue.of({
      enqueue,
      depth,
      purge,
      openSession,
      isOnline,
      status,
      isAvailable: conn.isConnected,
      breakerState: () => breaker.worst(),
      pendingPublishes: () => pendingPublishes,
      apiQueued: () => apiPermits.waiting,
    })
  })
}
