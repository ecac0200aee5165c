// The raw baselines: what the same client library (@nats-io/jetstream 3) does on its own against
// the same nats-server, with the same payload size and the same layout as Holdover (one
// WorkQueue file stream per priority, one subject per recipient). Holdover's figures are compared
// with these, measured in the same run, so the load on the machine cancels out of the ratios.
// Lifecycle: `RawJetStream.connect(url, prefix)` creates its own four streams (named after
// `prefix`, so they never touch Holdover's) and `close()` drains the connection.
import { priorities, type Priority } from "@holdover/protocol"
import {
  AckPolicy,
  DeliverPolicy,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream"
import { connect, headers as natsHeaders, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node"
import { perSecond } from "./Stats.ts"

export const payloadBytes = 256

/** Where a recipient's messages of a priority live: a stream and a subject. */
export interface Layout {
  readonly stream: (priority: Priority) => string
  readonly subject: (priority: Priority, recipient: string) => string
}

export class RawJetStream {
  readonly nc: NatsConnection
  readonly js: JetStreamClient
  readonly jsm: JetStreamManager
  readonly prefix: string
  private readonly payload = new Uint8Array(payloadBytes).fill(120)

  private constructor(nc: NatsConnection, js: JetStreamClient, jsm: JetStreamManager, prefix: string) {
    this.nc = nc
    this.js = js
    this.jsm = jsm
    this.prefix = prefix
  }

  /** Connects, and creates the four streams of `prefix` unless `streams` is false. */
  static async connect(url: string, prefix: string, streams = true): Promise<RawJetStream> {
    const nc = await connect({ servers: [url], name: "holdover-bench-raw" })
    const jsm = await jetstreamManager(nc, { timeout: 10_000 })
    const raw = new RawJetStream(nc, jetstream(nc, { timeout: 10_000 }), jsm, prefix)
    if (streams)
      for (const priority of priorities)
        await jsm.streams.add({
          name: raw.stream(priority),
          subjects: [`${prefix.toLowerCase()}.${priority}.*`],
          retention: RetentionPolicy.Workqueue,
          storage: StorageType.File,
          num_replicas: 1,
        })
    return raw
  }

  stream(priority: Priority): string {
    return `${this.prefix}_${priority.toUpperCase()}`
  }

  subject(priority: Priority, recipient: string): string {
    return `${this.prefix.toLowerCase()}.${priority}.${Buffer.from(recipient).toString("base64url")}`
  }

  /**
   * Async publish: up to `window` publishes in flight, `count` in all (stopping at `deadline`),
   * spread over `recipients` subjects. With `envelope`, each message also carries a Nats-Msg-Id and
   * Holdover's two timestamp headers (what an enqueue stores besides the payload).
   */
  async publishRate(options: {
    count: number
    window: number
    recipients: number
    deadline: number
    envelope?: boolean
  }): Promise<{ count: number; ms: number; rate: number }> {
    const subjects = Array.from({ length: options.recipients }, (_, i) => this.subject("normal", `raw-${i}`))
    let next = 0
    let done = 0
    const started = performance.now()
    const worker = async () => {
      while (next < options.count && Date.now() < options.deadline) {
        const i = next++
        const subject = subjects[i % subjects.length] ?? "x"
        if (options.envelope) await this.publishStored(subject, this.payload, `raw-${started}-${i}`)
        else await this.js.publish(subject, this.payload)
        done++
      }
    }
    await Promise.all(Array.from({ length: options.window }, worker))
    const ms = performance.now() - started
    return { count: done, ms, rate: perSecond(done, ms) }
  }

  /** Stores a backlog for `recipient`: `counts[priority]` messages of each priority. */
  async seed(recipient: string, counts: Readonly<Record<Priority, number>>): Promise<void> {
    const jobs: Array<Promise<unknown>> = []
    for (const priority of priorities)
      for (let i = 0; i < counts[priority]; i++) {
        jobs.push(this.js.publish(this.subject(priority, recipient), this.payload))
        if (jobs.length >= 512) await Promise.all(jobs.splice(0))
      }
    await Promise.all(jobs)
  }

  /**
   * Drains `recipient`'s backlog the plain way: a pull consumer per non-empty priority (created
   * together), then fetches in priority order, 1000 at a time, acking each message (fire and
   * forget). Timed from the first consumer creation to the last message received; consumers are
   * deleted afterwards (untimed).
   */
  async fetchBacklog(
    recipient: string,
    counts: Readonly<Record<Priority, number>>,
    layout: Layout = this,
  ): Promise<number> {
    const started = performance.now()
    const lanes = await Promise.all(
      priorities
        .filter((priority) => counts[priority] > 0)
        .map(async (priority) => {
          const info = await this.jsm.consumers.add(layout.stream(priority), {
            durable_name: `raw_${Buffer.from(recipient).toString("hex").slice(0, 40)}`,
            filter_subject: layout.subject(priority, recipient),
            ack_policy: AckPolicy.Explicit,
            deliver_policy: DeliverPolicy.All,
            max_ack_pending: 100_000,
          })
          return { priority, consumer: this.js.consumers.getConsumerFromInfo(info), name: info.name }
        }),
    )
    for (const lane of lanes) {
      let left = counts[lane.priority]
      for (let round = 0; left > 0 && round < 1000; round++) {
        const batch = await lane.consumer.fetch({ max_messages: Math.min(left, 1000), expires: 5_000 })
        for await (const msg of batch) {
          msg.ack()
          left--
        }
      }
      if (left > 0) throw new Error(`raw fetch: ${left} ${lane.priority} messages of ${recipient} never came`)
    }
    const ms = performance.now() - started
    await this.nc.flush()
    await Promise.all(lanes.map((lane) => this.jsm.consumers.delete(layout.stream(lane.priority), lane.name)))
    return ms
  }

  /**
   * Publishes one message the way libs/queue stores it (Nats-Msg-Id, Holdover-Enqueued-At and
   * -Expires-At headers, the payload's JSON text as the body), without going through libs/queue.
   */
  publishStored(subject: string, body: string | Uint8Array, id: string): Promise<unknown> {
    const h: MsgHdrs = natsHeaders()
    const now = Date.now()
    h.set("Holdover-Enqueued-At", new Date(now).toISOString())
    h.set("Holdover-Expires-At", new Date(now + 3_600_000).toISOString())
    return this.js.publish(subject, body, { msgID: id, headers: h })
  }

  async close(deleteStreams = true): Promise<void> {
    if (deleteStreams)
      for (const priority of priorities)
        await this.jsm.streams.delete(this.stream(priority)).catch(() => false)
    await this.nc.drain().catch(() => undefined)
  }
}
