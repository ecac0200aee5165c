// The SDK against real gateway processes and a real nats-server while the connection breaks:
// sockets reset mid-stream and a node killed with SIGKILL. The client reaches the gateways through
// a loopback TCP proxy (TcpProxy.ts) that the test cuts and repoints to the other node, as a load
// balancer would. What the handler saw must be every message exactly once, FIFO within each
// priority — whatever was in flight, handled-but-unacked or not yet handled when the socket went.
import type { RunningGateway, RunningNats } from "@holdover/local-nats"
import type { Priority } from "@holdover/protocol"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { TcpProxy } from "../src/TcpProxy.ts"
import {
  deliveryProblems,
  gateway,
  nats,
  priorities,
  producer,
  record,
  token,
  total,
  unique,
  waitUntil,
  type Producer,
  type Recorded,
} from "../src/support.ts"

const backlogPerPriority = 25
const livePerPriority = 10
const expected = Object.fromEntries(
  priorities.map((p) => [p, backlogPerPriority + livePerPriority]),
) as Record<Priority, number>
const all = total(expected)

/** A handler slow enough that a backlog is still being handed over when the socket goes. */
const slowHandler = () => new Promise<void>((resolve) => setTimeout(resolve, 4))

describe("the SDK against real gateways while the connection breaks", () => {
  let server: RunningNats
  let a: RunningGateway
  let b: RunningGateway
  let http: Producer

  beforeAll(async () => {
    server = await nats()
    ;[a, b] = await Promise.all([gateway(server), gateway(server)])
    http = await producer(() => b.url)
  })
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()])
    await server?.stop()
  })

  const postBacklog = async (to: string) => {
    for (let seq = 0; seq < backlogPerPriority; seq++)
      for (const priority of priorities) await http.post({ to, priority, payload: { priority, seq } })
  }
  /** Posts the live messages one by one while the test breaks the connection. */
  const postLive = async (to: string) => {
    for (let i = 0; i < livePerPriority; i++)
      for (const priority of priorities) {
        const seq = backlogPerPriority + i
        await http.post({ to, priority, payload: { priority, seq } })
      }
  }
  const opens = (recorded: Recorded) => recorded.ofType("open").length

  it("hands every message over exactly once, FIFO per priority, across sockets reset mid-stream", async () => {
    const rita = unique("rita")
    await postBacklog(rita)
    const proxy = await TcpProxy.start(a.port)
    const recorded = record({ url: proxy.wsUrl, getToken: () => token(rita), onMessage: slowHandler })
    try {
      const live = postLive(rita)
      const receivedAtCut: Array<number> = []
      // Three resets, each once the handler is well into the stream, alternating the node.
      for (const [i, threshold] of [20, 55, 90].entries()) {
        await waitUntil(`${threshold} messages handled`, () => recorded.received.length >= threshold)
        receivedAtCut.push(recorded.received.length)
        proxy.pointTo(i % 2 === 0 ? b.port : a.port)
        proxy.cut()
        await waitUntil(`session ${i + 2} is open`, () => opens(recorded) >= i + 2)
      }
      await live
      await waitUntil(`all ${all} messages handled`, () => recorded.received.length >= all, 60_000)

      expect(deliveryProblems(recorded.received, expected)).toBeUndefined()
      expect(recorded.received).toHaveLength(all)
      expect(receivedAtCut.every((n) => n < all)).toBe(true)
      // Messages in the inbox or unacked when a socket went were sent again, and handled once.
      expect(recorded.received.some((m) => m.redelivered)).toBe(true)
      const lost = recorded.ofType("reconnecting").map((e) => e.code)
      expect(lost.length).toBeGreaterThanOrEqual(3)
      expect(lost.every((code) => code === 1006)).toBe(true)
      expect(recorded.ofType("closed")).toEqual([])
      await waitUntil("every ack reached JetStream", async () => total(await http.depth(rita)) === 0)
    } finally {
      await recorded.client.close()
      await proxy.close()
    }
  })

  it("loses nothing and hands nothing over twice when the node holding the session is killed with SIGKILL", async () => {
    const kim = unique("kim")
    await postBacklog(kim)
    const doomed = await gateway(server)
    const proxy = await TcpProxy.start(doomed.port)
    const recorded = record({ url: proxy.wsUrl, getToken: () => token(kim), onMessage: slowHandler })
    try {
      const live = postLive(kim)
      await waitUntil("30 messages handled", () => recorded.received.length >= 30)
      proxy.pointTo(b.port) // the load balancer's next choice; the dead node's port refuses anyway
      doomed.signal("SIGKILL")
      expect(await doomed.exited).toBe("SIGKILL")
      const handledBeforeTheKill = recorded.received.length
      await waitUntil("a session on the surviving node", () => opens(recorded) >= 2)
      await live
      await waitUntil(`all ${all} messages handled`, () => recorded.received.length >= all, 60_000)

      expect(handledBeforeTheKill).toBeLessThan(all)
      expect(deliveryProblems(recorded.received, expected)).toBeUndefined()
      expect(recorded.received).toHaveLength(all)
      expect(recorded.ofType("reconnecting").every((e) => e.code === 1006)).toBe(true)
      expect(recorded.ofType("closed")).toEqual([])
      await waitUntil("every ack reached JetStream", async () => total(await http.depth(kim)) === 0)
    } finally {
      await recorded.client.close()
      await proxy.close()
      await doomed.stop()
    }
  })
})
