// The same producer cases through the three ways in — POST /v1/messages, POST /v1/messages/batch
// and the WebSocket `send` frame — must give the same outcome and move the same counters.
import type { RunningGateway, RunningNats } from "@holdover/local-nats"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  connect,
  gateway,
  http,
  nats,
  token,
  unique,
  waitUntil,
  type Json,
  type TestSocket,
} from "./support.ts"

/** What a producer learns: the message's status and id, or the contract's error code. */
type Outcome = { readonly status: string; readonly id: string } | { readonly error: string }

interface Transport {
  readonly name: string
  /** Opens what sending as `bearer` needs (a session, for WebSocket); returns the sender. */
  readonly open: (bearer: string) => Promise<(message: Json) => Promise<Outcome>>
}

const counted =
  /^(holdover_messages_(?:enqueued|dropped|rejected)_total(?:\{[^}]*\})?|holdover_shed_total|holdover_rate_limited_total\{reason="publish"\}) (\S+)$/

describe("publishing over HTTP, HTTP batch and WebSocket send (real gateway, real nats-server)", () => {
  let server: RunningNats
  let node: RunningGateway
  const sockets: Array<TestSocket> = []

  beforeAll(async () => {
    server = await nats()
    node = await gateway(server, {
      HOLDOVER_LOW_CAPACITY: "1", // low is drop_newest: the second low message to a recipient is dropped
      HOLDOVER_PUBLISH_RATE: "1",
      HOLDOVER_PUBLISH_BURST: "10",
      HOLDOVER_MAX_PENDING_PUBLISHES: "1",
      HOLDOVER_PUBLISH_TIMEOUT: "5s",
      HOLDOVER_SHED_EVENT_LOOP_DELAY: "0", // a loaded test machine must not shed at random
    })
  })
  afterAll(async () => {
    for (const socket of sockets) socket.ws.close()
    await node?.stop()
    await server?.stop()
  })

  const counters = async () => {
    const text = String((await http(node.url, "GET", "/metrics")).body)
    const values = new Map<string, number>()
    for (const line of text.split("\n")) {
      const match = counted.exec(line)
      if (match) values.set(match[1]!, Number(match[2]))
    }
    return values
  }
  const changes = (before: Map<string, number>, after: Map<string, number>) =>
    Object.fromEntries(
      [...after]
        .map(([name, value]) => [name, value - (before.get(name) ?? 0)] as const)
        .filter(([, change]) => change !== 0),
    )

  const outcomeOf = (body: Json): Outcome =>
    body?.error !== undefined ? { error: body.error.code } : { status: body.status, id: body.id }

  const transports: ReadonlyArray<Transport> = [
    {
      name: "POST /v1/messages",
      open: async (bearer) => async (message) =>
        outcomeOf((await http(node.url, "POST", "/v1/messages", { token: bearer, body: message })).body),
    },
    {
      name: "POST /v1/messages/batch",
      open: async (bearer) => async (message) => {
        const reply = await http(node.url, "POST", "/v1/messages/batch", {
          token: bearer,
          body: { messages: [message] },
        })
        return outcomeOf(reply.status === 200 ? reply.body["results"][0] : reply.body)
      },
    },
    {
      name: "WebSocket send",
      open: async (bearer) => {
        const socket = await connect(node.wsUrl, { token: bearer })
        sockets.push(socket)
        await socket.next((frame) => frame.type === "welcome")
        let refs = 0
        return async (message) => {
          const ref = `r${refs++}`
          socket.send({ type: "send", ref, ...message })
          const frame = await socket.next((frame) => frame["ref"] === ref)
          return frame.type === "sent"
            ? { status: frame["status"], id: frame["id"] }
            : { error: frame["code"] }
        }
      },
    },
  ]

  interface Case {
    /** The token's scopes and holdover_to; `receive` is added so that a WebSocket session opens. */
    readonly scopes?: ReadonlyArray<"publish" | "admin">
    readonly holdoverTo?: ReadonlyArray<string>
    /** What happens before the measured message (its counts are not compared), and after it. */
    readonly before?: (setup: {
      readonly send: (message: Json) => Promise<Outcome>
      readonly to: string
      readonly bearer: string
    }) => Promise<unknown>
    readonly after?: () => Promise<unknown>
    /** Time-dependent: run again (at most 3 times) while the measured message is queued. */
    readonly retryWhileQueued?: boolean
    readonly message: (to: string) => Json
    readonly outcome: Outcome
    readonly counts: Record<string, number>
  }

  let held: Promise<unknown> | undefined
  const cases: Record<string, Case> = {
    "a message is queued and counted as enqueued": {
      message: (to) => ({ to, id: "m1", priority: "high", payload: { n: 1 } }),
      outcome: { status: "queued", id: "m1" },
      counts: { 'holdover_messages_enqueued_total{priority="high"}': 1 },
    },
    "a repeated id answers queued again and counts nothing": {
      before: ({ send, to }) => send({ to, id: "m1", payload: 1 }),
      message: (to) => ({ to, id: "m1", payload: 1 }),
      outcome: { status: "queued", id: "m1" },
      counts: {},
    },
    "a message over a full drop_newest lane is dropped and counted as dropped": {
      before: ({ send, to }) => send({ to, id: "first", priority: "low", payload: 1 }),
      message: (to) => ({ to, id: "second", priority: "low", payload: 2 }),
      outcome: { status: "dropped", id: "second" },
      counts: { 'holdover_messages_dropped_total{priority="low"}': 1 },
    },
    "a token without the publish scope is refused with FORBIDDEN": {
      scopes: [],
      message: (to) => ({ to, payload: 1 }),
      outcome: { error: "FORBIDDEN" },
      counts: { 'holdover_messages_rejected_total{code="FORBIDDEN"}': 1 },
    },
    "a recipient outside holdover_to is refused with FORBIDDEN": {
      holdoverTo: ["somebody-else"],
      message: (to) => ({ to, payload: 1 }),
      outcome: { error: "FORBIDDEN" },
      counts: { 'holdover_messages_rejected_total{code="FORBIDDEN"}': 1 },
    },
    "a payload over HOLDOVER_MAX_MESSAGE_BYTES is refused with MESSAGE_TOO_LARGE": {
      message: (to) => ({ to, payload: "x".repeat(70_000) }),
      outcome: { error: "MESSAGE_TOO_LARGE" },
      counts: { 'holdover_messages_rejected_total{code="MESSAGE_TOO_LARGE"}': 1 },
    },
    "a producer over its rate is refused with RATE_LIMITED": {
      retryWhileQueued: true,
      // Ten invalid messages take the whole burst (the rate is taken before the schema is checked).
      before: ({ bearer }) =>
        http(node.url, "POST", "/v1/messages/batch", {
          token: bearer,
          body: { messages: Array.from({ length: 10 }, () => ({})) },
        }),
      message: (to) => ({ to, payload: 1 }),
      outcome: { error: "RATE_LIMITED" },
      counts: {
        'holdover_messages_rejected_total{code="RATE_LIMITED"}': 1,
        'holdover_rate_limited_total{reason="publish"}': 1,
      },
    },
    "a publish while too many are in progress is refused with QUEUE_UNAVAILABLE and counted as shed": {
      // One publish hangs on a stopped nats-server and holds the node's only publish slot.
      before: async () => {
        server.signal("SIGSTOP")
        held = http(node.url, "POST", "/v1/messages", {
          token: await token(unique("holder"), ["publish"]),
          body: { to: unique("held"), payload: 0 },
        })
        await waitUntil("a publish is in progress", async () =>
          String((await http(node.url, "GET", "/metrics")).body).includes("holdover_pending_publishes 1"),
        )
      },
      after: async () => {
        server.signal("SIGCONT")
        await held
      },
      message: (to) => ({ to, payload: 1 }),
      outcome: { error: "QUEUE_UNAVAILABLE" },
      counts: { 'holdover_messages_rejected_total{code="QUEUE_UNAVAILABLE"}': 1, holdover_shed_total: 1 },
    },
  }

  describe.each(Object.entries(cases))("%s", (_name, spec) => {
    it.each(transports)("through $name", async (transport) => {
      const run = async (): Promise<{ outcome: Outcome; counts: Record<string, number> }> => {
        const sub = unique("producer")
        const bearer = await token(sub, ["receive", ...(spec.scopes ?? ["publish"])], {
          ...(spec.holdoverTo ? { holdoverTo: spec.holdoverTo } : {}),
        })
        const send = await transport.open(bearer)
        const to = unique("to")
        try {
          await spec.before?.({ send, to, bearer })
          const before = await counters()
          const outcome = await send(spec.message(to))
          return { outcome, counts: changes(before, await counters()) }
        } finally {
          await spec.after?.()
        }
      }
      let result = await run()
      // The bucket refills a message a second: on a slow machine the spent burst may have refilled one.
      for (
        let attempt = 0;
        spec.retryWhileQueued === true && "status" in result.outcome && attempt < 3;
        attempt++
      )
        result = await run()
      expect(result.outcome).toEqual(spec.outcome)
      expect(result.counts).toEqual(spec.counts)
    })
  })

  it("a malformed message is INVALID_MESSAGE over HTTP (batch: in its result) and an INVALID_FRAME error frame over WebSocket", async () => {
    const bearer = await token(unique("producer"), ["receive", "publish"])
    for (const transport of transports.slice(0, 2)) {
      const send = await transport.open(bearer)
      const before = await counters()
      expect(await send({ payload: 1 }), transport.name).toEqual({ error: "INVALID_MESSAGE" })
      expect(changes(before, await counters()), transport.name).toEqual({
        'holdover_messages_rejected_total{code="INVALID_MESSAGE"}': 1,
      })
    }
    const socket = await connect(node.wsUrl, { token: bearer })
    sockets.push(socket)
    await socket.next((frame) => frame.type === "welcome")
    socket.send({ type: "send", ref: "bad", payload: 1 })
    expect(await socket.next((frame) => frame.type === "error")).toMatchObject({ code: "INVALID_FRAME" })
  })
})
