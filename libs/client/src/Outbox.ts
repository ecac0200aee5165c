// Sends that the server has not confirmed yet, in the order they were made. Each entry keeps
// one stable message `id` for its whole life (the caller's, or a generated UUID): it is the
// server's dedup key, so sending the entry again on a new session cannot queue it twice. Each
// attempt gets a fresh `ref`, which is how the `sent` / `error` reply finds its entry.
// Lifecycle: `add` (bounded by `capacity`; beyond it the send is rejected with OUTBOX_FULL) →
// `attemptAll` on every welcomed session, in insertion order → `settle`/`fail` by ref, or
// `rejectAll` when the client closes. `detach` forgets the refs of a session that ended, so
// the next `attemptAll` sends those entries again.
import { SendFrame } from "@holdover/protocol"
import type { Priority } from "@holdover/protocol"
import { Result, Schema } from "effect"
import { HoldoverError } from "./HoldoverError.ts"

export interface SendOptions {
  readonly priority?: Priority
  readonly ttlMs?: number
  /** Dedup key; the same id twice within the server's window (≥ 2 min) queues once. */
  readonly id?: string
}

export interface SendResult {
  readonly id: string
  readonly status: "queued" | "dropped"
}

/** A `send` frame as it goes on the wire. */
export interface SendFrameOut {
  readonly type: "send"
  readonly ref: string
  readonly to: string
  readonly priority?: Priority
  readonly ttlMs?: number
  readonly id: string
  readonly payload: unknown
}

interface Entry {
  readonly frame: Omit<SendFrameOut, "ref">
  ref: string | undefined
  readonly resolve: (result: SendResult) => void
  readonly reject: (error: HoldoverError) => void
}

/** `crypto.randomUUID` needs a secure context in browsers; fall back to getRandomValues. */
export const randomId = (): string => {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID()
  const b = crypto.getRandomValues(new Uint8Array(16))
  b[6] = (b[6]! & 0x0f) | 0x40
  b[8] = (b[8]! & 0x3f) | 0x80
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

export class Outbox {
  readonly #capacity: number
  readonly #newId: () => string
  /** Insertion-ordered, so iteration is the send order. */
  readonly #entries = new Set<Entry>()
  readonly #byRef = new Map<string, Entry>()
  #refs = 0

  constructor(capacity: number, newId: () => string = randomId) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`maxOutbox must be a positive integer, got ${capacity}`)
    }
    this.#capacity = capacity
    this.#newId = newId
  }

  get size(): number {
    return this.#entries.size
  }

  /** Queues a send; the promise settles when the server answers (or the client closes). */
  add(to: string, payload: unknown, options: SendOptions = {}): Promise<SendResult> {
    if (this.#entries.size >= this.#capacity) {
      return Promise.reject(
        new HoldoverError("OUTBOX_FULL", `the outbox already holds ${this.#capacity} unconfirmed sends`),
      )
    }
    return new Promise<SendResult>((resolve, reject) => {
      const frame = {
        type: "send" as const,
        to,
        ...(options.priority === undefined ? {} : { priority: options.priority }),
        ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }),
        id: options.id ?? this.#newId(),
        payload,
      }
      this.#entries.add({ frame, ref: undefined, resolve, reject })
    })
  }

  /**
   * Hands every entry not yet sent on the current session to `write`, oldest first, each with a
   * fresh ref. Stops at the first entry `write` refuses (socket gone); it stays unsent.
   */
  attemptAll(write: (frame: SendFrameOut) => boolean): void {
    for (const entry of this.#entries) {
      if (entry.ref !== undefined) continue
      this.#refs += 1
      const ref = `r${this.#refs}`
      if (!write({ ...entry.frame, ref })) return
      entry.ref = ref
      this.#byRef.set(ref, entry)
    }
  }

  /** The session ended: replies to its refs can no longer arrive, so everything is unsent again. */
  detach(): void {
    for (const entry of this.#entries) entry.ref = undefined
    this.#byRef.clear()
  }

  /** Resolves the entry sent with `ref`; false if no entry has that ref. */
  settle(ref: string, result: SendResult): boolean {
    const entry = this.#take(ref)
    entry?.resolve(result)
    return entry !== undefined
  }

  /** Rejects the entry sent with `ref`; false if no entry has that ref. */
  fail(ref: string, error: HoldoverError): boolean {
    const entry = this.#take(ref)
    entry?.reject(error)
    return entry !== undefined
  }

  rejectAll(error: HoldoverError): void {
    const entries = [...this.#entries]
    this.#entries.clear()
    this.#byRef.clear()
    for (const entry of entries) entry.reject(error)
  }

  #take(ref: string): Entry | undefined {
    const entry = this.#byRef.get(ref)
    if (entry === undefined) return undefined
    this.#byRef.delete(ref)
    this.#entries.delete(entry)
    return entry
  }
}

const validateSend = Schema.decodeUnknownResult(SendFrame)

/** Checks a send against the contract's schema before it is queued; the error, or undefined. */
export const invalidSend = (
  to: string,
  payload: unknown,
  options: SendOptions,
): HoldoverError | undefined => {
  const { priority, ttlMs, id } = options
  const decoded = validateSend({
    type: "send",
    to,
    payload,
    ...(priority === undefined ? {} : { priority }),
    ...(ttlMs === undefined ? {} : { ttlMs }),
    ...(id === undefined ? {} : { id }),
  })
  if (Result.isFailure(decoded)) return new HoldoverError("INVALID_MESSAGE", decoded.failure.message)
  try {
    if (JSON.stringify(payload) === undefined) throw new TypeError("undefined is not JSON")
  } catch (cause) {
    return new HoldoverError("INVALID_MESSAGE", `payload is not a JSON value: ${String(cause)}`, { cause })
  }
  return undefined
}
