import { describe, expect, it } from "vitest"
import { Backoff, backoffDelay } from "@holdover/client"

const options = { initialMs: 250, maxMs: 30_000 }

describe("backoffDelay", () => {
  it("stays within [0, initialMs × 2^attempt) for every attempt", () => {
    for (let attempt = 0; attempt < 20; attempt++) {
      const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** attempt)
      for (const r of [0, 0.25, 0.5, 0.999999]) {
        const delay = backoffDelay(attempt, options, () => r)
        expect(delay).toBeGreaterThanOrEqual(0)
        expect(delay).toBeLessThan(ceiling)
        expect(Number.isInteger(delay)).toBe(true)
      }
    }
  })

  it("doubles the window with each attempt (full jitter scales with it)", () => {
    const half = (attempt: number) => backoffDelay(attempt, options, () => 0.5)
    expect([0, 1, 2, 3, 4].map(half)).toEqual([125, 250, 500, 1000, 2000])
  })

  it("caps the window at maxMs, even for huge attempt numbers", () => {
    expect(backoffDelay(7, options, () => 0.5)).toBe(15_000) // 250 × 128 = 32 000 → capped
    expect(backoffDelay(10_000, options, () => 0.999999)).toBe(29_999)
    expect(backoffDelay(Number.POSITIVE_INFINITY, options, () => 0.5)).toBe(125)
  })

  it("is jittered: the same attempt gives different delays for different random draws", () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(5, options)))
    expect(delays.size).toBeGreaterThan(10)
    const low = backoffDelay(5, options, () => 0)
    const high = backoffDelay(5, options, () => 0.99)
    expect(low).toBe(0)
    expect(high).toBe(7920)
  })

  it("tolerates a random function that returns 1 or more", () => {
    expect(backoffDelay(0, options, () => 1)).toBe(249)
  })
})

describe("Backoff", () => {
  it("counts attempts and resets to the first window after a welcome", () => {
    const backoff = new Backoff(options, () => 0.5)
    expect([backoff.next(), backoff.next(), backoff.next()]).toEqual([
      { attempt: 0, delayMs: 125 },
      { attempt: 1, delayMs: 250 },
      { attempt: 2, delayMs: 500 },
    ])
    backoff.reset()
    expect(backoff.attempt).toBe(0)
    expect(backoff.next()).toEqual({ attempt: 0, delayMs: 125 })
  })
})
