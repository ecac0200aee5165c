import { describe, expect, it } from "vitest"
import { ApiGate } from "@holdover/queue"

describe("ApiGate", () => {
  it("keeps at most `limit` calls in flight and runs the waiting ones in order", async () => {
    const gate = new ApiGate(3)
    let running = 0
    let peak = 0
    const order: Array<number> = []
    const call = (i: number) =>
      gate.run(async () => {
        running++
        peak = Math.max(peak, running)
        await new Promise((resolve) => setTimeout(resolve, 5 + (i % 4)))
        running--
        order.push(i)
        return i
      })
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => call(i)))
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => i))
    expect(peak).toBe(3)
    expect(gate.inFlight).toBe(0)
    expect(gate.queued).toBe(0)
    // FIFO: a call never starts before one queued ahead of it (it can finish earlier if faster).
    expect(order.indexOf(19)).toBeGreaterThan(order.indexOf(0))
  })

  it("frees the slot of a call that fails", async () => {
    const gate = new ApiGate(1)
    await expect(gate.run(() => Promise.reject(new Error("boom")))).rejects.toThrow("boom")
    expect(await gate.run(() => Promise.resolve("next"))).toBe("next")
    expect(gate.inFlight).toBe(0)
  })
})
