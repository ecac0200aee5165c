// nats.js 3.4 builds an Error (with a stack) after every request that was answered: RequestOne's
// `resolver` settles the request and then calls `cancel()`, which rejects the already settled
// promise with a fresh `RequestError("cancelled")` — a no-op that still costs the Error. In CPU
// profiles of the gateway that was 4–7 % of its busy time (idle opens, replay), more than any of
// Holdover's own functions. This skips the Error for a request that was already settled; a
// request cancelled before its answer still rejects as before. Applied once per process, and
// only while RequestOne still has the shape it was written against (otherwise nats.js is left
// as it is).
import { RequestOne } from "@nats-io/nats-core/internal"

const settled = Symbol("holdover.settled")

interface RequestOneInternals {
  [settled]?: boolean
  timer?: { cancel: () => void }
  mux: { cancel: (request: unknown) => void }
  resolver: (error: Error | null, message: unknown) => void
  cancel: (error?: Error) => void
}

let applied: boolean | undefined

/** Whether the patch is in place (false when this nats.js does not look as expected). */
export const skipErrorPerAnsweredRequest = (): boolean => {
  if (applied !== undefined) return applied
  const proto = RequestOne.prototype as unknown as RequestOneInternals
  const { resolver, cancel } = proto
  applied = typeof resolver === "function" && typeof cancel === "function" && resolver.length === 2
  if (!applied) return false
  proto.resolver = function (this: RequestOneInternals, error, message) {
    this[settled] = true
    resolver.call(this, error, message)
  }
  proto.cancel = function (this: RequestOneInternals, error) {
    if (error !== undefined || this[settled] !== true) return cancel.call(this, error)
    this.timer?.cancel()
    this.mux.cancel(this)
  }
  return true
}
