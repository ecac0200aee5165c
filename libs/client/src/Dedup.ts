// A bounded memory of recently handled message ids, so that a redelivered message (the server
// did not get our ack before the session ended) is not handed to `onMessage` twice.
// It remembers the last `capacity` ids: a ring buffer gives the eviction order, a Set gives O(1)
// lookups. Memory stays bounded however long the client runs; an id older than the window is
// forgotten, which is fine because the server only redelivers messages that are still unacked,
// and those are at most `maxInFlight` per session.

export class DedupWindow {
  readonly #capacity: number
  readonly #ring: Array<string | undefined>
  readonly #seen = new Set<string>()
  #next = 0

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`dedupWindow must be a positive integer, got ${capacity}`)
    }
    this.#capacity = capacity
    this.#ring = new Array<string | undefined>(capacity)
  }

  get capacity(): number {
    return this.#capacity
  }

  get size(): number {
    return this.#seen.size
  }

  has(id: string): boolean {
    return this.#seen.has(id)
  }

  /** Remembers `id`; returns false if it was already in the window (nothing changes then). */
  add(id: string): boolean {
    if (this.#seen.has(id)) return false
    const evicted = this.#ring[this.#next]
    if (evicted !== undefined) this.#seen.delete(evicted)
    this.#ring[this.#next] = id
    this.#next = (this.#next + 1) % this.#capacity
    this.#seen.add(id)
    return true
  }
}
