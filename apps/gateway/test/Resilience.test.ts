import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startNats, type RunningGateway, type RunningNats } from "@holdover/local-nats"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { connect, gateway, http, token, unique, waitUntil } from "./support.ts"

describe("resilience (real processes: kill -9, SIGTERM, NATS restart)", () => {
  let dataDir: string
  let server: RunningNats
  let producer: string

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "holdover-resilience-"))
    server = await startNats(inject("natsLauncher"), { dataDir })
    producer = await token("producer", ["publish", "admin"])
  })
  afterAll(async () => {
    await server?.stop()
    rmSync(dataDir, { recursive: true, force: true })
  })

  const post = (node: RunningGateway, to: string, payload: unknown) =>
    http(node.url, "POST", "/v1/messages", { token: producer, body: { to, payload } })

  it("kill -9 of the node holding a session mid-delivery: the client gets every unacked message at once from the other node, in order", async () => {
    const [a, b] = await Promise.all([gateway(server), gateway(server)])
    try {
      const kim = unique("kim")
      for (let i = 0; i < 20; i++) await post(b, kim, i)
      const first = await connect(a.wsUrl, { token: await token(kim) })
      await first.next((f) => f.type === "welcome")
      const acked = await first.messages(6)
      const inFlight = await first.messages(4, { ack: false })
      await waitUntil("the 6 acks reach JetStream", async () => {
        const depth = (await http(b.url, "GET", `/v1/recipients/${kim}/queue`, { token: producer })).body[
          "depth"
        ]
        return depth.normal === 14
      })
      a.signal("SIGKILL")
      expect((await first.closed).code).toBe(1006)
      const started = Date.now()
      const second = await connect(b.wsUrl, { token: await token(kim) })
      await second.next((f) => f.type === "welcome")
      const rest = await second.messages(14)
      expect(Date.now() - started).toBeLessThan(10_000) // no 30 s ack_wait stall
      expect([...acked, ...rest].map((m) => m["payload"])).toEqual(Array.from({ length: 20 }, (_, i) => i))
      expect(rest.slice(0, 4).map((m) => m["id"])).toEqual(inFlight.map((m) => m["id"]))
      expect(rest.slice(0, 4).every((m) => m["redelivered"] === true)).toBe(true)
      second.ws.close()
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })

  it("drains on SIGTERM: sessions closed with 1012, in-flight messages returned, exit 0", async () => {
    const node = await gateway(server)
    const other = await gateway(server)
    try {
      const lee = unique("lee")
      for (let i = 0; i < 5; i++) await post(node, lee, i)
      const socket = await connect(node.wsUrl, { token: await token(lee) })
      await socket.next((f) => f.type === "welcome")
      await socket.messages(2)
      await socket.messages(3, { ack: false })
      await waitUntil("the 2 acks reach JetStream", async () => {
        const depth = (await http(other.url, "GET", `/v1/recipients/${lee}/queue`, { token: producer })).body[
          "depth"
        ]
        return depth.normal === 3
      })
      node.signal("SIGTERM")
      expect((await socket.closed).code).toBe(1012)
      expect(await node.exited).toBe(0)
      const again = await connect(other.wsUrl, { token: await token(lee) })
      const got = await again.messages(3)
      expect(got.map((m) => m["payload"])).toEqual([2, 3, 4])
      again.ws.close()
    } finally {
      await Promise.all([node.stop(), other.stop()])
    }
  })

  it("starts before NATS: waits, logging each attempt, and serves once JetStream is up", async () => {
    const port = server.port
    await server.stop()
    const logged: Array<string> = []
    const starting = gateway(server, {}, { onLine: (line) => logged.push(line) })
    await waitUntil("the node logs that it waits for NATS", () =>
      logged.some((line) => line.includes("waiting for NATS JetStream")),
    )
    server = await startNats(inject("natsLauncher"), { dataDir, port })
    const node = await starting
    try {
      const waited = node.logs().filter((line) => line.includes("waiting for NATS JetStream"))
      expect(waited.length).toBeGreaterThan(0)
      expect(waited[0]).toContain(`cannot connect to NATS at nats://127.0.0.1:${port}`)
      expect((await http(node.url, "GET", "/readyz")).status).toBe(200)
      expect((await post(node, unique("early"), "first")).status).toBe(202)
    } finally {
      await node.stop()
    }
  })

  it("survives NATS going away: readiness false and 503 QUEUE_UNAVAILABLE with Retry-After, then the session resumes", async () => {
    const node = await gateway(server)
    try {
      const mia = unique("mia")
      const socket = await connect(node.wsUrl, { token: await token(mia) })
      await socket.next((f) => f.type === "welcome")
      await post(node, mia, "before")
      expect((await socket.messages(1))[0]?.["payload"]).toBe("before")

      const port = server.port
      await server.stop()
      await waitUntil(
        "readiness turns false",
        async () => (await http(node.url, "GET", "/readyz")).status === 503,
      )
      expect((await http(node.url, "GET", "/healthz")).status).toBe(200)
      const refused = await post(node, mia, "during")
      expect(refused.status).toBe(503)
      expect(refused.body["error"]["code"]).toBe("QUEUE_UNAVAILABLE")
      expect(refused.headers.get("retry-after")).toBe("1")

      server = await startNats(inject("natsLauncher"), { dataDir, port })
      await waitUntil(
        "readiness comes back",
        async () => (await http(node.url, "GET", "/readyz")).status === 200,
        20_000,
      )
      const accepted = await post(node, mia, "after")
      expect(accepted.status).toBe(202)
      expect((await socket.messages(1, { timeoutMs: 20_000 }))[0]?.["payload"]).toBe("after")
      socket.ws.close()
    } finally {
      await node.stop()
    }
  })
})
