// One delivery session of one recipient: strict priority order over the whole backlog, FIFO
// within a priority, at most `maxInFlight` unacked deliveries, until it is closed or taken over.
//
// Lifecycle and cost model (DESIGN.md "Scale facts"):
// - A lane per priority. A lane holds a durable pull consumer (one per recipient and priority;
//   WorkQueue streams allow only one) only while it has something to drain: at open for the
//   priorities whose subject count is non-zero, later when the doorbell — a core-NATS
//   subscription to `<prefix>.*.<recipient>` — rings. A lane drained for `consumerIdleMs` with
//   nothing unacked deletes its consumer. An idle connected recipient holds no consumer.
// - Opening first asks any older session of the recipient, anywhere in the cluster, to let go
//   (core-NATS request; no responders = nobody to wait for). It then resets each existing
//   consumer with deliveries outstanding (delete + create): everything unacked is delivered again
//   at once, in order, with no ack_wait stall, flagged `redelivered`. One with none outstanding
//   is reused as it is.
// - Deliveries are numbered by the consumer without gaps; a gap means one is in limbo (sent to a
//   fetch that had expired, or lost with a dying consumer leader): the lane resets before anything
//   newer is handed out.
// - Closing keeps the consumer of a lane that has unacked deliveries (so the next session can
//   flag them redelivered) or backlog left (the next session reuses it), deletes the others;
//   either way the next session gets everything at once.
// - An expired message (Holdover-Expires-At in the past) is acked away and counted, never yielded.
// - JetStream trouble: fetches fail, the lane waits (capped backoff) and tries again; a lost
//   consumer is recreated. The session itself only ends by close() or takeover.
import type { Priority } from "@holdover/protocol"
import { priorities } from "@holdover/protocol"
import { AckPolicy, DeliverPolicy, type Consumer, type ConsumerInfo, type JsMsg } from "@nats-io/jetstream"
import { nanos, type Msg, type Subscription } from "@nats-io/transport-node"
import type { NatsConnectionShape } from "./NatsConnection.ts"
import type { QueueSettings } from "./QueueConfig.ts"
import { consumerName, subjectToken } from "./RecipientKey.ts"
import { ApiCode, apiCode, streamName, subjectFor } from "./Topology.ts"
import { decodeStored, type Delivery } from "./Envelope.ts"
import type { ApiGate } from "./ApiGate.ts"

export type SessionEnd = "closed" | "taken-over"

/** Opening found a newer live session of the same recipient: this one never started. */
export class SupersededError extends Error {
  constructor() {
    super("a newer session of this recipient is open")
    this.name = "SupersededError"
  }
}

interface InFlight {
  readonly msg: JsMsg
  readonly lane: Lane
}

class Lane {
  consumer: Consumer | undefined
  /** Fetched from JetStream, not yet handed out. */
  readonly buffer: Array<JsMsg> = []
  /** Messages JetStream holds for this consumer that are not delivered yet (known lower bound). */
  pending = 0
  /** The doorbell rang since the last fetch started: there may be something new. */
  rang = false
  fetching = false
  unacked = 0
  /** Stream sequences up to this one were delivered to an earlier session. */
  redeliveredUpTo = 0
  /**
   * The consumer's delivery sequence of the last message this session received. Deliveries are
   * numbered without gaps; a gap means a delivery is in limbo (sent to a fetch that had already
   * expired, or lost with a consumer leader that died) and newer ones would overtake it.
   */
  deliveredSeq = 0
  idleSince = 0
  failures = 0
  retryAt = 0

  readonly priority: Priority
  readonly stream: string
  readonly subject: string

  constructor(priority: Priority, stream: string, subject: string) {
    this.priority = priority
    this.stream = stream
    this.subject = subject
  }

  get hasWork(): boolean {
    return this.pending > 0 || this.rang
  }
}

/** The consumers' own bound on unacked deliveries; a session holds at most its maxInFlight. */
const consumerMaxAckPending = 10_000

const takeoverSubject = (settings: QueueSettings, recipient: string) =>
  `${settings.subjectPrefix}.ctl.takeover.${subjectToken(recipient)}`

export const presenceSubject = (settings: QueueSettings, recipient: string) =>
  `${settings.subjectPrefix}.ctl.presence.${subjectToken(recipient)}`

export interface SessionStats {
  expired: number
  delivered: number
  redelivered: number
  acked: number
}

export class Session implements AsyncIterable<Delivery> {
  readonly lanes: ReadonlyArray<Lane>
  readonly stats: SessionStats = { expired: 0, delivered: 0, redelivered: 0, acked: 0 }
  private readonly inFlight = new Map<string, InFlight>()
  private readonly waiters: Array<() => void> = []
  /** Acks not yet confirmed by JetStream; a consumer is only deleted once they are. */
  private readonly pendingAcks = new Set<Promise<unknown>>()
  private doorbell: Subscription | undefined
  private takeover: Subscription | undefined
  private presence: Subscription | undefined
  private idleTimer: ReturnType<typeof setInterval> | undefined
  private endReason: SessionEnd | undefined
  private ending = false
  private endResolved = false
  private endResolve!: (end: SessionEnd) => void
  readonly ended: Promise<SessionEnd> = new Promise((resolve) => (this.endResolve = resolve))

  private readonly conn: NatsConnectionShape
  private readonly settings: QueueSettings
  private readonly gate: ApiGate
  readonly id: string
  readonly recipient: string
  readonly maxInFlight: number

  private constructor(
    conn: NatsConnectionShape,
    settings: QueueSettings,
    gate: ApiGate,
    id: string,
    recipient: string,
    maxInFlight: number,
  ) {
    this.conn = conn
    this.settings = settings
    this.gate = gate
    this.id = id
    this.recipient = recipient
    this.maxInFlight = maxInFlight
    this.lanes = priorities.map(
      (priority) =>
        new Lane(priority, streamName(settings, priority), subjectFor(settings, priority, recipient)),
    )
  }

  /** Counts per priority at open (what the welcome frame reports). */
  pendingAtOpen: Record<Priority, number> = { critical: 0, high: 0, normal: 0, low: 0 }

  static async open(
    conn: NatsConnectionShape,
    settings: QueueSettings,
    gate: ApiGate,
    id: string,
    recipient: string,
    maxInFlight: number,
    since?: number,
  ): Promise<Session> {
    const session = new Session(conn, settings, gate, id, recipient, maxInFlight)
    if (since !== undefined) session.startedAt = since
    session.starting = session.start()
    try {
      await session.starting
    } catch (error) {
      await session.end("closed")
      throw error
    }
    if (session.endReason) {
      await session.end(session.endReason)
      throw new SupersededError()
    }
    return session
  }

  /** When this session's connection began, for ordering it against others of the same recipient. */
  private startedAt = Date.now()
  private starting: Promise<void> = Promise.resolve()

  /** Whether a session that started at `startedAt` with `id` is newer than this one. */
  private isOlderThan(other: { startedAt: number; id: string }): boolean {
    return other.startedAt > this.startedAt || (other.startedAt === this.startedAt && other.id > this.id)
  }

  private async start(): Promise<void> {
    const { nc } = this.conn
    const subject = takeoverSubject(this.settings, this.recipient)
    // One session per recipient, cluster-wide, and the newest connection wins. Ask first: an
    // older session answers once it has let go (clean-up done); a dead one has no subscription
    // (no responders: at once); a hung one is waited for at most takeoverTimeoutMs. A session
    // whose connection is older than a live one's (a socket that closed while its session was
    // still opening) is refused and never touches the consumers.
    const answer = await nc
      .request(subject, JSON.stringify({ id: this.id, startedAt: this.startedAt }), {
        timeout: this.settings.takeoverTimeoutMs,
      })
      .then(
        (reply) => reply.string(),
        () => "none",
      )
    if (answer === "refused") {
      this.endReason = "taken-over"
      return
    }
    this.takeover = nc.subscribe(subject, {
      callback: (error, msg) => {
        if (error) return
        let other: { startedAt: number; id: string }
        try {
          other = JSON.parse(msg.string()) as { startedAt: number; id: string }
        } catch {
          return
        }
        if (other.id === this.id) return
        if (!this.isOlderThan(other)) return void msg.respond("refused")
        void this.end("taken-over").then(() => msg.respond("released"))
      },
    })
    this.presence = nc.subscribe(presenceSubject(this.settings, this.recipient), {
      callback: (error, msg) => {
        if (!error && !this.endReason) msg.respond(this.id)
      },
    })
    this.doorbell = nc.subscribe(`${this.settings.subjectPrefix}.*.${subjectToken(this.recipient)}`, {
      callback: (error, msg) => {
        if (!error) this.ring(msg)
      },
    })
    await nc.flush()

    await Promise.all(
      this.lanes.map(async (lane) => {
        if (this.endReason) return
        const info = await this.gate.run(() =>
          this.conn.jsm.streams.info(lane.stream, { subjects_filter: lane.subject }),
        )
        const count = info.state.subjects?.[lane.subject] ?? 0
        this.pendingAtOpen[lane.priority] = count
        // Nothing stored means nothing to reset either: a consumer left by a crashed session then
        // holds nothing unacked; it is reused if a message comes, or expires (inactive_threshold).
        if (count > 0 && !this.endReason) {
          await this.resetConsumer(lane, count)
          lane.pending = count
        }
      }),
    )
  }

  /** Watches for lanes to drop their consumers, only while some lane holds one (idle sessions cost no timer). */
  private watchIdle(): void {
    if (this.idleTimer || this.endReason) return
    this.idleTimer = setInterval(
      () => void this.dropIdleConsumers(),
      Math.max(250, this.settings.consumerIdleMs / 4),
    )
    this.idleTimer.unref?.()
  }

  private consumerConfig(lane: Lane) {
    return {
      durable_name: consumerName(this.recipient),
      filter_subject: lane.subject,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(this.settings.ackWaitMs),
      // Not this session's maxInFlight (the session bounds its fetches by it): one config for
      // every session, because nats-server 2.10+ refuses to "create" a consumer that exists
      // with another config.
      max_ack_pending: consumerMaxAckPending,
      // A consumer left behind by a crashed process disappears by itself.
      inactive_threshold: nanos(Math.max(this.settings.ackWaitMs * 2, 60_000)),
    }
  }

  /**
   * Make sure the lane's consumer starts from the first unacked message. Creating it is
   * idempotent: a consumer that already exists with deliveries outstanding (an earlier session's,
   * or ours in limbo) is deleted — remembering what it delivered, to flag redeliveries — and
   * created again, so its unacked messages come again at once. One with none outstanding already
   * stands at the first unacked message and is used as it is. One API call in the common case.
   */
  private async resetConsumer(lane: Lane, stored?: number): Promise<ConsumerInfo> {
    const { jsm, js } = this.conn
    // Until a reset succeeds the lane has no usable consumer: whoever fetches next resets again.
    lane.consumer = undefined
    const config = this.consumerConfig(lane)
    const create = () => this.gate.run(() => jsm.consumers.add(lane.stream, config))
    // A consumer of this name with another config (left by an older gateway version): replace it.
    const add = () =>
      create().catch(async (error: unknown) => {
        if (apiCode(error) !== ApiCode.ConsumerAlreadyExists) throw error
        const existing = await this.gate.run(() => jsm.consumers.info(lane.stream, config.durable_name))
        lane.redeliveredUpTo = Math.max(lane.redeliveredUpTo, existing.delivered.stream_seq)
        await this.gate
          .run(() => jsm.consumers.delete(lane.stream, config.durable_name))
          .catch((deleteError: unknown) => {
            if (apiCode(deleteError) !== ApiCode.ConsumerNotFound) throw deleteError
          })
        return create()
      })
    let info = await add()
    // `stored`: the subject's message count just read. A consumer that accounts for fewer (stream
    // and consumer state out of step after a failover — seen on nats-server 2.9) would never
    // deliver the rest; a new one starts from the first message stored.
    const missing = stored !== undefined && info.num_pending + info.num_ack_pending < stored
    if (info.num_ack_pending > 0 || (missing && info.delivered.consumer_seq > 0)) {
      lane.redeliveredUpTo = Math.max(lane.redeliveredUpTo, info.delivered.stream_seq)
      // A delete that failed (a consumer leader moving, a timeout) must not pass for a reset:
      // its unacked deliveries would wait for ack_wait while newer ones go ahead.
      await this.gate
        .run(() => jsm.consumers.delete(lane.stream, info.name))
        .catch((error: unknown) => {
          if (apiCode(error) !== ApiCode.ConsumerNotFound) throw error
        })
      info = await add()
      if (info.num_ack_pending > 0)
        throw new Error(`consumer ${info.name} on ${lane.stream} was not reset (recreated meanwhile?)`)
    }
    lane.consumer = js.consumers.getConsumerFromInfo(info)
    lane.deliveredSeq = info.delivered.consumer_seq
    this.watchIdle()
    return info
  }

  /**
   * The lane's consumer, made when a doorbell rings on a lane without one. A consumer of that
   * name may already exist — left by an earlier session with deliveries outstanding — so it is
   * reset: reusing it as it is would deliver newer messages before those.
   */
  private async ensureConsumer(lane: Lane): Promise<Consumer> {
    if (!lane.consumer) await this.resetConsumer(lane)
    return lane.consumer!
  }

  private ring(msg: Msg): void {
    if (this.endReason) return
    const priority = msg.subject.split(".")[1]
    const lane = this.lanes.find((candidate) => candidate.priority === priority)
    if (!lane) return
    lane.rang = true
    this.wake()
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter()
  }

  private sleep(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(resolve, ms)
      this.waiters.push(() => {
        if (timer) clearTimeout(timer)
        resolve()
      })
    })
  }

  private startFetch(lane: Lane): void {
    if (lane.fetching || this.endReason || Date.now() < lane.retryAt) return
    // Lower priorities' buffers do not count: they must never starve a higher lane.
    const room = this.maxInFlight - this.inFlight.size - lane.buffer.length
    if (room <= 0) return
    lane.fetching = true
    const rangBefore = lane.rang
    lane.rang = false
    const want = Math.max(1, Math.min(room, lane.pending > 0 ? lane.pending : 1, 256))
    void this.fetch(lane, want)
      .then(
        () => {
          lane.failures = 0
        },
        (error: unknown) => {
          lane.failures++
          lane.rang = lane.rang || rangBefore
          lane.retryAt = Date.now() + Math.min(100 * 2 ** lane.failures, 5_000) * (0.5 + Math.random() / 2)
          if (apiCode(error) === ApiCode.ConsumerNotFound) lane.consumer = undefined
          setTimeout(() => this.wake(), Math.max(0, lane.retryAt - Date.now())).unref?.()
        },
      )
      .finally(() => {
        lane.fetching = false
        this.wake()
      })
  }

  private async fetch(lane: Lane, want: number): Promise<number> {
    const consumer = await this.ensureConsumer(lane)
    const expectMessages = lane.pending > 0
    const batch = await consumer.fetch({ max_messages: want, expires: expectMessages ? 5_000 : 1_000 })
    let got = 0
    let gap = false
    for await (const msg of batch) {
      got++
      lane.pending = msg.info.pending
      if (this.endReason || gap) continue // see end(): dropped, not nak'd
      const seq = msg.info.deliverySequence
      if (seq > lane.deliveredSeq + 1) gap = true
      else {
        lane.deliveredSeq = seq
        lane.buffer.push(msg)
        this.wake()
      }
    }
    if (gap && !this.endReason) {
      // A delivery before this one is in limbo: taking the newer ones would break FIFO. Reset:
      // everything unacked comes again at once, in order.
      await this.recoverLimbo(lane)
      return got
    }
    if (got === 0 && expectMessages) {
      // An empty fetch is no proof of an empty lane: a loaded server may answer after `expires`,
      // and what it delivered then is lost in transit (delivered, never seen here) until ack_wait.
      const info = await this.gate.run(() => consumer.info())
      lane.pending = info.num_pending
      // More delivered-unacked than this session holds: some are in limbo.
      if (info.num_ack_pending > lane.unacked + lane.buffer.length) await this.recoverLimbo(lane)
    } else if (got === 0) lane.pending = 0
    return got
  }

  /**
   * Deliveries in limbo: reset the lane's consumer so everything unacked comes again at once, in
   * order (ours in flight too, flagged redelivered; the SDK drops them). The lane keeps its turn —
   * holding back lower priorities — until a reset succeeds.
   */
  private async recoverLimbo(lane: Lane): Promise<void> {
    lane.buffer.splice(0)
    lane.pending = Math.max(1, lane.pending)
    lane.pending = Math.max(1, (await this.resetConsumer(lane)).num_pending)
  }

  /** The next delivery in strict priority order; undefined once the session has ended. */
  async next(): Promise<Delivery | undefined> {
    for (;;) {
      if (this.endReason) return undefined
      if (this.inFlight.size < this.maxInFlight) {
        let again = false
        for (const lane of this.lanes) {
          const msg = lane.buffer.shift()
          if (msg) {
            const delivery = this.hand(lane, msg)
            if (delivery) return delivery
            again = true // an expired message was dropped: look again from the top
            break
          }
          if (lane.hasWork || lane.fetching) {
            this.startFetch(lane)
            // Known pending messages of a higher priority hold back the lower ones; a doorbell
            // alone does not (that message is concurrent with whatever is being sent now).
            if (lane.pending > 0) break
          }
        }
        if (again) continue
      }
      // Everything that makes work (a doorbell, an ack, a fetch ending, a retry falling due)
      // wakes this; the timeout is only a safety net.
      await this.sleep(5_000)
    }
  }

  private hand(lane: Lane, msg: JsMsg): Delivery | undefined {
    const stored = decodeStored(lane.priority, msg)
    if (Date.parse(stored.expiresAt) <= Date.now()) {
      msg.ack()
      this.stats.expired++
      return undefined
    }
    const redelivered = msg.info.deliveryCount > 1 || msg.seq <= lane.redeliveredUpTo
    const previous = this.inFlight.get(stored.id)
    if (previous) previous.lane.unacked--
    this.inFlight.set(stored.id, { msg, lane })
    lane.unacked++
    this.stats.delivered++
    if (redelivered) this.stats.redelivered++
    return { ...stored, redelivered }
  }

  /** Acks deliveries by id; unknown ids (already acked, or of another session) are ignored. */
  ack(ids: ReadonlyArray<string>): number {
    let acked = 0
    for (const id of ids) {
      const entry = this.inFlight.get(id)
      if (!entry) continue
      this.inFlight.delete(id)
      entry.lane.unacked--
      const confirmed: Promise<unknown> = entry.msg
        .ackAck({ timeout: this.settings.requestTimeoutMs })
        .catch(() => false)
      this.pendingAcks.add(confirmed)
      void confirmed.finally(() => this.pendingAcks.delete(confirmed))
      acked++
    }
    this.stats.acked += acked
    if (acked > 0) this.wake()
    return acked
  }

  get unacked(): number {
    return this.inFlight.size
  }

  private settleAcks(): Promise<unknown> {
    return Promise.all([...this.pendingAcks])
  }

  private isIdle(lane: Lane): boolean {
    return (
      !!lane.consumer && !lane.fetching && !lane.hasWork && lane.buffer.length === 0 && lane.unacked === 0
    )
  }

  private dropping = false

  private async dropIdleConsumers(): Promise<void> {
    if (this.dropping) return
    this.dropping = true
    try {
      for (const lane of this.lanes) {
        if (!this.isIdle(lane)) {
          lane.idleSince = 0
          continue
        }
        const now = Date.now()
        if (lane.idleSince === 0) lane.idleSince = now
        if (now - lane.idleSince < this.settings.consumerIdleMs) continue
        lane.idleSince = 0
        await this.settleAcks()
        if (this.endReason) return // a newer session may own a consumer of this name by now
        // Before letting go, ask: a delivery in limbo (sent to a fetch that had expired — the
        // doorbell's message on a slow cluster) or a message stored without a doorbell would
        // otherwise wait for the next message or session. Found: drain it, in order.
        const consumer = lane.consumer!
        const info = await this.gate.run(() => consumer.info()).catch(() => undefined)
        if (this.endReason) return
        if (!this.isIdle(lane) || lane.consumer !== consumer) continue
        if (info && info.num_ack_pending > 0) {
          await this.recoverLimbo(lane).catch(() => undefined)
          this.wake()
          continue
        }
        if (info && info.num_pending > 0) {
          lane.pending = info.num_pending
          this.wake()
          continue
        }
        // A message stored from here on rings the doorbell (lane.rang): the lane then makes a new
        // consumer on its next turn.
        lane.consumer = undefined
        await this.deleteConsumer(lane)
      }
      if (this.idleTimer && this.lanes.every((lane) => !lane.consumer)) {
        clearInterval(this.idleTimer)
        this.idleTimer = undefined
      }
    } finally {
      this.dropping = false
    }
  }

  private deleteConsumer(lane: Lane): Promise<unknown> {
    return this.gate
      .run(() => this.conn.jsm.consumers.delete(lane.stream, consumerName(this.recipient)))
      .catch(() => undefined)
  }

  /** Ends the session: stops delivering, hands unacked messages back to JetStream. */
  async end(reason: SessionEnd = "closed"): Promise<void> {
    if (this.endResolved) return
    if (this.endReason && this.ending) return this.ended.then(() => undefined)
    this.endReason ??= reason
    this.ending = true
    // Let an open in progress finish its consumer calls before answering anyone.
    await this.starting.catch(() => undefined)
    if (this.idleTimer) clearInterval(this.idleTimer)
    this.doorbell?.unsubscribe()
    this.presence?.unsubscribe()
    this.wake()
    // Fetches still under way end on their own; what they bring is dropped, never nak'd: a nak
    // (or a consumer delete) sent after a newer session has re-created the consumer — it has the
    // same name — would reorder or cut that session's deliveries. Dropped messages come back at
    // once when the consumer is deleted below, or reset by the next session.
    if (this.endReason === "closed" && !this.conn.nc.isClosed()) {
      await this.settleAcks()
      await Promise.all(
        this.lanes.map(async (lane) => {
          lane.buffer.splice(0)
          // A lane with backlog left keeps its consumer for the recipient's next session (which
          // reuses it: no delete + create per reconnect); inactive_threshold removes it if none comes.
          if (lane.consumer && lane.unacked === 0 && !lane.hasWork) await this.deleteConsumer(lane)
        }),
      )
    }
    // Only now may a newer session proceed: until here a takeover request waits for this answer.
    this.takeover?.unsubscribe()
    this.endResolved = true
    this.endResolve(this.endReason)
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Delivery> {
    for (;;) {
      const delivery = await this.next()
      if (!delivery) return
      yield delivery
    }
  }
}
