import type { RunningGateway, RunningNats } from "@holdover/local-nats"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { connect, gateway, http, nats, token, unique, waitUntil, type Json } from "./support.ts"

describe("WebSocket sessions (real gateway processes, real nats-server, real ws clients)", () => {
  let server: RunningNats
  let a: RunningGateway
  let b: RunningGateway
  let producer: string

  beforeAll(async () => {
    server = await nats()
    ;[a, b] = await Promise.all([
      gateway(server, { HOLDOVER_MAX_FRAME_BYTES: "4096" }),
      gateway(server, { HOLDOVER_MAX_FRAME_BYTES: "4096" }),
    ])
    producer = await token("producer", ["publish", "admin"])
  })
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()])
    await server?.stop()
  })

  const post = (node: RunningGateway, to: string, payload: unknown, extra: Record<string, unknown> = {}) =>
    http(node.url, "POST", "/v1/messages", { token: producer, body: { to, payload, ...extra } })

  it("welcomes with the pending counts, then replays critical → high → normal → low, FIFO inside each", async () => {
    const alice = unique("alice")
    const sequence = ["low", "normal", "high", "critical", "normal", "low", "critical", "high"]
    for (const [i, priority] of sequence.entries()) await post(a, alice, { i }, { priority })
    const socket = await connect(a.wsUrl, { token: await token(alice) })
    const welcome = await socket.next()
    expect(welcome).toMatchObject({
      type: "welcome",
      recipient: alice,
      pending: { critical: 2, high: 2, normal: 2, low: 2 },
      maxInFlight: 1024,
      heartbeatMs: 5000,
    })
    expect(welcome["session"]).toMatch(/^s_/)
    const got = await socket.messages(8)
    expect(got.map((m) => `${m["priority"]}:${m["payload"]["i"]}`)).toEqual([
      "critical:3",
      "critical:6",
      "high:2",
      "high:7",
      "normal:1",
      "normal:4",
      "low:0",
      "low:5",
    ])
    expect(got[0]).toMatchObject({ redelivered: false })
    expect(Date.parse(got[0]!["enqueuedAt"])).toBeLessThanOrEqual(Date.now())
    // A live message arrives too, and acked ones are gone from the queue.
    await post(a, alice, "live", { priority: "high" })
    expect((await socket.messages(1))[0]?.["payload"]).toBe("live")
    await waitUntil("the acks empty the queue", async () => {
      const depth = (await http(a.url, "GET", `/v1/recipients/${alice}/queue`, { token: producer })).body[
        "depth"
      ]
      return depth.critical + depth.high + depth.normal + depth.low === 0
    })
    expect(
      (await http(a.url, "GET", `/v1/recipients/${alice}/queue`, { token: producer })).body["online"],
    ).toBe(true)
    socket.ws.close(1000)
    expect((await socket.closed).code).toBe(1000)
  })

  it("authenticates browsers with a first auth frame, and checks their origin", async () => {
    const bob = unique("bob")
    await post(a, bob, "hello")
    const socket = await connect(a.wsUrl, { authFrame: await token(bob), origin: "http://allowed.example" })
    expect((await socket.next()).type).toBe("welcome")
    expect((await socket.messages(1))[0]?.["payload"]).toBe("hello")
    socket.ws.close()
    const evil = await connect(a.wsUrl, { authFrame: await token(bob), origin: "http://evil.example" })
    expect((await evil.closed).code).toBe(4403)
  })

  it("closes with 4401 for a bad or expired token, a non-auth first frame, and when the token expires", async () => {
    const carol = unique("carol")
    const forged = await connect(a.wsUrl, { token: (await token(carol)).slice(0, -3) + "abc" })
    expect((await forged.closed).code).toBe(4401)
    const expired = await connect(a.wsUrl, { authFrame: await token(carol, ["receive"], { ttlSeconds: -5 }) })
    expect((await expired.closed).code).toBe(4401)
    const rude = await connect(a.wsUrl, {})
    rude.send({ type: "ping" })
    expect((await rude.closed).code).toBe(4401)
    const shortLived = await connect(a.wsUrl, { token: await token(carol, ["receive"], { ttlSeconds: 2 }) })
    expect((await shortLived.next()).type).toBe("welcome")
    expect(await shortLived.closed).toMatchObject({ code: 4401, reason: "token expired" })
  })

  it("closes with 4403 without the receive scope, and 4400 without the subprotocol", async () => {
    const noReceive = await connect(a.wsUrl, { token: await token(unique("d"), ["publish"]) })
    expect((await noReceive.closed).code).toBe(4403)
    const noProtocol = await connect(a.wsUrl, { token: await token(unique("d")), protocols: [] })
    expect((await noProtocol.closed).code).toBe(4400)
  })

  it("answers malformed frames with INVALID_FRAME and keeps the session; repeated abuse closes with 4400", async () => {
    const eve = unique("eve")
    const socket = await connect(a.wsUrl, { token: await token(eve) })
    await socket.next((f) => f.type === "welcome")
    for (const bad of [
      "not json",
      JSON.stringify({ type: "subscribe" }),
      JSON.stringify({ type: "ack", ids: "x" }),
      JSON.stringify([1]),
    ]) {
      socket.send(bad)
      expect(await socket.next()).toMatchObject({ type: "error", code: "INVALID_FRAME" })
    }
    socket.send({ type: "ping" })
    expect(await socket.next()).toEqual({ type: "pong" })
    await post(a, eve, "still here")
    expect((await socket.messages(1))[0]?.["payload"]).toBe("still here")
    for (let i = 0; i < 25; i++) socket.send("garbage")
    expect((await socket.closed).code).toBe(4400)
  })

  it("closes with 1009 on a frame over HOLDOVER_MAX_FRAME_BYTES, losing nothing queued", async () => {
    const frank = unique("frank")
    await post(a, frank, "kept")
    const socket = await connect(a.wsUrl, { token: await token(frank) })
    await socket.next((f) => f.type === "welcome")
    await socket.messages(1, { ack: false })
    socket.send({ type: "send", to: "x", payload: "y".repeat(8000) })
    expect((await socket.closed).code).toBe(1009)
    const again = await connect(b.wsUrl, { token: await token(frank) })
    const redelivered = await again.messages(1)
    expect(redelivered[0]).toMatchObject({ payload: "kept", redelivered: true })
    again.ws.close()
  })

  it("sends with the publish scope: a send frame answers sent, or an error with the same ref", async () => {
    const gina = unique("gina")
    const henry = unique("henry")
    const socket = await connect(a.wsUrl, { token: await token(gina) })
    await socket.next((f) => f.type === "welcome")
    socket.send({
      type: "send",
      ref: "c1",
      to: henry,
      priority: "high",
      ttlMs: 60_000,
      id: "k1",
      payload: { hi: 1 },
    })
    expect(await socket.next()).toEqual({ type: "sent", ref: "c1", id: "k1", status: "queued" })
    socket.send({ type: "send", ref: "c2", to: henry, priority: "low", ttlMs: 99_999_999, payload: 1 })
    expect(await socket.next()).toMatchObject({ type: "error", code: "INVALID_MESSAGE", ref: "c2" })
    const receiveOnly = await connect(a.wsUrl, { token: await token(unique("i"), ["receive"]) })
    await receiveOnly.next((f) => f.type === "welcome")
    receiveOnly.send({ type: "send", ref: "c3", to: henry, payload: 1 })
    expect(await receiveOnly.next()).toMatchObject({ type: "error", code: "FORBIDDEN", ref: "c3" })
    const henrySocket = await connect(b.wsUrl, { token: await token(henry) })
    expect((await henrySocket.messages(1))[0]).toMatchObject({
      id: "k1",
      payload: { hi: 1 },
      priority: "high",
    })
    for (const s of [socket, receiveOnly, henrySocket]) s.ws.close()
  })

  it("delivers a message posted to node A to a recipient connected to node B", async () => {
    const ivy = unique("ivy")
    const socket = await connect(b.wsUrl, { token: await token(ivy) })
    await socket.next((f) => f.type === "welcome")
    await post(a, ivy, "cross-node", { priority: "critical" })
    expect((await socket.messages(1))[0]).toMatchObject({ payload: "cross-node", priority: "critical" })
    socket.ws.close()
  })

  it("takes over across nodes: the older connection closes with 4409, the newer gets everything unacked, in order", async () => {
    const jack = unique("jack")
    for (let i = 0; i < 10; i++) await post(a, jack, i)
    const older = await connect(a.wsUrl, { token: await token(jack) })
    await older.next((f) => f.type === "welcome")
    await older.messages(3)
    await older.messages(2, { ack: false })
    const newer = await connect(b.wsUrl, { token: await token(jack) })
    expect((await older.closed).code).toBe(4409)
    await newer.next((f) => f.type === "welcome")
    const got = await newer.messages(7)
    expect(got.map((m) => m["payload"])).toEqual([3, 4, 5, 6, 7, 8, 9])
    expect(got.slice(0, 2).every((m) => m["redelivered"] === true)).toBe(true)
    newer.ws.close()
  })

  it("finds a dead peer by its missing pongs, drops it, and hands its unacked messages to the next session", async () => {
    const node = await gateway(server, { HOLDOVER_HEARTBEAT: "500ms" })
    try {
      const zed = unique("zed")
      await post(node, zed, "held")
      const ws = new WebSocket(node.wsUrl, ["holdover.v1"], {
        headers: { Authorization: `Bearer ${await token(zed)}` },
        autoPong: false, // a peer that is gone but whose socket looks open
      })
      const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)))
      const got = new Promise<Json>((resolve) =>
        ws.on("message", (data) => {
          const frame = JSON.parse(data.toString()) as Json
          if (frame.type === "message") resolve(frame)
        }),
      )
      expect((await got).payload).toBe("held")
      expect(await closed).toBe(1006)
      const again = await connect(node.wsUrl, { token: await token(zed) })
      expect((await again.messages(1))[0]).toMatchObject({ payload: "held", redelivered: true })
      again.ws.close()
    } finally {
      await node.stop()
    }
  })
})
