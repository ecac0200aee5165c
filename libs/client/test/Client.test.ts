// The client against a real `ws` server speaking the contract (support/TestGateway.ts).
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { WebSocket as WsWebSocket } from "ws"
import type { ClientEvents, ClientOptions, HoldoverClient, HoldoverMessage } from "@holdover/client"
import { HoldoverError, createClient } from "@holdover/client"
import { TestGateway } from "./support/TestGateway.ts"
import { nextEvent, waitUntil } from "./support/waitUntil.ts"

let gateway: TestGateway
let clients: Array<HoldoverClient>

beforeEach(async () => {
  gateway = await TestGateway.start()
  clients = []
})

afterEach(async () => {
  await Promise.all(clients.map((c) => c.close()))
  await gateway.close()
})

const connect = (options: Partial<ClientOptions> = {}) => {
  const received: Array<HoldoverMessage> = []
  const events: Array<{ readonly event: keyof ClientEvents; readonly data: unknown }> = []
  const client = createClient({
    url: gateway.url,
    ...(options.getToken === undefined ? { token: "token-1" } : {}),
    onMessage: (message) => {
      received.push(message)
    },
    backoff: { initialMs: 20, maxMs: 100 },
    ...options,
  })
  for (const event of ["connecting", "open", "reconnecting", "closed", "taken-over", "error"] as const) {
    client.on(event, (data) => events.push({ event, data }))
  }
  clients.push(client)
  const ofType = <E extends keyof ClientEvents>(event: E) =>
    events.filter((e) => e.event === event).map((e) => e.data as ClientEvents[E])
  return { client, received, events, ofType }
}

const opened = (client: HoldoverClient) => nextEvent<ClientEvents["open"]>((fn) => client.on("open", fn))

describe("connecting", () => {
  it("authenticates with an auth frame right after open and emits open with the welcome", async () => {
    const states: Array<string> = []
    const { client } = connect({ onStateChange: (s) => states.push(s) })
    const { welcome } = await opened(client)
    const connection = await gateway.connection(0)
    expect(connection.frames[0]).toEqual({ type: "auth", token: "token-1" })
    expect(connection.socket.protocol).toBe("holdover.v1")
    expect(welcome).toMatchObject({ session: "s_0", recipient: "alice", maxInFlight: 256 })
    expect(client.state).toBe("open")
    expect(states).toEqual(["connecting", "open"])
  })

  it("can authenticate with an Authorization header instead (ws and Node's built-in WebSocket)", async () => {
    for (const WebSocket of [WsWebSocket, undefined]) {
      const { client } = connect({ authMode: "header", ...(WebSocket ? { WebSocket } : {}) })
      await opened(client)
      await client.close()
    }
    for (const connection of gateway.connections) {
      expect(connection.authorization).toBe("Bearer token-1")
      expect(connection.framesOf("auth")).toEqual([])
    }
    expect(gateway.connections).toHaveLength(2)
  })
})

describe("delivery", () => {
  it("delivers a message once although the server sends it twice", async () => {
    const { received } = connect()
    const connection = await gateway.connection(0)
    connection.message("m_1")
    connection.message("m_1", { redelivered: true })
    connection.message("m_2")
    await waitUntil("m_2 acked", () => connection.ackedIds.includes("m_2"))
    expect(received.map((m) => m.id)).toEqual(["m_1", "m_2"])
    expect(received[0]).toEqual({
      id: "m_1",
      priority: "normal",
      payload: { id: "m_1" },
      enqueuedAt: expect.any(String),
      expiresAt: expect.any(String),
      redelivered: false,
    })
  })

  it("acks a duplicate redelivered on a new session without handing it over again", async () => {
    const { received } = connect()
    const first = await gateway.connection(0)
    first.message("m_1")
    await waitUntil("m_1 acked", () => first.ackedIds.includes("m_1"))
    first.close(1012, "draining")
    const second = await gateway.connection(1)
    second.message("m_1", { redelivered: true })
    await waitUntil("m_1 acked again", () => second.ackedIds.includes("m_1"))
    expect(received.map((m) => m.id)).toEqual(["m_1"])
  })

  it("batches the acks of a burst into one frame", async () => {
    // Hold the first message in its handler until the socket has received the whole burst (a
    // listener of our own on the real socket counts frames), so the batch does not depend on
    // how TCP happened to split the burst.
    let framesIn = 0
    class CountingWebSocket extends WebSocket {
      constructor(url: string, protocols?: Array<string>) {
        super(url, protocols)
        this.addEventListener("message", () => (framesIn += 1))
      }
    }
    let release = () => {}
    const gate = new Promise<void>((resolve) => (release = resolve))
    const received: Array<string> = []
    connect({
      WebSocket: CountingWebSocket,
      onMessage: async (message) => {
        if (message.id === "m_0") await gate
        received.push(message.id)
      },
    })
    const connection = await gateway.connection(0)
    const ids = Array.from({ length: 50 }, (_, i) => `m_${i}`)
    for (const id of ids) connection.message(id)
    await waitUntil("welcome and burst received", () => framesIn === 1 + ids.length)
    release()
    await waitUntil("all acked", () => connection.ackedIds.length === ids.length)
    expect(received).toEqual(ids)
    expect(connection.ackedIds).toEqual(ids)
    expect(connection.framesOf("ack")).toHaveLength(1)
  })

  it("hands messages to the handler one at a time, in arrival order", async () => {
    let running = 0
    let maxRunning = 0
    const order: Array<string> = []
    connect({
      onMessage: async (message) => {
        running += 1
        maxRunning = Math.max(maxRunning, running)
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 5))
        order.push(message.id)
        running -= 1
      },
    })
    const connection = await gateway.connection(0)
    const sent = ["critical", "critical", "high", "normal", "normal", "low"].map((priority, i) => {
      connection.message(`m_${i}`, { priority })
      return `m_${i}`
    })
    await waitUntil("all handled", () => order.length === sent.length)
    expect(order).toEqual(sent)
    expect(maxRunning).toBe(1)
    await waitUntil("all acked", () => connection.ackedIds.length === sent.length)
    expect(connection.ackedIds).toEqual(sent)
  })

  it("does not ack a message whose handler throws; its redelivery on the next session is handled", async () => {
    const calls: Array<string> = []
    const { ofType } = connect({
      onMessage: (message) => {
        calls.push(message.id)
        if (message.id === "m_1" && !message.redelivered) throw new Error("handler broke")
      },
    })
    const first = await gateway.connection(0)
    first.message("m_1")
    first.message("m_2")
    await waitUntil("m_2 acked", () => first.ackedIds.includes("m_2"))
    expect(first.ackedIds).toEqual(["m_2"])
    expect(ofType("error")).toEqual([expect.objectContaining({ code: "HANDLER_FAILED" })])
    first.close(1012)
    const second = await gateway.connection(1)
    second.message("m_1", { redelivered: true })
    await waitUntil("m_1 acked on the new session", () => second.ackedIds.includes("m_1"))
    expect(calls).toEqual(["m_1", "m_2", "m_1"])
  })

  it("with manualAck, acks only what the caller acks", async () => {
    const { client, received } = connect({ manualAck: true })
    const connection = await gateway.connection(0)
    connection.message("m_1")
    connection.message("m_2")
    await waitUntil("both handled", () => received.length === 2)
    client.ack("m_2")
    await connection.waitForFrames("ack", 1)
    expect(connection.framesOf("ack")).toEqual([{ type: "ack", ids: ["m_2"] }])
  })

  it("reports an invalid server frame as an error event and keeps the session", async () => {
    const { client, received, ofType } = connect()
    const connection = await gateway.connection(0)
    connection.send("not json")
    connection.send({ type: "message", id: "m_bad", priority: "urgent" })
    connection.message("m_ok")
    await waitUntil("m_ok handled", () => received.length === 1)
    expect(ofType("error").map((e) => e.code)).toEqual(["INVALID_SERVER_FRAME", "INVALID_SERVER_FRAME"])
    expect(received.map((m) => m.id)).toEqual(["m_ok"])
    expect(client.state).toBe("open")
  })
})

describe("send", () => {
  it("resolves with the sent frame, and rejects with the error frame's code as a HoldoverError", async () => {
    gateway.onSend = (c, f) =>
      (f.payload as { fail?: boolean }).fail === true
        ? c.send({ type: "error", code: "QUEUE_FULL", message: "bob's critical queue is full", ref: f.ref })
        : c.send({ type: "sent", ref: f.ref, id: f.id, status: "queued" })
    const { client } = connect()
    await opened(client)
    await expect(
      client.send("bob", { hi: 1 }, { id: "order-42", priority: "high", ttlMs: 60_000 }),
    ).resolves.toEqual({
      id: "order-42",
      status: "queued",
    })
    const failed = client.send("bob", { fail: true }, { priority: "critical" })
    await expect(failed).rejects.toBeInstanceOf(HoldoverError)
    await expect(failed).rejects.toMatchObject({
      code: "QUEUE_FULL",
      message: "bob's critical queue is full",
    })
    const frames = (await gateway.connection(0)).framesOf("send")
    expect(frames[0]).toEqual({
      type: "send",
      ref: expect.any(String),
      to: "bob",
      priority: "high",
      ttlMs: 60_000,
      id: "order-42",
      payload: { hi: 1 },
    })
    expect(frames[1]!.id).toMatch(/^[0-9a-f-]{36}$/)
  })

  it("rejects invalid input with INVALID_MESSAGE before anything goes on the wire", async () => {
    const { client } = connect()
    await opened(client)
    for (const [to, payload, options] of [
      ["", 1, {}],
      ["bob", 1, { ttlMs: -1 }],
      ["bob", undefined, {}],
      ["bob", 1n, {}],
    ] as const) {
      await expect(client.send(to, payload, options)).rejects.toMatchObject({ code: "INVALID_MESSAGE" })
    }
    expect((await gateway.connection(0)).framesOf("send")).toEqual([])
  })

  it("keeps sends in an outbox across a dropped socket and resends them in order with the same ids", async () => {
    gateway.onSend = () => {} // the first session never answers
    const { client, ofType } = connect()
    await opened(client)
    const sends = [client.send("bob", 1), client.send("bob", 2, { id: "mine" }), client.send("bob", 3)]
    const first = await gateway.connection(0)
    await first.waitForFrames("send", 3)
    gateway.onSend = (c, f) => c.send({ type: "sent", ref: f.ref, id: f.id, status: "queued" })
    const whileDown = new Promise<Promise<unknown>>((resolve) =>
      client.on("reconnecting", () => resolve(client.send("bob", 4))),
    )
    first.drop()
    const results = await Promise.all([...sends, await whileDown])
    const second = await gateway.connection(1)
    const before = first.framesOf("send")
    const after = second.framesOf("send")
    expect(after.map((f) => f.payload)).toEqual([1, 2, 3, 4])
    expect(after.slice(0, 3).map((f) => f.id)).toEqual(before.map((f) => f.id))
    expect(after[1]!.id).toBe("mine")
    expect(after.map((f) => f.ref)).not.toContain(before[0]!.ref)
    expect(results.map((r) => (r as { id: string }).id)).toEqual(after.map((f) => f.id))
    expect(ofType("reconnecting")[0]).toMatchObject({ code: 1006, attempt: 0 })
  })
})

describe("close codes and reconnects", () => {
  it("backs off with growing attempts while rate-limited (4429) and starts over after a welcome", async () => {
    gateway.onAuth = (c) => (c.index < 3 || c.index === 4 ? c.close(4429, "slow down") : c.welcome())
    const { ofType } = connect({ backoff: { initialMs: 10, maxMs: 40 } })
    await gateway.connection(3)
    await waitUntil("welcomed", () => ofType("open").length === 1)
    gateway.connections[3]!.drop()
    await gateway.connection(5)
    await waitUntil("second welcome", () => ofType("open").length === 2)
    const reconnects = ofType("reconnecting")
    expect(reconnects.map((r) => [r.code, r.attempt])).toEqual([
      [4429, 0],
      [4429, 1],
      [4429, 2],
      [1006, 0],
      [4429, 1],
    ])
    const ceilings = [10, 20, 40, 10, 20]
    reconnects.forEach((r, i) => expect(r.delayMs).toBeLessThan(ceilings[i]!))
  })

  it("reconnects at once after 1012", async () => {
    const { client, ofType } = connect({ backoff: { initialMs: 60_000, maxMs: 60_000 } })
    await opened(client)
    ;(await gateway.connection(0)).close(1012, "draining")
    await gateway.connection(1)
    expect(ofType("reconnecting")).toEqual([
      { attempt: 0, delayMs: 0, code: 1012, reason: "1012 gateway restarting: draining" },
    ])
  })

  it("asks getToken for a fresh token after 4401", async () => {
    let issued = 0
    const { client, ofType } = connect({ getToken: async () => `token-${++issued}` })
    await opened(client)
    ;(await gateway.connection(0)).close(4401, "token expired")
    const second = await gateway.connection(1)
    expect(second.token).toBe("token-2")
    expect(gateway.connections[0]!.token).toBe("token-1")
    expect(ofType("reconnecting")[0]).toMatchObject({ code: 4401, delayMs: 0 })
    await waitUntil("open again", () => client.state === "open")
  })

  it("stops after 4401 when only a static token was given, saying why", async () => {
    const { client, ofType } = connect()
    await opened(client)
    const pending = client.send("bob", 1)
    gateway.onSend = () => {}
    ;(await gateway.connection(0)).close(4401, "token expired")
    const closed = await nextEvent<ClientEvents["closed"]>((fn) => client.on("closed", fn))
    expect(closed.code).toBe(4401)
    expect(closed.reason).toMatch(/token expired.*getToken/)
    expect(client.state).toBe("closed")
    expect(ofType("reconnecting")).toEqual([])
    await pending.catch(() => {})
    await expect(client.send("bob", 2)).rejects.toMatchObject({ code: "CLIENT_CLOSED" })
  })

  it("stops on 4409 and emits taken-over", async () => {
    const { client, ofType } = connect()
    await opened(client)
    ;(await gateway.connection(0)).close(4409, "")
    await waitUntil("closed", () => client.state === "closed")
    expect(ofType("taken-over")).toEqual([
      { reason: "4409 session taken over by a newer connection of the same recipient" },
    ])
    expect(ofType("closed")).toEqual([
      { code: 4409, reason: "4409 session taken over by a newer connection of the same recipient" },
    ])
    expect(ofType("reconnecting")).toEqual([])
    expect(gateway.connections).toHaveLength(1)
  })

  it.each([
    [4400, "protocol violation"],
    [4403, "forbidden"],
    [1000, "closed by the server"],
  ])("stops on %i (%s) without reconnecting", async (code, words) => {
    const { client, ofType } = connect()
    await opened(client)
    ;(await gateway.connection(0)).close(code)
    await waitUntil("closed", () => client.state === "closed")
    expect(ofType("closed")[0]!.reason).toContain(words)
    expect(ofType("reconnecting")).toEqual([])
  })
})

describe("heartbeat", () => {
  it("pings every heartbeatMs and reconnects when no frame arrives within twice that", async () => {
    const { client, ofType } = connect()
    gateway.onAuth = (c) => c.welcome({ heartbeatMs: 250 })
    await opened(client)
    const first = await gateway.connection(0)
    await first.waitForFrames("ping", 3)
    expect(client.state).toBe("open") // pongs keep it alive
    first.silent = true
    await gateway.connection(1)
    expect(ofType("error").map((e) => e.message)).toContain("no frame within 500 ms (2 × heartbeatMs)")
    await waitUntil("first socket closed", () => first.closed !== undefined)
    expect(first.closed!.code).toBe(4000)
  })
})

describe("close()", () => {
  it("closes with 1000 and rejects pending and overflowing sends with CLIENT_CLOSED / OUTBOX_FULL", async () => {
    gateway.onSend = () => {}
    const { client, ofType } = connect({ maxOutbox: 2 })
    await opened(client)
    const sends = [client.send("bob", 1), client.send("bob", 2)].map((s) => s.catch((e: unknown) => e))
    await expect(client.send("bob", 3)).rejects.toMatchObject({ code: "OUTBOX_FULL" })
    await client.close()
    for (const send of sends) expect(await send).toMatchObject({ code: "CLIENT_CLOSED" })
    const connection = await gateway.connection(0)
    await waitUntil("server saw the close", () => connection.closed !== undefined)
    expect(connection.closed!.code).toBe(1000)
    expect(client.state).toBe("closed")
    expect(ofType("closed")).toEqual([{ code: 1000, reason: "closed by the client" }])
  })

  it("stops a client that is waiting to reconnect", async () => {
    gateway.onAuth = (c) => c.close(4429)
    const { client } = connect({ backoff: { initialMs: 60_000, maxMs: 60_000 } })
    await waitUntil("reconnecting", () => client.state === "reconnecting")
    await client.close()
    expect(client.state).toBe("closed")
  })

  it("leaves nothing that keeps a Node process alive", { timeout: 40_000 }, async () => {
    gateway.onAuth = (c) => c.welcome({ heartbeatMs: 1_000 })
    gateway.onSend = () => {}
    const fixture = fileURLToPath(new URL("./fixtures/close-then-exit.ts", import.meta.url))
    const child = spawn(process.execPath, ["--conditions=@holdover/source", fixture, gateway.url], {
      stdio: ["ignore", "pipe", "pipe"],
    })
    let output = ""
    child.stdout.on("data", (d: Buffer) => (output += d.toString()))
    child.stderr.on("data", (d: Buffer) => (output += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
    // Starting Node and loading the SDK can be slow on a busy machine; exiting after close() must not be.
    await waitUntil(
      "the child closed its client",
      () => output.includes("closed") || child.exitCode !== null,
      25_000,
    )
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<"still running">(
      (resolve) => (timer = setTimeout(resolve, 5_000, "still running")),
    )
    const result = await Promise.race([exited, timeout])
    clearTimeout(timer)
    if (result === "still running") child.kill()
    expect({ result, output }).toEqual({ result: 0, output: expect.stringContaining("closed CLIENT_CLOSED") })
    expect(gateway.connections[0]!.closed?.code).toBe(1000)
  })
})
