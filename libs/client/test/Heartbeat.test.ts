import { afterEach, beforeEach, describe, expect, it, vi } from "vitest"
import { Heartbeat } from "@holdover/client"

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

const started = (heartbeatMs: number) => {
  const heartbeat = new Heartbeat()
  const pings: Array<number> = []
  const deaths: Array<string> = []
  const t0 = Date.now()
  heartbeat.start(
    heartbeatMs,
    () => pings.push(Date.now() - t0),
    (reason) => deaths.push(reason),
  )
  return { heartbeat, pings, deaths }
}

describe("Heartbeat", () => {
  it("pings every heartbeatMs", () => {
    const { pings } = started(1000)
    vi.advanceTimersByTime(1999)
    expect(pings).toEqual([1000])
  })

  it("declares the session dead when no frame arrives within twice heartbeatMs, and stops", () => {
    const { pings, deaths } = started(1000)
    vi.advanceTimersByTime(1999)
    expect(deaths).toEqual([])
    vi.advanceTimersByTime(1)
    expect(deaths).toEqual(["no frame within 2000 ms (2 × heartbeatMs)"])
    expect(vi.getTimerCount()).toBe(0)
    expect(pings).toEqual([1000]) // the interval fires after the watchdog at t=2000
  })

  it("stays alive while frames keep arriving, however long", () => {
    const { heartbeat, deaths } = started(1000)
    for (let i = 0; i < 100; i++) {
      vi.advanceTimersByTime(1500)
      heartbeat.touch()
    }
    expect(deaths).toEqual([])
    vi.advanceTimersByTime(2000)
    expect(deaths).toHaveLength(1)
  })

  it("gives a frozen client one more ping before judging (the answer may be unread)", () => {
    const { heartbeat, pings, deaths } = started(1000)
    vi.setSystemTime(Date.now() + 5000) // the event loop was blocked for 5 s: no timer ran
    vi.advanceTimersByTime(2000) // the watchdog fires 5 s late and finds 7 s of silence
    expect(deaths).toEqual([])
    expect(pings).toEqual([6000, 7000, 7000]) // the interval twice, and the extra ping
    heartbeat.touch() // its pong arrives
    vi.advanceTimersByTime(1999)
    expect(deaths).toEqual([])
    vi.advanceTimersByTime(1)
    expect(deaths).toHaveLength(1)
  })

  it("leaves no timer behind after stop, or when heartbeatMs is 0", () => {
    const { heartbeat } = started(1000)
    expect(vi.getTimerCount()).toBe(2)
    heartbeat.stop()
    expect(vi.getTimerCount()).toBe(0)
    started(0)
    expect(vi.getTimerCount()).toBe(0)
  })
})
