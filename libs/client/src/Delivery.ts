// Hands received messages to `onMessage` one at a time, in arrival order (the server sends in
// strict priority order; running handlers concurrently would break that promise), drops the ones
// already handled (DedupWindow), and acks. Acks are coalesced: ids wait for the next tick (or
// until half of `maxInFlight` has piled up, so the server's flow control never stalls) and go
// out as one `ack` frame.
// Failure semantics: a handler that throws or rejects is reported and not acked, and its id is
// not remembered, so the server's redelivery on the next session reaches the handler again.
// Sessions: `endSession` drops messages not yet handed over and acks not yet sent — the server
// redelivers everything unacked to the next session, where a message handled in the meantime is
// recognised as a duplicate and acked again instead of handled twice.
import type { MessageFrame } from "@holdover/protocol"
import type { DedupWindow } from "./Dedup.ts"
import { HoldoverError } from "./HoldoverError.ts"

/** A message as `onMessage` receives it: the `message` frame without its `type`. */
export type HoldoverMessage = Omit<MessageFrame, "type">

export interface DeliveryOptions {
  readonly onMessage: (message: HoldoverMessage) => unknown
  readonly manualAck: boolean
  readonly dedup: DedupWindow
  /** Writes an `ack` frame on the current session; false if there is no open session. */
  readonly writeAck: (ids: ReadonlyArray<string>) => boolean
  readonly onError: (error: HoldoverError) => void
}

const maxIdsPerAck = 10_000 // AckFrame's limit in the contract schema

export class Delivery {
  readonly #options: DeliveryOptions
  /** Ids acked by the caller (manual mode), so a redelivery of them is acked again. */
  readonly #userAcked: DedupWindow | undefined
  #inbox: Array<{ readonly message: HoldoverMessage; readonly session: number }> = []
  #running = false
  #session = 0
  #acks: Array<string> = []
  #ackTimer: ReturnType<typeof setTimeout> | undefined
  #ackBatch = 128
  #closed = false

  constructor(options: DeliveryOptions, userAcked?: DedupWindow) {
    this.#options = options
    this.#userAcked = options.manualAck ? userAcked : undefined
  }

  /** A session was welcomed; `maxInFlight` sizes the ack batches. */
  startSession(maxInFlight: number): void {
    this.#session += 1
    this.#ackBatch = Math.min(maxIdsPerAck, Math.max(1, Math.floor(maxInFlight / 2)))
  }

  endSession(): void {
    this.#session += 1
    this.#inbox = []
    this.#acks = []
    this.#clearAckTimer()
  }

  receive(message: HoldoverMessage): void {
    this.#inbox.push({ message, session: this.#session })
    if (!this.#running) void this.#run()
  }

  /** Manual ack. Outside a session the ack is dropped; the redelivery will be acked instead. */
  ack(id: string): void {
    this.#userAcked?.add(id)
    this.#queueAck(id)
  }

  async #run(): Promise<void> {
    this.#running = true
    try {
      for (let next = this.#inbox.shift(); next !== undefined; next = this.#inbox.shift()) {
        const { message, session } = next
        const { dedup, manualAck, onMessage } = this.#options
        if (dedup.has(message.id)) {
          if (!manualAck || this.#userAcked?.has(message.id) === true) this.#queueAck(message.id)
          continue
        }
        try {
          await onMessage(message)
        } catch (cause) {
          this.#options.onError(
            new HoldoverError("HANDLER_FAILED", `onMessage failed for message ${message.id}; not acked`, {
              cause,
            }),
          )
          continue
        }
        dedup.add(message.id)
        // A message of a session that has ended is acked when its redelivery arrives.
        if (!manualAck && session === this.#session) this.#queueAck(message.id)
      }
    } finally {
      this.#running = false
    }
  }

  #queueAck(id: string): void {
    if (this.#closed) return
    this.#acks.push(id)
    if (this.#acks.length >= this.#ackBatch) this.flushAcks()
    else this.#ackTimer ??= setTimeout(() => this.flushAcks(), 0)
  }

  flushAcks(): void {
    this.#clearAckTimer()
    if (this.#acks.length === 0) return
    const ids = this.#acks
    this.#acks = []
    this.#options.writeAck(ids)
  }

  /** Stops the ack timer; nothing is left scheduled. */
  close(): void {
    this.#closed = true
    this.endSession()
  }

  #clearAckTimer(): void {
    if (this.#ackTimer !== undefined) clearTimeout(this.#ackTimer)
    this.#ackTimer = undefined
  }
}
