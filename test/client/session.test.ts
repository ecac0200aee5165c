// The SDK's session life against real gateway processes and a real nats-server: a token that
// expires mid-session (4401, then a fresh one from getToken), a takeover by a newer connection on
// another node (4409), and the outbox — sends made while the gateway is unreachable go out in
// order after the reconnect and are queued once, even those whose answer was lost with the socket.
import type { RunningGateway, RunningNats } from "@holdover/local-nats"
import type { Priority } from "@holdover/protocol"
import type { SendResult } from "@holdover/client"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { TcpProxy } from "../src/TcpProxy.ts"
import {
  deliveryProblems,
  gateway,
  nats,
  priorities,
  producer,
  rank,
  record,
  token,
  total,
  unique,
  waitUntil,
  type Producer,
  type Recorded,
} from "../src/support.ts"

const counts = (critical: number, high: number, normal: number, low: number): Record<Priority, number> => ({
  critical,
  high,
  normal,
  low,
})

describe("the SDK's sessions against real gateways", () => {
  let server: RunningNats
  let a: RunningGateway
  let b: RunningGateway
  let http: Producer
  const recorded: Array<Recorded> = []
  const track = (r: Recorded) => {
    recorded.push(r)
    return r
  }

  beforeAll(async () => {
    server = await nats()
    ;[a, b] = await Promise.all([gateway(server), gateway(server)])
    http = await producer(() => a.url)
  })
  afterAll(async () => {
    await Promise.all(recorded.map((r) => r.client.close()))
    await Promise.all([a?.stop(), b?.stop()])
    await server?.stop()
  })

  const opens = (r: Recorded) => r.ofType("open").length
  const postEach = async (to: string, from: number, perPriority: number) => {
    for (let seq = from; seq < from + perPriority; seq++)
      for (const priority of priorities) await http.post({ to, priority, payload: { priority, seq } })
  }

  it("asks getToken for a fresh token when the gateway closes with 4401 at expiry, and keeps receiving", async () => {
    const tia = unique("tia")
    let tokensMinted = 0
    const client = track(
      record({
        url: a.wsUrl,
        getToken: () => {
          tokensMinted += 1
          return token(tia, ["receive"], { ttlSeconds: 2 })
        },
      }),
    )
    const expiries = () => client.ofType("reconnecting").filter((e) => e.code === 4401).length

    await waitUntil("the first session is open", () => opens(client) >= 1)
    await waitUntil("the gateway closed the session with 4401 when the token expired", () => expiries() >= 1)
    await waitUntil("a session with a fresh token is open", () => opens(client) >= 2)
    await postEach(tia, 0, 3)
    // ...and across the next expiry too.
    await waitUntil("the second token expired as well", () => expiries() >= 2)
    await postEach(tia, 3, 3)
    await waitUntil("every message posted after a refresh arrived", () => client.received.length === 24)

    expect(deliveryProblems(client.received, counts(6, 6, 6, 6))).toBeUndefined()
    expect(tokensMinted).toBeGreaterThanOrEqual(3)
    expect(client.ofType("closed")).toEqual([])
    expect(client.ofType("reconnecting").every((e) => e.code === 4401)).toBe(true)
  })

  it("a newer connection on another node takes over: the older stops for good, the newer gets everything unacked", async () => {
    const una = unique("una")
    await postEach(una, 0, 3)
    // manualAck and never acking: everything the older client receives stays unacked.
    const older = track(record({ url: a.wsUrl, getToken: () => token(una), manualAck: true }))
    await waitUntil("the older client received the backlog", () => older.received.length === 12)

    const newer = track(record({ url: b.wsUrl, getToken: () => token(una) }))
    await waitUntil("the older client was taken over", () => older.ofType("taken-over").length === 1)
    await waitUntil("the newer client received everything unacked", () => newer.received.length === 12)
    await postEach(una, 3, 1) // still the newer's, and the older does not come back for it
    await waitUntil("the newer client received the live messages", () => newer.received.length === 16)

    expect(older.client.state).toBe("closed")
    expect(older.ofType("closed").map((e) => e.code)).toEqual([4409])
    expect(older.ofType("connecting")).toHaveLength(1)
    expect(older.ofType("reconnecting")).toEqual([])
    const backlog = newer.received.slice(0, 12)
    expect(backlog.map((m) => m.id)).toEqual(older.received.map((m) => m.id))
    expect(backlog.every((m) => m.redelivered)).toBe(true)
    const ranks = backlog.map((m) => rank(m.priority))
    expect(ranks).toEqual([...ranks].sort((x, y) => x - y))
    expect(deliveryProblems(newer.received, counts(4, 4, 4, 4))).toBeUndefined()
    await waitUntil(
      "the newer client's acks emptied the queue",
      async () => total(await http.depth(una)) === 0,
    )
  })

  it("sends made while disconnected go out in order after the reconnect and are queued once", async () => {
    const oli = unique("oli")
    const ted = unique("ted")
    const proxy = await TcpProxy.start(a.port)
    try {
      const sender = track(record({ url: proxy.wsUrl, getToken: () => token(oli) }))
      await waitUntil("the sender is open", () => opens(sender) === 1)
      const sends: Array<Promise<SendResult>> = []
      const send = (priority: Priority, seq: number) =>
        sends.push(sender.client.send(ted, { priority, seq }, { priority, ttlMs: 600_000 }))

      // Written on the open socket, then the socket is reset: the answers may be lost with it.
      for (const seq of [0, 1, 2]) send("normal", seq)
      proxy.pointTo(undefined)
      proxy.cut()
      await waitUntil("the sender lost its session", () => sender.client.state !== "open")
      for (const seq of [3, 4, 5]) send("normal", seq)
      send("high", 0)
      const refused = proxy.connections
      await waitUntil("a reconnect attempt was refused", () => proxy.connections > refused)
      for (const seq of [6, 7]) send("normal", seq)
      send("high", 1)
      expect(sender.client.state).not.toBe("open")

      proxy.pointTo(b.port)
      const results = await Promise.all(sends)
      expect(results.map((r) => r.status)).toEqual(results.map(() => "queued"))
      expect(new Set(results.map((r) => r.id)).size).toBe(results.length)
      expect(opens(sender)).toBe(2)
      expect(await http.depth(ted)).toEqual(counts(0, 2, 8, 0))

      const receiver = track(record({ url: b.wsUrl, getToken: () => token(ted) }))
      await waitUntil("the receiver got every send", () => receiver.received.length === 10)
      expect(deliveryProblems(receiver.received, counts(0, 2, 8, 0))).toBeUndefined()
      expect(receiver.received.map((m) => m.id)).toEqual(
        [...results.slice(6, 7), ...results.slice(9, 10), ...results.slice(0, 6), ...results.slice(7, 9)].map(
          (r) => r.id,
        ),
      )
    } finally {
      await proxy.close()
    }
  })
})
