// The publish circuit breaker's rules on their own (Breaker.ts), on a clock the test moves: when
// it opens, what it refuses, the one probe of half-open, and which outcomes count. Breaker.test.ts
// drives the same breaker through the queue against a paused nats-server.
import { Breaker, breakerLevel, type Outcome, type Ticket } from "@holdover/queue"
import { describe, expect, it } from "vitest"

const make = () => {
  let now = 1_000
  const breaker = new Breaker({ failuresToOpen: 3, openMs: 2_000, now: () => now })
  return { breaker, advance: (ms: number) => void (now += ms) }
}

/** Admits a call and records `outcome` at once; false when the call was refused. */
const call = (breaker: Breaker, outcome: Outcome, key = "normal"): boolean => {
  const ticket = breaker.admit(key)
  if (ticket) breaker.record(ticket, outcome)
  return ticket !== undefined
}

describe("the publish circuit breaker", () => {
  it("opens after N failures in a row, refuses while open, and a success in between resets the count", () => {
    const { breaker } = make()
    expect(call(breaker, "failure")).toBe(true)
    expect(call(breaker, "failure")).toBe(true)
    expect(call(breaker, "success")).toBe(true) // the count starts again
    expect(call(breaker, "failure")).toBe(true)
    expect(call(breaker, "failure")).toBe(true)
    expect(breaker.state("normal")).toBe("closed")
    expect(call(breaker, "failure")).toBe(true)
    expect(breaker.state("normal")).toBe("open")
    expect(breaker.admit("normal")).toBeUndefined()
  })

  it("after the open time lets one probe through: its success closes, its failure opens again", () => {
    const { breaker, advance } = make()
    for (let i = 0; i < 3; i++) call(breaker, "failure")
    advance(1_999)
    expect(breaker.admit("normal")).toBeUndefined()
    advance(1)
    const probe = breaker.admit("normal")
    expect(probe?.probe).toBe(true)
    expect(breaker.state("normal")).toBe("half-open")
    expect(breaker.admit("normal")).toBeUndefined() // one probe at a time
    breaker.record(probe!, "failure")
    expect(breaker.state("normal")).toBe("open")
    expect(breaker.admit("normal")).toBeUndefined()
    advance(2_000)
    const second = breaker.admit("normal")
    breaker.record(second!, "success")
    expect(breaker.state("normal")).toBe("closed")
    expect(call(breaker, "success")).toBe(true)
  })

  it("lets the next call probe when a probe was interrupted", () => {
    const { breaker, advance } = make()
    for (let i = 0; i < 3; i++) call(breaker, "failure")
    advance(2_000)
    const probe = breaker.admit("normal")!
    breaker.record(probe, "ignored")
    expect(breaker.state("normal")).toBe("half-open")
    expect(breaker.admit("normal")?.probe).toBe(true)
  })

  it("ignores the outcome of a call admitted before the circuit changed state", () => {
    const { breaker, advance } = make()
    const early: Array<Ticket> = [breaker.admit("normal")!, breaker.admit("normal")!]
    for (let i = 0; i < 3; i++) call(breaker, "failure") // opens meanwhile
    breaker.record(early[0]!, "success") // admitted while closed: changes nothing now
    expect(breaker.state("normal")).toBe("open")
    advance(2_000)
    const probe = breaker.admit("normal")!
    breaker.record(early[1]!, "failure") // still nothing
    expect(breaker.state("normal")).toBe("half-open")
    breaker.record(probe, "success")
    expect(breaker.state("normal")).toBe("closed")
  })

  it("keeps a circuit per key, and reports the worst for the metric", () => {
    const { breaker, advance } = make()
    for (let i = 0; i < 3; i++) call(breaker, "failure", "high")
    expect(breaker.state("high")).toBe("open")
    expect(call(breaker, "success", "critical")).toBe(true)
    expect(breaker.state("critical")).toBe("closed")
    expect(breaker.worst()).toBe("open")
    advance(2_000)
    breaker.admit("high")
    expect(breaker.worst()).toBe("half-open")
    expect([breakerLevel.closed, breakerLevel["half-open"], breakerLevel.open]).toEqual([0, 1, 2])
  })
})
