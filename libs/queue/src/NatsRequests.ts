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

// nats.js writes to its socket once per microtask that sent something (ProtocolHandler
// `sendCommand` → `flushPending` in a microtask). A node opening thousands of sessions sends from
// many fibers, so one turn of the event loop made hundreds of small writes: 8 % of the gateway's
// busy time in a storm's CPU profile was `writeBuffer`. This defers a connection's flush to the
// end of the turn (setImmediate), so what the turn sent goes out in one write; a full buffer
// (nats.js's pendingLimit) is still written at once. Per connection (Holdover's own, not every
// nats.js client in the process), and only while the protocol handler has the shape written
// against. The handler outlives reconnects (each reconnect gets a new transport).
interface ProtocolInternals {
  flushPending: () => void
  pendingLimit?: number
  outbound?: { size: () => number }
}

/** Whether `nc` now writes once per event-loop turn (false when nats.js looks different). */
export const coalesceWrites = (nc: unknown): boolean => {
  const protocol = (nc as { protocol?: ProtocolInternals }).protocol
  const flush = protocol?.flushPending
  if (
    protocol === undefined ||
    typeof flush !== "function" ||
    typeof protocol.pendingLimit !== "number" ||
    typeof protocol.outbound?.size !== "function"
  )
    return false
  let scheduled = false
  const flushNow = () => {
    scheduled = false
    flush.call(protocol)
  }
  protocol.flushPending = () => {
    if ((protocol.outbound?.size() ?? 0) >= (protocol.pendingLimit ?? 0)) return flush.call(protocol)
    if (scheduled) return
    scheduled = true
    setImmediate(flushNow)
  }
  return true
}
