// nats.js 3.4 decodes a message's headers through `MsgHdrsImpl.append`, which for every header
// canonicalises its name, rebuilds the list of all names so far and filters it (`findKeys`), and
// `get`/`last` rebuild and filter that list again on every call. Every message a session reads
// carries about ten headers (JetStream's Nats-Sequence, Nats-Subject, Nats-Time-Stamp,
// Nats-Num-Pending… and the envelope's), and every doorbell carries the envelope's: in a CPU
// profile of a 10 000-message replay, decoding and reading headers was ≈ 18 % of the gateway's
// busy time. This decodes a well-formed header block straight into the same map, and answers
// exact-name `get`/`last`/`has` from the map — the same results, the same objects. Anything
// unusual (a status line, a name or value the original would reject) goes to nats.js's own code.
// Applied once per process, and only while MsgHdrsImpl has the shape written against.
import { Match, MsgHdrsImpl } from "@nats-io/nats-core"

const headerLine = "NATS/1.0"
const decoder = new TextDecoder()

interface Internals {
  headers: Map<string, Array<string>>
}

/** A header name nats.js accepts as it is: printable ASCII without a colon (it checks the same). */
const plainName = (name: string): boolean => {
  if (name.length === 0) return false
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c < 33 || c > 126 || c === 58) return false
  }
  return true
}

/** The decoded headers, or undefined when the block is not the plain kind (nats.js decodes it). */
export const decodeHeaders = (bytes: Uint8Array): MsgHdrsImpl | undefined => {
  const text = decoder.decode(bytes)
  let at = text.indexOf("\r\n")
  if ((at < 0 ? text : text.slice(0, at)) !== headerLine) return undefined
  const decoded = new MsgHdrsImpl()
  const map = (decoded as unknown as Internals).headers
  while (at >= 0) {
    const start = at + 2
    at = text.indexOf("\r\n", start)
    const line = at < 0 ? text.slice(start) : text.slice(start, at)
    if (line.length === 0) continue
    const colon = line.indexOf(":")
    if (colon < 0) continue // nats.js skips such a line too
    const name = line.slice(0, colon)
    const value = line.slice(colon + 1).trim()
    // nats.js throws on these (an invalid name, a bare CR or LF in a value): let it.
    if (!plainName(name) || value.includes("\n") || value.includes("\r")) return undefined
    const values = map.get(name)
    if (values) values.push(value)
    else map.set(name, [value])
  }
  return decoded
}

let applied: boolean | undefined

/** Whether the fast paths are in place (false when this nats.js does not look as expected). */
export const fastHeaders = (): boolean => {
  if (applied !== undefined) return applied
  const proto = MsgHdrsImpl.prototype as unknown as {
    get: (this: MsgHdrsImpl, name: string, match?: Match) => string
    last: (this: MsgHdrsImpl, name: string, match?: Match) => string
    has: (this: MsgHdrsImpl, name: string, match?: Match) => boolean
  }
  const { get, last, has } = proto
  const decode = MsgHdrsImpl.decode
  applied =
    typeof decode === "function" &&
    typeof get === "function" &&
    typeof last === "function" &&
    typeof has === "function" &&
    (new MsgHdrsImpl() as unknown as Partial<Internals>).headers instanceof Map
  if (!applied) return false
  MsgHdrsImpl.decode = (bytes: Uint8Array) => decodeHeaders(bytes) ?? decode.call(MsgHdrsImpl, bytes)
  const mapOf = (headers: MsgHdrsImpl) => (headers as unknown as Internals).headers
  proto.get = function (name, match = Match.Exact) {
    if (match !== Match.Exact) return get.call(this, name, match)
    const values = mapOf(this).get(name)
    return values ? values[0]! : ""
  }
  proto.last = function (name, match = Match.Exact) {
    if (match !== Match.Exact) return last.call(this, name, match)
    const values = mapOf(this).get(name)
    return values ? values[values.length - 1]! : ""
  }
  proto.has = function (name, match = Match.Exact) {
    if (match !== Match.Exact) return has.call(this, name, match)
    return mapOf(this).has(name)
  }
  return true
}
