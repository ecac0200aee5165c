// Reconnect delays: capped exponential backoff with full jitter ("Exponential Backoff And
// Jitter", AWS Architecture Blog). `backoffDelay` is the pure formula; `Backoff` counts the
// attempts of one outage and is reset by the client when a session is welcomed, so the next
// outage starts again from `initialMs`.

export interface BackoffOptions {
  /** Ceiling of the first delay (attempt 0). Default 250 ms. */
  readonly initialMs: number
  /** Ceiling of every delay. Default 30 000 ms. */
  readonly maxMs: number
}

export const defaultBackoff: BackoffOptions = { initialMs: 250, maxMs: 30_000 }

/**
 * The delay before reconnect attempt `attempt` (0-based): a uniformly random whole number of
 * milliseconds in `[0, min(maxMs, initialMs × 2^attempt))`. Full jitter spreads a crowd of
 * clients that lost the same gateway over the whole window instead of sending them back together.
 * `random` returns a number in `[0, 1)`, like `Math.random`.
 */
export const backoffDelay = (
  attempt: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number => {
  const maxMs = Math.max(0, options.maxMs)
  const initialMs = Math.min(Math.max(0, options.initialMs), maxMs)
  const exponent = Number.isFinite(attempt) ? Math.max(0, Math.floor(attempt)) : 0
  // 2 ** 1100 is Infinity, which Math.min caps; no overflow to worry about.
  const ceiling = Math.min(maxMs, initialMs * 2 ** exponent)
  const r = Math.min(Math.max(random(), 0), 1)
  return Math.min(Math.floor(r * ceiling), Math.max(0, ceiling - 1))
}

/** The attempt counter of one outage. */
export class Backoff {
  readonly #options: BackoffOptions
  readonly #random: () => number
  #attempt = 0

  constructor(options: BackoffOptions = defaultBackoff, random: () => number = Math.random) {
    this.#options = options
    this.#random = random
  }

  /** Attempts made since the last reset. */
  get attempt(): number {
    return this.#attempt
  }

  /** The delay for the next attempt; counts the attempt. */
  next(): { readonly attempt: number; readonly delayMs: number } {
    const attempt = this.#attempt
    this.#attempt += 1
    return { attempt, delayMs: backoffDelay(attempt, this.#options, this.#random) }
  }

  /** Called once a session is established: the next outage starts from `initialMs` again. */
  reset(): void {
    this.#attempt = 0
  }
}
