// The publish circuit breakers (one per priority; RecipientQueue.ts says when they trip), as a
// plain synchronous state machine: a call is admitted or refused at once, and its outcome is
// recorded when it ends. It replaces Effect's CircuitBreaker (effect/persistence), which runs
// every call through a scope, a store admission, a PubSub of transitions and a classification:
// in the producer bench that was half of libs/queue's enqueue cost (direct enqueue 14 000–15 600
// msg/s with it, 27 000–31 000 without). The rules are the ones it was configured with:
// - closed: calls run; `failuresToOpen` failures in a row open the circuit (a success resets
//   the count);
// - open: calls are refused at once for `openMs`;
// - half-open (the first call after that): one probe runs while the others are refused; its
//   success closes the circuit, its failure opens it again for `openMs`.
// An outcome counts only in the state its call was admitted in (a call admitted before a trip
// and ending after it changes nothing); an interrupted call counts for nothing, and a probe that
// was interrupted lets the next call probe.

export type BreakerState = "closed" | "open" | "half-open"

/** Worst first: open, then half-open, then closed. */
export const breakerLevel: Record<BreakerState, number> = { closed: 0, "half-open": 1, open: 2 }

export type Outcome = "success" | "failure" | "ignored"

/** An admitted call: hand it back with its outcome. */
export interface Ticket {
  readonly key: string
  readonly generation: number
  readonly probe: boolean
}

interface Circuit {
  state: BreakerState
  failures: number
  openUntil: number
  /** Bumped on every change of state: outcomes of calls admitted before it are ignored. */
  generation: number
  probeOut: boolean
}

export class Breaker {
  private readonly circuits = new Map<string, Circuit>()
  private readonly failuresToOpen: number
  private readonly openMs: number
  private readonly now: () => number

  constructor(options: {
    readonly failuresToOpen: number
    readonly openMs: number
    readonly now: () => number
  }) {
    this.failuresToOpen = options.failuresToOpen
    this.openMs = options.openMs
    this.now = options.now
  }

  /** A ticket for a call that may run, or undefined: refused (open, or a probe already out). */
  admit(key: string): Ticket | undefined {
    const circuit = this.circuit(key)
    if (circuit.state === "open") {
      if (this.now() < circuit.openUntil) return undefined
      this.change(circuit, "half-open")
    }
    if (circuit.state === "half-open") {
      if (circuit.probeOut) return undefined
      circuit.probeOut = true
      return { key, generation: circuit.generation, probe: true }
    }
    return { key, generation: circuit.generation, probe: false }
  }

  record(ticket: Ticket, outcome: Outcome): void {
    const circuit = this.circuit(ticket.key)
    if (ticket.generation !== circuit.generation) return
    if (ticket.probe) {
      circuit.probeOut = false
      if (outcome === "success") this.change(circuit, "closed")
      else if (outcome === "failure") this.trip(circuit)
      return
    }
    if (outcome === "success") circuit.failures = 0
    else if (outcome === "failure" && ++circuit.failures >= this.failuresToOpen) this.trip(circuit)
  }

  state(key: string): BreakerState {
    return this.circuits.get(key)?.state ?? "closed"
  }

  /** The worst state of all the circuits (for a metric). */
  worst(): BreakerState {
    let worst: BreakerState = "closed"
    for (const circuit of this.circuits.values())
      if (breakerLevel[circuit.state] > breakerLevel[worst]) worst = circuit.state
    return worst
  }

  private circuit(key: string): Circuit {
    let circuit = this.circuits.get(key)
    if (!circuit) {
      circuit = { state: "closed", failures: 0, openUntil: 0, generation: 0, probeOut: false }
      this.circuits.set(key, circuit)
    }
    return circuit
  }

  private trip(circuit: Circuit): void {
    this.change(circuit, "open")
    circuit.openUntil = this.now() + this.openMs
  }

  private change(circuit: Circuit, state: BreakerState): void {
    circuit.state = state
    circuit.failures = 0
    circuit.probeOut = false
    circuit.generation++
  }
}
