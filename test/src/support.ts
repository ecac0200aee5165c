// Support for the SDK's end-to-end tests: a real nats-server per test file, real gateway
// processes, tokens, the producer's HTTP calls, a client that records what its handler saw and
// which events it emitted, and the checks every scenario makes on what was received.
import {
  startNats,
  testGateway,
  testToken as token,
  type RunningGateway,
  type RunningNats,
  waitUntil as waitFor,
} from "@holdover/local-nats"
import type { Priority } from "@holdover/protocol"
import {
  createClient,
  type ClientEvents,
  type ClientOptions,
  type HoldoverClient,
  type HoldoverMessage,
} from "@holdover/client"
import { inject } from "vitest"
import WebSocket from "ws"

export { testSecret as secret, testToken as token, unique } from "@holdover/local-nats"
export const priorities: ReadonlyArray<Priority> = ["critical", "high", "normal", "low"]

export const nats = (): Promise<RunningNats> => startNats(inject("natsLauncher"))

export const gateway = (server: RunningNats, env: Record<string, string> = {}): Promise<RunningGateway> =>
  testGateway(server, env, { timeoutMs: 60_000 })

/** Polls until `condition` holds; fails with `description` after `timeoutMs` (20 s: browsers and clients are slow to start). */
export const waitUntil = (
  description: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
) => waitFor(description, condition, timeoutMs)

export interface Producer {
  /** POST /v1/messages; fails the test unless the answer is 202 queued. */
  readonly post: (body: {
    readonly to: string
    readonly priority: Priority
    readonly payload: unknown
    readonly ttlMs?: number
  }) => Promise<void>
  /** GET /v1/recipients/{id}/queue → depth per priority. */
  readonly depth: (recipient: string) => Promise<Record<Priority, number>>
}

export const producer = async (base: () => string): Promise<Producer> => {
  const auth = `Bearer ${await token("producer", ["publish", "admin"], { ttlSeconds: 3600 })}`
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${base()}${path}`, {
      method,
      headers: { Authorization: auth, "Content-Type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(15_000),
    })
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  }
  return {
    post: async (body) => {
      const { status, body: answer } = await call("POST", "/v1/messages", body)
      if (status !== 202 || answer["status"] !== "queued")
        throw new Error(`POST /v1/messages answered ${status} ${JSON.stringify(answer)}`)
    },
    depth: async (recipient) => {
      const { status, body } = await call("GET", `/v1/recipients/${encodeURIComponent(recipient)}/queue`)
      if (status !== 200) throw new Error(`GET queue answered ${status} ${JSON.stringify(body)}`)
      return body["depth"] as Record<Priority, number>
    },
  }
}

export const total = (depth: Record<Priority, number>) => priorities.reduce((sum, p) => sum + depth[p], 0)

/** The payload every scenario sends: which priority it was posted with and its place in that lane. */
export interface Numbered {
  readonly priority: Priority
  readonly seq: number
}

export interface Recorded {
  readonly client: HoldoverClient
  /** What `onMessage` was handed, in order. */
  readonly received: Array<HoldoverMessage>
  readonly events: Array<{ readonly event: keyof ClientEvents; readonly data: unknown }>
  readonly ofType: <E extends keyof ClientEvents>(event: E) => Array<ClientEvents[E]>
}

/** A client (the `ws` WebSocket, auth frame like a browser) that records what it sees. */
export const record = (
  options: Omit<ClientOptions, "onMessage"> & { readonly onMessage?: ClientOptions["onMessage"] },
): Recorded => {
  const received: Array<HoldoverMessage> = []
  const events: Recorded["events"] = []
  const client = createClient({
    WebSocket,
    backoff: { initialMs: 50, maxMs: 500 },
    ...options,
    onMessage: (message) => {
      received.push(message)
      return options.onMessage?.(message)
    },
  })
  for (const event of ["connecting", "open", "reconnecting", "closed", "taken-over", "error"] as const) {
    client.on(event, (data) => events.push({ event, data }))
  }
  const ofType = <E extends keyof ClientEvents>(event: E) =>
    events.filter((e) => e.event === event).map((e) => e.data as ClientEvents[E])
  return { client, received, events, ofType }
}

/**
 * Every message exactly once (no id twice, every expected (priority, seq) present) and FIFO within
 * each priority. Returns a description of what is wrong, or undefined.
 */
export const deliveryProblems = (
  received: ReadonlyArray<HoldoverMessage>,
  expected: Record<Priority, number>,
): string | undefined => {
  const ids = received.map((m) => m.id)
  if (new Set(ids).size !== ids.length) return `an id was handed over twice`
  for (const priority of priorities) {
    const seqs = received.filter((m) => m.priority === priority).map((m) => (m.payload as Numbered).seq)
    const want = Array.from({ length: expected[priority] }, (_, i) => i)
    if (JSON.stringify(seqs) !== JSON.stringify(want))
      return `${priority}: got seq ${JSON.stringify(seqs)}, want 0..${expected[priority] - 1} in order`
  }
  return undefined
}

export const rank = (priority: Priority) => priorities.indexOf(priority)
