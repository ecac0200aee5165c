// The requests a session makes on every open and every read — gets by subject (single and
// batched), the takeover ask, the presence ask — over one reply subscription per connection,
// without nats.js's request machinery. nats.js builds an Error for every expected "no" (no
// responders to a takeover nobody holds, a 404 for an empty lane) and a TimeoutError per request
// (to capture a stack), and a batched get opens a subscription of its own (a SUB and an UNSUB)
// with an async iterator. In an idle-open profile of the gateway those Errors alone were ≈ 5 % of
// the busy time, plus the garbage they leave. Here an answer is a message and its status code:
// only a request nobody answered in time fails (`NoAnswer`), as rarely as that happens.
import { createInbox, type Msg, type NatsConnection } from "@nats-io/nats-core"

/** Status codes a JetStream or core answer may carry (the header line's code). */
export const Status = {
  /** An ordinary answer (no status line). */
  Ok: 0,
  /** A batched get's last answer: no more messages follow. */
  EndOfBatch: 204,
  NotFound: 404,
  NoResponders: 503,
} as const

/** No answer in time (or the connection closed first). No API code: callers may try again. */
export class NoAnswer extends Error {
  readonly subject: string
  constructor(subject: string, why: string) {
    super(`no answer to ${subject}: ${why}`)
    this.name = "NoAnswer"
    this.subject = subject
  }
}

/** A message's status code: 0 for an ordinary one. */
export const statusOf = (msg: Msg): number => (msg.data.length === 0 ? (msg.headers?.code ?? 0) : 0)

interface Waiter {
  /** Called with each answer; true when it was the last one the request waits for. */
  readonly onAnswer: (msg: Msg, status: number) => boolean
  readonly resolve: () => void
  readonly reject: (error: Error) => void
  readonly timer: ReturnType<typeof setTimeout>
}

const perConnection = new WeakMap<NatsConnection, Replies>()

export class Replies {
  /** The replies of `nc` (one subscription, made on first use). */
  static of(nc: NatsConnection): Replies {
    let replies = perConnection.get(nc)
    if (!replies) {
      replies = new Replies(nc)
      perConnection.set(nc, replies)
    }
    return replies
  }

  private readonly nc: NatsConnection
  private readonly prefix: string
  private readonly waiting = new Map<string, Waiter>()
  private counter = 0

  private constructor(nc: NatsConnection) {
    this.nc = nc
    this.prefix = `${createInbox()}.`
    const sub = nc.subscribe(`${this.prefix}*`, {
      callback: (error, msg) => {
        if (!error) this.route(msg)
      },
    })
    void sub.closed.then(
      () => this.failAll("the connection closed"),
      () => this.failAll("the connection closed"),
    )
  }

  /** Requests in flight (tests and metrics). */
  get pending(): number {
    return this.waiting.size
  }

  /**
   * Sends `body` to `subject` and hands each answer to `onAnswer` until it returns true (then the
   * promise resolves); fails with NoAnswer when `timeoutMs` passes first.
   */
  request(
    subject: string,
    body: string | Uint8Array,
    timeoutMs: number,
    onAnswer: (msg: Msg, status: number) => boolean,
  ): Promise<void> {
    if (this.nc.isClosed()) return Promise.reject(new NoAnswer(subject, "the connection is closed"))
    const token = (this.counter++).toString(36)
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(token)
        reject(new NoAnswer(subject, `none within ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiting.set(token, { onAnswer, resolve, reject, timer })
      try {
        this.nc.publish(subject, body, { reply: this.prefix + token })
      } catch (error) {
        clearTimeout(timer)
        this.waiting.delete(token)
        reject(error instanceof Error ? error : new Error(String(error)))
      }
    })
  }

  /** One answer: its message and status (503 when nobody listens on `subject`). */
  one(subject: string, body: string | Uint8Array, timeoutMs: number): Promise<{ msg: Msg; status: number }> {
    let answer: { msg: Msg; status: number } | undefined
    return this.request(subject, body, timeoutMs, (msg, status) => {
      answer = { msg, status }
      return true
    }).then(() => answer!)
  }

  private route(msg: Msg): void {
    const token = msg.subject.slice(this.prefix.length)
    const waiter = this.waiting.get(token)
    if (!waiter) return // late (timed out), or after the last one a request waited for
    let last: boolean
    try {
      last = waiter.onAnswer(msg, statusOf(msg))
    } catch (error) {
      this.settle(token, waiter)
      return waiter.reject(error instanceof Error ? error : new Error(String(error)))
    }
    if (last) {
      this.settle(token, waiter)
      waiter.resolve()
    }
  }

  private settle(token: string, waiter: Waiter): void {
    clearTimeout(waiter.timer)
    this.waiting.delete(token)
  }

  private failAll(why: string): void {
    for (const [token, waiter] of this.waiting) {
      this.settle(token, waiter)
      waiter.reject(new NoAnswer("a request", why))
    }
  }
}
