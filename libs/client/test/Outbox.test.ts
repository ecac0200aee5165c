import { describe, expect, it } from "vitest"
import { HoldoverError, Outbox } from "@holdover/client"
import type { SendFrameOut } from "@holdover/client"

const collect = (outbox: Outbox): Array<SendFrameOut> => {
  const frames: Array<SendFrameOut> = []
  outbox.attemptAll((frame) => frames.push(frame) > 0)
  return frames
}

describe("Outbox", () => {
  it("sends entries in the order they were added", () => {
    const outbox = new Outbox(10)
    for (const n of [1, 2, 3]) void outbox.add("bob", { n })
    expect(collect(outbox).map((f) => f.payload)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }])
    expect(collect(outbox)).toEqual([]) // already sent on this session
  })

  it("keeps each entry's id across attempts and gives every attempt a fresh ref", () => {
    let n = 0
    const outbox = new Outbox(10, () => `gen-${++n}`)
    void outbox.add("bob", 1, { id: "order-42", priority: "high", ttlMs: 1000 })
    void outbox.add("bob", 2)
    const first = collect(outbox)
    outbox.detach() // the session ended without answers
    const second = collect(outbox)
    expect(first.map((f) => f.id)).toEqual(["order-42", "gen-1"])
    expect(second.map((f) => f.id)).toEqual(["order-42", "gen-1"])
    expect(new Set([...first, ...second].map((f) => f.ref)).size).toBe(4)
    expect(first[0]).toMatchObject({ type: "send", to: "bob", priority: "high", ttlMs: 1000, payload: 1 })
    expect(first[1]).not.toHaveProperty("priority")
  })

  it("generates UUIDs when the caller gives no id", () => {
    const outbox = new Outbox(10)
    void outbox.add("bob", 1)
    void outbox.add("bob", 2)
    const [a, b] = collect(outbox)
    expect(a!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(a!.id).not.toBe(b!.id)
  })

  it("rejects with OUTBOX_FULL beyond its capacity, and has room again once an entry settles", async () => {
    const outbox = new Outbox(2)
    const first = outbox.add("bob", 1, { id: "a" })
    void outbox.add("bob", 2)
    await expect(outbox.add("bob", 3)).rejects.toMatchObject({ code: "OUTBOX_FULL" })
    const [frame] = collect(outbox)
    expect(outbox.settle(frame!.ref, { id: "a", status: "queued" })).toBe(true)
    await expect(first).resolves.toEqual({ id: "a", status: "queued" })
    expect(outbox.size).toBe(1)
    void outbox.add("bob", 3)
    expect(outbox.size).toBe(2)
  })

  it("ignores answers to refs of an earlier attempt", async () => {
    const outbox = new Outbox(2)
    const send = outbox.add("bob", 1)
    const [old] = collect(outbox)
    outbox.detach()
    const [current] = collect(outbox)
    expect(outbox.settle(old!.ref, { id: old!.id, status: "queued" })).toBe(false)
    expect(outbox.fail(current!.ref, new HoldoverError("QUEUE_FULL", "full"))).toBe(true)
    await expect(send).rejects.toMatchObject({ code: "QUEUE_FULL" })
    expect(outbox.size).toBe(0)
  })

  it("leaves the rest unsent when the socket refuses a frame midway", () => {
    const outbox = new Outbox(5)
    for (const n of [1, 2, 3]) void outbox.add("bob", n)
    const written: Array<unknown> = []
    outbox.attemptAll((frame) => (written.length < 1 ? written.push(frame.payload) > 0 : false))
    expect(written).toEqual([1])
    expect(collect(outbox).map((f) => f.payload)).toEqual([2, 3])
  })

  it("rejects every pending entry with the given error", async () => {
    const outbox = new Outbox(5)
    const sends = [outbox.add("bob", 1), outbox.add("bob", 2)]
    outbox.rejectAll(new HoldoverError("CLIENT_CLOSED", "closed"))
    for (const send of sends) await expect(send).rejects.toMatchObject({ code: "CLIENT_CLOSED" })
    expect(outbox.size).toBe(0)
  })
})
