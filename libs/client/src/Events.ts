// A tiny typed event emitter (no Node `events` in a browser SDK) and the words for close codes.
// A listener that throws cannot break the client: its error becomes an `error` event (and an
// `error` listener that throws is ignored, to avoid a loop).
import { CloseCode } from "@holdover/protocol"
import type { ClientEvents } from "./Api.ts"
import { HoldoverError } from "./HoldoverError.ts"

type Listener = (data: never) => void

export class ClientEmitter {
  readonly #listeners = new Map<keyof ClientEvents, Set<Listener>>()

  on<E extends keyof ClientEvents>(event: E, listener: (data: ClientEvents[E]) => void): () => void {
    let set = this.#listeners.get(event)
    if (set === undefined) this.#listeners.set(event, (set = new Set()))
    set.add(listener)
    return () => {
      set.delete(listener)
    }
  }

  protected emit<E extends keyof ClientEvents>(event: E, data: ClientEvents[E]): void {
    const set = this.#listeners.get(event)
    if (set === undefined) return
    for (const listener of [...set] as Array<(data: ClientEvents[E]) => void>) {
      this.guard(`a "${event}" listener`, () => listener(data), event === "error")
    }
  }

  protected guard(what: string, call: () => void, silent = false): void {
    try {
      call()
    } catch (cause) {
      if (!silent)
        this.emit("error", new HoldoverError("HANDLER_FAILED", `${what} threw: ${cause}`, { cause }))
    }
  }
}

const closeReasons: Record<number, string> = {
  [CloseCode.Normal]: "closed by the server",
  [CloseCode.TooLarge]: "frame too large",
  [CloseCode.Restarting]: "gateway restarting",
  [CloseCode.ProtocolViolation]: "protocol violation",
  [CloseCode.Unauthenticated]: "not authenticated, or the token expired",
  [CloseCode.Forbidden]: "forbidden (origin or scope)",
  [CloseCode.TakenOver]: "session taken over by a newer connection of the same recipient",
  [CloseCode.RateLimited]: "rate limited",
  1006: "connection lost",
}

/** "4403 forbidden (origin or scope): <server's reason>" */
export const describeClose = (code: number, serverReason: string): string => {
  const words = closeReasons[code] ?? "connection closed"
  return serverReason === "" || serverReason === words
    ? `${code} ${words}`
    : `${code} ${words}: ${serverReason}`
}
