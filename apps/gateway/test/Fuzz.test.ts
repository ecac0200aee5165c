// Seeded fuzzing of a real gateway process: ≥ 10 000 generated inputs per run — HTTP requests
// (methods, request targets, headers, bodies, raw bytes Node's parser refuses) against every route,
// and WebSocket frames before and after authentication (random bytes, binary frames, mutations of
// valid frames, deep nesting, huge numbers and strings, `__proto__` keys, acks of garbage ids).
// It asserts what a user relies on: the process never exits and /healthz stays 200; every answer
// is a documented status with the contract's JSON error body, or a documented close code; and
// the messages queued before the run are all still delivered, in order.
// HOLDOVER_FUZZ_SEED=<n> replays a run (the seed is printed); HOLDOVER_FUZZ_INPUTS scales it.
import { request, Agent } from "node:http"
import { connect as tcpConnect } from "node:net"
import { prng, type RunningGateway, type RunningNats } from "@holdover/local-nats"
import { errorStatus } from "@holdover/protocol"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { connect, gateway, http, nats, token, unique } from "./support.ts"

const seed = Number(process.env["HOLDOVER_FUZZ_SEED"] ?? Math.floor(Math.random() * 2 ** 31))
const inputs = Number(process.env["HOLDOVER_FUZZ_INPUTS"] ?? 10_000)

const random = prng(seed)
const int = (n: number) => Math.floor(random() * n)
const pick = <A>(items: ReadonlyArray<A>): A => items[int(items.length)]!
const chars = (n: number, alphabet = "abc/%._-~\\\u0000\u00ff\u2603{}\"'<>?#&=+ ") =>
  Array.from({ length: n }, () => alphabet[int(alphabet.length)]).join("")
const nest = (depth: number, inner = "1") => `${"[".repeat(depth)}${inner}${"]".repeat(depth)}`

const documentedStatuses = new Set([200, 202, ...Object.values(errorStatus)])
const documentedCloses = new Set([1000, 1007, 1009, 1011, 4400, 4401, 4403, 4409, 4429])
const errorCodes = new Set(Object.keys(errorStatus))

/** A JSON value of random shape, sometimes hostile. */
const value = (depth = 0): unknown => {
  switch (int(depth > 3 ? 6 : 9)) {
    case 0:
      return chars(int(20))
    case 1:
      return pick([0, -1, 1e308, -1e308, 2 ** 53 + 1, 0.1, Number.MAX_SAFE_INTEGER])
    case 2:
      return pick([null, true, false])
    case 3:
      return "x".repeat(pick([0, 1, 1000, 70_000]))
    case 4:
      return pick(["critical", "high", "normal", "low", "", "__proto__", "constructor"])
    case 5:
      return JSON.parse(nest(int(50)))
    case 6:
      return Array.from({ length: int(4) }, () => value(depth + 1))
    default:
      return Object.fromEntries(
        Array.from({ length: int(4) }, () => [
          pick(["to", "priority", "ttlMs", "id", "payload", "__proto__", "constructor", "type", chars(4)]),
          value(depth + 1),
        ]),
      )
  }
}

const validMessage = () => ({
  to: unique("fz"),
  priority: pick(["critical", "high", "normal", "low"]),
  payload: { n: int(100) },
})

/** A valid object with one field replaced, removed or added. */
const mutate = (object: Record<string, unknown>): unknown => {
  const copy: Record<string, unknown> = { ...object }
  const key = pick([...Object.keys(copy), "__proto__", "extra"])
  switch (int(3)) {
    case 0:
      delete copy[key]
      break
    case 1:
      copy[key] = value()
      break
    default:
      Object.defineProperty(copy, key, { value: value(), enumerable: true })
  }
  return copy
}

const bodyText = (): string => {
  switch (int(6)) {
    case 0:
      return JSON.stringify(validMessage())
    case 1:
      return JSON.stringify(mutate(validMessage()))
    case 2:
      return JSON.stringify({
        messages: Array.from({ length: int(5) }, () => (int(2) ? validMessage() : value())),
      })
    case 3:
      return `{"to":"x","payload":${nest(pick([10, 3_000, 20_000]))}}`
    case 4:
      return chars(int(200))
    default:
      return JSON.stringify(value())
  }
}

const routes = [
  "/v1/messages",
  "/v1/messages/batch",
  "/v1/recipients/fz/queue",
  "/v1/status",
  "/healthz",
  "/readyz",
  "/metrics",
  "/v1/openapi.json",
  "/v1/ws",
  "/demo",
  "/",
]
const targetOf = (): string => {
  const base = pick(routes)
  switch (int(8)) {
    case 0:
      return `/${[...chars(int(30))].map((c) => (c <= " " || c >= "\u007f" || c === "#" ? "%20" : c)).join("")}`
    case 1:
      return pick([
        "//",
        "/\\",
        "//x/v1/messages",
        "/%zz",
        "/v1/recipients/%ff%fe/queue",
        "/v1/recipients//queue",
        "/..%2f..%2fetc",
      ])
    case 2:
      return `${base}?${chars(10, "abc=&%")}`
    case 3:
      return `/v1/recipients/${encodeURIComponent(chars(int(300)))}/queue`
    default:
      return base
  }
}

describe("fuzzing a gateway (real gateway process, real nats-server)", () => {
  let server: RunningNats
  let node: RunningGateway
  let admin: string
  let producer: string
  let receiver: string
  const keeper = unique("keeper")
  const kept = Array.from({ length: 20 }, (_, i) => ({
    i,
    priority: pick(["critical", "high", "normal", "low"] as const),
  }))
  const agent = new Agent({ keepAlive: true, maxSockets: 32 })
  let exitedWith: number | string | undefined
  const lastOnSocket = new WeakMap<object, string>()

  beforeAll(async () => {
    console.log(`[fuzz] seed ${seed} (HOLDOVER_FUZZ_SEED=${seed} replays this run), ${inputs} inputs`)
    server = await nats()
    node = await gateway(server, {
      HOLDOVER_PUBLISH_RATE: "100000",
      HOLDOVER_PUBLISH_BURST: "100000",
      HOLDOVER_LOG_LEVEL: process.env["HOLDOVER_FUZZ_LOG_LEVEL"] ?? "Info",
    })
    void node.exited.then((code) => (exitedWith = code))
    admin = await token("fuzz-admin", ["publish", "admin", "receive"])
    producer = await token("fuzz-producer", ["publish"])
    receiver = await token("fuzz-receiver", ["receive"])
    for (const { i, priority } of kept) {
      const reply = await http(node.url, "POST", "/v1/messages", {
        token: admin,
        body: { to: keeper, priority, payload: { i } },
      })
      expect(reply.status).toBe(202)
    }
  })
  afterAll(async () => {
    agent.destroy()
    await node?.stop()
    await server?.stop()
  })

  const send = (method: string, path: string, headers: Record<string, string>, body: string | undefined) =>
    new Promise<{ status: number; text: string; headers: Record<string, unknown> }>((resolve, reject) => {
      // Node's client frames no body of GET/HEAD/DELETE/OPTIONS unless told its length.
      const framed =
        body === undefined ? headers : { ...headers, "Content-Length": String(Buffer.byteLength(body)) }
      const req = request(
        { host: "127.0.0.1", port: node.port, method, path, headers: framed, agent, timeout: 10_000 },
        (res) => {
          const chunks: Array<Buffer> = []
          res.on("data", (c: Buffer) => chunks.push(c))
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              text: Buffer.concat(chunks).toString(),
              headers: res.headers,
            }),
          )
          res.on("error", reject)
        },
      )
      req.on("socket", (socket) => {
        const previous = lastOnSocket.get(socket)
        lastOnSocket.set(socket, `${method} ${path}`)
        req.on("error", (error) => {
          error.message += ` (after ${previous ?? "nothing"} on this connection)`
        })
      })
      req.on("error", reject)
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)))
      req.end(body)
    })

  it("answers every generated HTTP request with a documented status and the contract's error body", async () => {
    const count = Math.ceil(inputs * 0.6)
    const problems: Array<string> = []
    let next = 0
    const worker = async () => {
      while (next < count) {
        const n = next++
        const method = pick(["GET", "POST", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
        const path = targetOf()
        const auth = pick([
          `Bearer ${admin}`,
          `Bearer ${producer}`,
          `Bearer ${receiver}`,
          "Bearer x.y.z",
          chars(20, "abc "),
          "",
        ])
        const headers: Record<string, string> = {
          "Content-Type": pick(["application/json", "text/plain", ""]),
        }
        if (auth) headers["Authorization"] = auth
        if (int(10) === 0) headers[`X-${chars(5, "abcdef")}`] = chars(int(100), "abc ;=")
        const body = method === "GET" || method === "HEAD" ? undefined : bodyText()
        if (path === "/v1/ws" && method === "GET") continue // upgrades are the WebSocket part
        let reply: Awaited<ReturnType<typeof send>>
        try {
          reply = await send(method, path, headers, body)
        } catch (error) {
          problems.push(`#${n} ${method} ${path}: ${String(error)}`)
          continue
        }
        if (!documentedStatuses.has(reply.status))
          problems.push(`#${n} ${method} ${path}: status ${reply.status}`)
        if (reply.status >= 400 && method !== "HEAD") {
          let code: unknown
          try {
            code = (JSON.parse(reply.text) as { error?: { code?: unknown } }).error?.code
          } catch {
            code = undefined
          }
          if (!errorCodes.has(String(code)))
            problems.push(`#${n} ${method} ${path}: ${reply.status} body ${reply.text.slice(0, 120)}`)
          if (reply.status === 500) problems.push(`#${n} ${method} ${path}: 500 ${reply.text.slice(0, 120)}`)
        }
      }
    }
    await Promise.all(Array.from({ length: 16 }, worker))
    if (problems.length > 0)
      console.log(
        node
          .logs()
          .filter((l) => l.includes("HTTP parser"))
          .slice(-10)
          .join("\n"),
      )
    expect(problems.slice(0, 20)).toEqual([])
    expect((await http(node.url, "GET", "/healthz")).status).toBe(200)
  }, 240_000)

  it("answers raw requests Node's HTTP parser refuses with a JSON 400", async () => {
    const count = Math.ceil(inputs * 0.05)
    for (let n = 0; n < count; n++) {
      const line = pick([
        `${chars(3, "G(E)T\u0001 ")} / HTTP/1.1\r\nHost: x\r\n\r\n`,
        `GET / HTTP/1.1\r\nHost: x\r\nX: ${chars(5, "a\u0001\u007f")}\r\n\r\n`,
        `GET /${chars(10)} HTTP/9.9\r\n\r\n`,
        `${chars(int(40), "\u0000\u00ff\r\nab")}\r\n\r\n`,
        `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000 + int(10_000))}\r\n\r\n`,
      ])
      const text = await new Promise<string>((resolve) => {
        const socket = tcpConnect({ host: "127.0.0.1", port: node.port })
        const chunks: Array<Buffer> = []
        const timer = setTimeout(() => socket.destroy(), 5_000)
        socket.on("data", (c) => chunks.push(c))
        socket.on("error", () => undefined)
        socket.on("close", () => {
          clearTimeout(timer)
          resolve(Buffer.concat(chunks).toString())
        })
        socket.end(line)
      })
      // Some of these are valid HTTP after all (a lucky method); those get a routed answer.
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1])
      if (text === "") continue // the peer's half-close raced the answer
      expect(
        documentedStatuses.has(status),
        `${JSON.stringify(line.slice(0, 60))} → ${text.slice(0, 100)}`,
      ).toBe(true)
      if (status >= 400) expect(text).toMatch(/"error":\{"code":"[A-Z_]+"/)
    }
    expect((await http(node.url, "GET", "/healthz")).status).toBe(200)
  }, 120_000)

  it("answers every generated WebSocket frame, before and after auth, with an error frame or a documented close", async () => {
    const count = Math.ceil(inputs * 0.35)
    const frameOf = (): string | Buffer => {
      switch (int(12)) {
        case 0:
          return Buffer.from(Array.from({ length: int(64) }, () => int(256)))
        case 1:
          return chars(int(100))
        case 2:
          return JSON.stringify({
            type: "ack",
            ids: pick([[chars(10)], value(), Array.from({ length: 300 }, () => chars(5))]),
          })
        case 3:
          return `{"type":${nest(pick([100, 5_000, 50_000]), '"ping"')}}`
        case 4:
          return JSON.stringify(mutate({ type: "send", ref: "r", ...validMessage() }))
        case 5:
          return JSON.stringify({ type: "send", ref: "r", to: chars(int(300)), payload: value() })
        case 6:
          return '{"type":"ping","__proto__":{"polluted":true}}'
        case 7:
          return JSON.stringify({ type: pick(["auth", "subscribe", "", 1, null]), token: chars(20) })
        case 8:
          return '{"type":"ping","n":1e400}'
        default:
          return JSON.stringify(mutate({ type: pick(["ping", "ack", "send", "auth"]) }))
      }
    }
    const problems: Array<string> = []
    const closes = new Map<number, number>()
    let sent = 0
    const session = async (authed: boolean) => {
      const ws = new WebSocket(
        node.wsUrl,
        ["holdover.v1"],
        authed ? { headers: { Authorization: `Bearer ${admin}` } } : {},
      )
      const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)))
      ws.on("error", () => undefined)
      ws.on("message", (data) => {
        let frame: { type?: unknown; code?: unknown }
        try {
          frame = JSON.parse(data.toString()) as typeof frame
        } catch {
          problems.push(`not JSON from the server: ${data.toString().slice(0, 80)}`)
          return
        }
        if (!["welcome", "message", "sent", "error", "pong"].includes(String(frame.type)))
          problems.push(`frame ${data.toString().slice(0, 80)}`)
        if (frame.type === "error" && !errorCodes.has(String(frame.code)))
          problems.push(`error code ${String(frame.code)}`)
        if (frame.type === "error" && frame.code === "INTERNAL")
          problems.push(`INTERNAL: ${data.toString().slice(0, 120)}`)
      })
      await new Promise<void>((resolve) => {
        ws.once("open", () => resolve())
        ws.once("close", () => resolve())
      })
      for (let k = 0; k < 30 && ws.readyState === WebSocket.OPEN && sent < count; k++) {
        const frame = frameOf()
        sent++
        if (typeof frame === "string" && int(20) === 0)
          ws.send(Buffer.from([0xc3, 0x28, 0x7b]), { binary: false })
        else ws.send(frame, { binary: typeof frame !== "string" })
      }
      if (ws.readyState === WebSocket.OPEN) ws.close(1000)
      const code = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 10_000))])
      if (code === -1) ws.terminate()
      closes.set(code, (closes.get(code) ?? 0) + 1)
      if (!documentedCloses.has(code) && !(code === 1005 || code === 1006)) problems.push(`close ${code}`)
      if (code === 1012) problems.push(`close ${code}: a defect ended the session`)
    }
    while (sent < count && exitedWith === undefined)
      await Promise.all(Array.from({ length: 8 }, (_, i) => session(i % 4 !== 0)))
    console.log(`[fuzz] ${sent} frames; closes by code ${JSON.stringify(Object.fromEntries(closes))}`)
    expect(exitedWith, `the gateway exited:\n${node.logs().slice(-15).join("\n")}`).toBeUndefined()
    expect(problems.slice(0, 20)).toEqual([])
    expect((await http(node.url, "GET", "/healthz")).status).toBe(200)
  }, 240_000)

  it("still delivers everything queued before the fuzzing, in order", async () => {
    const socket = await connect(node.wsUrl, { token: await token(keeper) })
    const got = await socket.messages(kept.length, { timeoutMs: 20_000 })
    const rank = (p: string) => ["critical", "high", "normal", "low"].indexOf(p)
    const expected = [...kept].sort((a, b) => rank(a.priority) - rank(b.priority) || a.i - b.i)
    expect(got.map((f) => (f["payload"] as { i: number }).i)).toEqual(expected.map((k) => k.i))
    socket.ws.close()
    expect(exitedWith, "the gateway process exited").toBeUndefined()
  }, 60_000)
})
