// The header fast path (NatsHeaders.ts) against nats.js's own decoder: the same headers for every
// block, nats.js's answer (or its error) wherever the fast path steps aside, and the same `get`,
// `last` and `has` results — then through a real server, a stored message read back.
import { Match, MsgHdrsImpl, headers as natsHeaders } from "@nats-io/nats-core"
import { jetstream, jetstreamManager } from "@nats-io/jetstream"
import { startNats } from "@holdover/local-nats"
import { connect } from "@nats-io/transport-node"
import { describe, expect, inject, it } from "vitest"
import { decodeHeaders, fastHeaders } from "@holdover/queue"

// Taken before the fast path is put in place.
const originalDecode = MsgHdrsImpl.decode.bind(MsgHdrsImpl)
const original = {
  get: MsgHdrsImpl.prototype.get,
  last: MsgHdrsImpl.prototype.last,
  has: MsgHdrsImpl.prototype.has,
}

const bytes = (text: string) => new TextEncoder().encode(text)

const blocks: ReadonlyArray<readonly [string, string]> = [
  ["one header", "NATS/1.0\r\nHoldover-Id: m1\r\n\r\n"],
  [
    "what a batched direct get carries",
    "NATS/1.0\r\nNats-Msg-Id: abc\r\nHoldover-Enqueued-At: 2026-11-30T10:00:00.000Z\r\n" +
      "Holdover-Expires-At: 2026-12-01T10:00:00.000Z\r\nHoldover-Producer: svc%2Fa\r\n" +
      "Nats-Stream: HOLDOVER_NORMAL\r\nNats-Subject: hq.normal.alice\r\nNats-Sequence: 42\r\n" +
      "Nats-Time-Stamp: 2026-11-30T10:00:00.123456789Z\r\nNats-Num-Pending: 7\r\nNats-Last-Sequence: 41\r\n\r\n",
  ],
  ["a repeated name keeps every value in order", "NATS/1.0\r\nX-A: 1\r\nX-A: 2\r\nX-A: 3\r\n\r\n"],
  [
    "values are trimmed, names kept as sent",
    "NATS/1.0\r\nx-lower:   spaced value  \r\nX-Lower: other\r\n\r\n",
  ],
  ["an empty value", "NATS/1.0\r\nEmpty:\r\n\r\n"],
  ["a colon inside the value", "NATS/1.0\r\nUrl: http://example.com:80/x\r\n\r\n"],
  ["a line without a colon is skipped", "NATS/1.0\r\njunk line\r\nKept: yes\r\n\r\n"],
  ["no trailing blank line", "NATS/1.0\r\nLast: 1"],
  ["only the status line", "NATS/1.0\r\n\r\n"],
  ["unicode in a value", "NATS/1.0\r\nName: zoë ✓\r\n\r\n"],
  ["a status (not the plain kind)", "NATS/1.0 404 Message Not Found\r\n\r\n"],
  ["a status with headers", "NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 1\r\n\r\n"],
  ["a status code alone", "NATS/1.0 503\r\n\r\n"],
  ["something else entirely", "HTTP/1.1 200 OK\r\nA: b\r\n\r\n"],
  ["a space in a name (nats.js throws)", "NATS/1.0\r\nBad Name: x\r\n\r\n"],
  ["a control character in a name", "NATS/1.0\r\nBad\u0001: x\r\n\r\n"],
  ["a bare LF inside a value (nats.js throws)", "NATS/1.0\r\nA: one\ntwo\r\n\r\n"],
  ["an empty name", "NATS/1.0\r\n: value\r\n\r\n"],
]

/** What a decoder returns, comparable: headers, code and description, or the error's message. */
const outcome = (decode: (b: Uint8Array) => MsgHdrsImpl | undefined, text: string) => {
  try {
    const h = decode(bytes(text))
    if (h === undefined) return { fallback: true }
    return { headers: [...h.headers], code: h.code, description: h.description }
  } catch (error) {
    return { error: String(error) }
  }
}

describe("the header fast path", () => {
  it.each(blocks)("decodes %s as nats.js does", (_, text) => {
    const fast = outcome(decodeHeaders, text)
    const theirs = outcome(originalDecode, text)
    // The fast path gives exactly nats.js's headers, or steps aside (nats.js then decodes).
    if (!("fallback" in fast)) expect(fast).toEqual(theirs)
  })

  it("decodes the plain blocks itself and leaves the unusual ones to nats.js", () => {
    const fellBack = blocks
      .filter(([, text]) => decodeHeaders(bytes(text)) === undefined)
      .map(([name]) => name)
    expect(fellBack).toEqual([
      "a status (not the plain kind)",
      "a status with headers",
      "a status code alone",
      "something else entirely",
      "a space in a name (nats.js throws)",
      "a control character in a name",
      "a bare LF inside a value (nats.js throws)",
      "an empty name",
    ])
  })

  it("once in place, decodes and answers get, last and has as nats.js does", () => {
    expect(fastHeaders()).toBe(true)
    expect(fastHeaders()).toBe(true) // once per process
    for (const [, text] of blocks) {
      expect(outcome((b) => MsgHdrsImpl.decode(b), text)).toEqual(outcome(originalDecode, text))
      let h: MsgHdrsImpl
      try {
        h = MsgHdrsImpl.decode(bytes(text))
      } catch {
        continue
      }
      for (const name of [
        "X-A",
        "x-a",
        "Holdover-Id",
        "Nats-Sequence",
        "x-lower",
        "X-Lower",
        "Empty",
        "Nope",
      ])
        for (const match of [undefined, Match.Exact, Match.CanonicalMIME, Match.IgnoreCase]) {
          expect(h.get(name, match as "exact")).toEqual(original.get.call(h, name, match as "exact"))
          expect(h.last(name, match as "exact")).toEqual(original.last.call(h, name, match as "exact"))
          expect(h.has(name, match)).toEqual(original.has.call(h, name, match))
        }
    }
    // Headers built for publishing still behave.
    const built = natsHeaders()
    built.set("Holdover-Id", "x")
    built.append("Holdover-Id", "y")
    expect(built.get("Holdover-Id")).toBe("x")
    expect(built.last("Holdover-Id")).toBe("y")
    expect(built.has("holdover-id", Match.IgnoreCase)).toBe(true)
  })

  it("reads a stored message's headers back through a real server", async () => {
    expect(fastHeaders()).toBe(true)
    const server = await startNats(inject("natsLauncher"))
    const nc = await connect({ servers: server.url })
    try {
      const jsm = await jetstreamManager(nc)
      await jsm.streams.add({ name: "HDRS", subjects: ["hdrs.>"], allow_direct: true })
      const h = natsHeaders()
      h.set("Holdover-Id", "m-1")
      h.append("X-Many", "a")
      h.append("X-Many", "b")
      const ack = await jetstream(nc).publish("hdrs.one", "{}", { headers: h })
      const stored = await jsm.direct.getMessage("HDRS", { seq: ack.seq })
      expect(stored?.header.get("Holdover-Id")).toBe("m-1")
      expect(stored?.header.values("X-Many")).toEqual(["a", "b"])
      expect(stored?.seq).toBe(ack.seq)
      expect(stored?.subject).toBe("hdrs.one")
      // A miss is a status answer, still decoded by nats.js: no message.
      expect(await jsm.direct.getMessage("HDRS", { seq: ack.seq + 10 })).toBeNull()
    } finally {
      await nc.close()
      await server.stop()
    }
  })
})
