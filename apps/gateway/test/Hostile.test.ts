// Hostile input against a real gateway process: request targets the URL parser refuses, requests
// Node's HTTP parser refuses, frames nested deeper than JSON.parse or a schema can walk, invalid
// UTF-8. Each gets the contract's answer (a JSON error body, an `error` frame, a documented close
// code) and the node stays up with its queues intact.
import { connect as tcpConnect } from "node:net"
import type { RunningGateway, RunningNats } from "@holdover/local-nats"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { connect, gateway, http, nats, token, unique } from "./support.ts"

/** Sends `request` as raw bytes and reads until the server closes (bounded). */
const raw = (port: number, request: string | Buffer, timeoutMs = 5_000) =>
  new Promise<string>((resolve, reject) => {
    const socket = tcpConnect({ host: "127.0.0.1", port })
    const chunks: Array<Buffer> = []
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no close within ${timeoutMs} ms; got ${Buffer.concat(chunks).toString()}`))
    }, timeoutMs)
    socket.on("data", (chunk) => chunks.push(chunk))
    socket.on("error", () => undefined)
    socket.on("close", () => {
      clearTimeout(timer)
      resolve(Buffer.concat(chunks).toString("utf8"))
    })
    socket.write(request)
  })

const parse = (response: string) => {
  const [head = "", body = ""] = response.split("\r\n\r\n")
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1])
  return { status, head, body: JSON.parse(body) as { error: { code: string; message: string } } }
}

describe("a gateway under hostile input (real gateway process, real nats-server)", () => {
  let server: RunningNats
  let node: RunningGateway
  let producer: string

  beforeAll(async () => {
    server = await nats()
    node = await gateway(server)
    producer = await token("producer", ["publish", "admin"])
  })
  afterAll(async () => {
    await node?.stop()
    await server?.stop()
  })

  const healthy = async () => expect((await http(node.url, "GET", "/healthz")).status).toBe(200)

  it("answers request targets the URL parser refuses (//, /\\) with a JSON 404 and stays up", async () => {
    for (const target of ["//", "/\\", "//evil.example/v1/messages", "/\\/x", "//?a=1", "/%zz"]) {
      const reply = parse(
        await raw(node.port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
      )
      expect(reply.status, target).toBe(404)
      expect(reply.body.error.code, target).toBe("NOT_FOUND")
    }
    // The same targets as WebSocket upgrades.
    const upgrade = parse(
      await raw(
        node.port,
        "GET // HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
      ),
    )
    expect(upgrade.status).toBe(404)
    expect(upgrade.body.error.code).toBe("NOT_FOUND")
    // An absolute-form target is routed by its path.
    const absolute = await raw(
      node.port,
      "GET http://gateway/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    expect(parse(absolute).status).toBe(200)
    await healthy()
  })

  it("answers a method a route does not take with 405 METHOD_NOT_ALLOWED and the methods it does take", async () => {
    const cases: Array<[string, string, string]> = [
      ["OPTIONS", "/healthz", "GET, HEAD"],
      ["POST", "/v1/status", "GET, HEAD"],
      ["GET", "/v1/messages", "POST"],
      ["PUT", "/v1/messages/batch", "POST"],
      ["PATCH", "/v1/recipients/bob/queue", "GET, HEAD, DELETE"],
    ]
    for (const [method, path, allow] of cases) {
      const reply = await http(node.url, method, path, { token: producer })
      expect(reply.status, `${method} ${path}`).toBe(405)
      expect(reply.body.error.code).toBe("METHOD_NOT_ALLOWED")
      expect(reply.headers.get("allow")).toBe(allow)
    }
    expect((await http(node.url, "HEAD", "/healthz")).status).toBe(200)
  })

  it("answers requests Node's HTTP parser refuses with a JSON 400 and closes the socket", async () => {
    const cases = {
      "bad method token": "G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
      "control byte in a header": "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0001b\r\n\r\n",
      "headers over the limit": `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`,
      "not HTTP at all": "\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u0001\u00fc\u0003\u0003\r\n\r\n",
    }
    for (const [name, request] of Object.entries(cases)) {
      const reply = parse(await raw(node.port, request))
      expect(reply.status, name).toBe(400)
      expect(reply.body.error.code, name).toBe("INVALID_MESSAGE")
      expect(reply.head, name).toMatch(/Connection: close/i)
    }
    await healthy()
  })

  it("answers a frame whose type is nested thousands of levels deep with INVALID_FRAME and keeps the session", async () => {
    const bob = unique("bob")
    const socket = await connect(node.wsUrl, { token: await token(bob) })
    await socket.next((f) => f.type === "welcome")
    for (const depth of [3_000, 5_000, 50_000]) {
      socket.send(`{"type":${"[".repeat(depth)}${"]".repeat(depth)}}`)
      expect(await socket.next(), `depth ${depth}`).toMatchObject({ type: "error", code: "INVALID_FRAME" })
      // A payload is any JSON: queued while it can be read and stored, else a frame error.
      socket.send(
        `{"type":"send","ref":"d${depth}","to":"x","payload":${"[".repeat(depth)}${"]".repeat(depth)}}`,
      )
      const answer = await socket.next()
      expect(
        answer["type"] === "sent" || ["INVALID_FRAME", "INVALID_MESSAGE"].includes(answer["code"]),
        `payload depth ${depth}: ${JSON.stringify(answer)}`,
      ).toBe(true)
    }
    const sent = await http(node.url, "POST", "/v1/messages", {
      token: producer,
      body: { to: bob, payload: "after" },
    })
    expect(sent.status).toBe(202)
    expect((await socket.messages(1))[0]?.["payload"]).toBe("after")
    expect(socket.ws.readyState).toBe(socket.ws.OPEN)
    await healthy()
  })

  it("closes with 1007 on a text frame that is not valid UTF-8, losing nothing queued", async () => {
    const carol = unique("carol")
    await http(node.url, "POST", "/v1/messages", { token: producer, body: { to: carol, payload: "kept" } })
    const socket = await connect(node.wsUrl, { token: await token(carol) })
    await socket.next((f) => f.type === "welcome")
    await socket.next((f) => f.type === "message") // delivered, not acked
    socket.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false })
    expect((await socket.closed).code).toBe(1007)
    const again = await connect(node.wsUrl, { token: await token(carol) })
    const [message] = await again.messages(1)
    expect(message).toMatchObject({ payload: "kept", redelivered: true })
    again.ws.close()
    await healthy()
  })
})
