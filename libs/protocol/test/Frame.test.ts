import { Exit, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { ClientFrame, MessageRequest, RecipientId, reconnectPolicy } from "@holdover/protocol"

const decodeFrame = Schema.decodeUnknownExit(ClientFrame)

describe("wire schemas", () => {
  it("accepts every client frame of the contract", () => {
    for (const frame of [
      { type: "auth", token: "t" },
      { type: "ack", ids: ["m_1", "m_2"] },
      { type: "send", ref: "c1", to: "bob", priority: "normal", ttlMs: 60000, id: "k", payload: {} },
      { type: "ping" },
    ]) {
      expect(Exit.isSuccess(decodeFrame(frame)), JSON.stringify(frame)).toBe(true)
    }
  })

  it("rejects unknown frame types, wrong types and bad priorities", () => {
    for (const frame of [
      { type: "subscribe" },
      { type: "ack", ids: "m_1" },
      { type: "send", to: "bob", priority: "urgent", payload: 1 },
      { type: "send", to: "bob", ttlMs: -5, payload: 1 },
      "ping",
      null,
    ]) {
      expect(Exit.isFailure(decodeFrame(frame)), JSON.stringify(frame)).toBe(true)
    }
  })

  it("limits recipient ids to 256 bytes of UTF-8, counting bytes not characters", () => {
    const decode = Schema.decodeUnknownExit(RecipientId)
    expect(Exit.isSuccess(decode("a".repeat(256)))).toBe(true)
    expect(Exit.isFailure(decode("a".repeat(257)))).toBe(true)
    expect(Exit.isSuccess(decode("🙂".repeat(64)))).toBe(true) // 4 bytes each
    expect(Exit.isFailure(decode("🙂".repeat(65)))).toBe(true)
    expect(Exit.isFailure(decode(""))).toBe(true)
    expect(Exit.isSuccess(decode("a.*.> b"))).toBe(true)
  })

  it("makes priority, ttl and id optional on a producer message", () => {
    expect(Schema.decodeUnknownSync(MessageRequest)({ to: "alice", payload: { x: 1 } })).toEqual({
      to: "alice",
      payload: { x: 1 },
    })
  })

  it("maps close codes to the contract's reconnect column", () => {
    expect([1000, 1007, 1009, 1011, 1012, 4400, 4401, 4403, 4409, 4429, 1006].map(reconnectPolicy)).toEqual([
      "no",
      "backoff",
      "backoff",
      "backoff",
      "immediately",
      "no",
      "fresh-token",
      "no",
      "no",
      "backoff",
      "backoff",
    ])
  })
})
