import { describe, expect, it } from "vitest"
import { DedupWindow } from "@holdover/client"

describe("DedupWindow", () => {
  it("drops repeats: an id is added once", () => {
    const window = new DedupWindow(3)
    expect(window.add("m_1")).toBe(true)
    expect(window.add("m_1")).toBe(false)
    expect(window.has("m_1")).toBe(true)
    expect(window.has("m_2")).toBe(false)
    expect(window.size).toBe(1)
  })

  it("forgets the oldest ids beyond the window", () => {
    const window = new DedupWindow(3)
    for (const id of ["a", "b", "c", "d"]) window.add(id)
    expect(window.has("a")).toBe(false)
    expect(["b", "c", "d"].every((id) => window.has(id))).toBe(true)
    expect(window.size).toBe(3)
    expect(window.add("a")).toBe(true) // forgotten, so new again; evicts "b"
    expect(window.has("b")).toBe(false)
  })

  it("a repeat does not refresh or disturb the eviction order", () => {
    const window = new DedupWindow(2)
    window.add("a")
    window.add("b")
    window.add("a")
    window.add("c")
    expect(window.has("a")).toBe(false)
    expect(window.has("b") && window.has("c")).toBe(true)
  })

  it("keeps memory bounded over many ids", () => {
    const window = new DedupWindow(100)
    for (let i = 0; i < 10_000; i++) window.add(`m_${i}`)
    expect(window.size).toBe(100)
    expect(window.has("m_9999") && window.has("m_9900")).toBe(true)
    expect(window.has("m_9899")).toBe(false)
  })

  it("refuses a window that is not a positive integer", () => {
    expect(() => new DedupWindow(0)).toThrow(RangeError)
    expect(() => new DedupWindow(1.5)).toThrow(RangeError)
  })
})
