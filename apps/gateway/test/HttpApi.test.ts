import type { RunningGateway, RunningNats } from "@holdover/local-nats"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { connect, gateway, http, nats, token, unique, type Json } from "./support.ts"

describe("HTTP API (a real gateway process over a real nats-server)", () => {
  let server: RunningNats
  let node: RunningGateway
  let admin: string

  beforeAll(async () => {
    server = await nats()
    node = await gateway(server, {
      HOLDOVER_LOW_CAPACITY: "2",
      HOLDOVER_CRITICAL_CAPACITY: "2",
      HOLDOVER_MAX_MESSAGE_BYTES: "2048",
    })
    admin = await token("ops")
  })
  afterAll(async () => {
    await node?.stop()
    await server?.stop()
  })

  it("answers 202 queued with id, priority and expiry, and a repeated id with the first result", async () => {
    const to = unique("alice")
    const first = await http(node.url, "POST", "/v1/messages", {
      token: admin,
      body: { to, priority: "high", ttlMs: 600_000, id: "order-42", payload: { any: "json" } },
    })
    expect(first.status).toBe(202)
    expect(first.body).toMatchObject({ id: "order-42", status: "queued", priority: "high" })
    expect(Date.parse(first.body["expiresAt"]) - Date.now()).toBeGreaterThan(590_000)
    const again = await http(node.url, "POST", "/v1/messages", {
      token: admin,
      body: { to, priority: "high", id: "order-42", payload: { other: true } },
    })
    expect(again).toMatchObject({ status: 202, body: first.body })
    const queue = await http(node.url, "GET", `/v1/recipients/${encodeURIComponent(to)}/queue`, {
      token: admin,
    })
    expect(queue).toMatchObject({
      status: 200,
      body: { recipient: to, depth: { critical: 0, high: 1, normal: 0, low: 0 }, online: false },
    })
  })

  it("makes an id when none is given and defaults to normal priority", async () => {
    const reply = await http(node.url, "POST", "/v1/messages", {
      token: admin,
      body: { to: unique("b"), payload: 1 },
    })
    expect(reply.status).toBe(202)
    expect(reply.body).toMatchObject({ status: "queued", priority: "normal" })
    expect(reply.body["id"]).toMatch(/^m_/)
  })

  it("answers 202 dropped when a drop_newest queue is full", async () => {
    const to = unique("low")
    for (let i = 0; i < 2; i++)
      expect(
        (
          await http(node.url, "POST", "/v1/messages", {
            token: admin,
            body: { to, priority: "low", payload: i },
          })
        ).status,
      ).toBe(202)
    const dropped = await http(node.url, "POST", "/v1/messages", {
      token: admin,
      body: { to, priority: "low", id: "x3", payload: 3 },
    })
    expect(dropped).toMatchObject({
      status: 202,
      body: { id: "x3", status: "dropped", reason: "QUEUE_FULL" },
    })
  })

  it("answers 429 QUEUE_FULL when a reject queue is full, losing nothing queued", async () => {
    const to = unique("crit")
    for (let i = 0; i < 2; i++)
      await http(node.url, "POST", "/v1/messages", {
        token: admin,
        body: { to, priority: "critical", payload: i },
      })
    const full = await http(node.url, "POST", "/v1/messages", {
      token: admin,
      body: { to, priority: "critical", payload: 3 },
    })
    expect(full.status).toBe(429)
    expect(full.body["error"]).toMatchObject({ code: "QUEUE_FULL" })
    const queue = await http(node.url, "GET", `/v1/recipients/${to}/queue`, { token: admin })
    expect(queue.body["depth"]).toMatchObject({ critical: 2 })
  })

  it("answers 400 INVALID_MESSAGE with the failing path for schema violations and bad JSON", async () => {
    const cases = [
      { body: { to: "a", priority: "urgent", payload: 1 }, path: "priority" },
      { body: { to: "a", ttlMs: -1, payload: 1 }, path: "ttlMs" },
      { body: { to: "a", ttlMs: "soon", payload: 1 }, path: "ttlMs" },
      { body: { payload: 1 }, path: "to" },
      { body: { to: "x".repeat(300), payload: 1 }, path: "to" },
      { body: { to: "a", priority: "low", ttlMs: 3_600_000, payload: 1 }, path: "ttlMs" }, // over low's max age
    ]
    for (const { body, path } of cases) {
      const reply = await http(node.url, "POST", "/v1/messages", { token: admin, body })
      expect(reply.status, JSON.stringify(body)).toBe(400)
      expect(reply.body["error"]).toMatchObject({ code: "INVALID_MESSAGE", path })
    }
    const malformed = await http(node.url, "POST", "/v1/messages", {
      token: admin,
      raw: '{"to": "a", payload',
    })
    expect(malformed.status).toBe(400)
    expect(malformed.body["error"]["code"]).toBe("INVALID_MESSAGE")
  })

  it("answers 413 MESSAGE_TOO_LARGE for a payload over HOLDOVER_MAX_MESSAGE_BYTES", async () => {
    const reply = await http(node.url, "POST", "/v1/messages", {
      token: admin,
      body: { to: "big", payload: "x".repeat(3000) },
    })
    expect(reply.status).toBe(413)
    expect(reply.body["error"]["code"]).toBe("MESSAGE_TOO_LARGE")
  })

  it("answers 401 for missing, forged and expired tokens and 403 for a missing scope or recipient", async () => {
    const body = { to: "carol", payload: 1 }
    expect((await http(node.url, "POST", "/v1/messages", { body })).status).toBe(401)
    const forged = admin.slice(0, -4) + (admin.endsWith("AAAA") ? "BBBB" : "AAAA")
    const forgedReply = await http(node.url, "POST", "/v1/messages", { token: forged, body })
    expect(forgedReply).toMatchObject({ status: 401, body: { error: { code: "UNAUTHORIZED" } } })
    const expired = await token("ops", ["publish"], { ttlSeconds: -10 })
    const expiredReply = await http(node.url, "POST", "/v1/messages", { token: expired, body })
    expect(expiredReply.status).toBe(401)
    expect(expiredReply.body["error"]["message"]).toContain("expired")
    const receiveOnly = await token("r", ["receive"])
    expect((await http(node.url, "POST", "/v1/messages", { token: receiveOnly, body })).body).toMatchObject({
      error: { code: "FORBIDDEN" },
    })
    const onlyToDave = await token("p", ["publish"], { holdoverTo: ["dave"] })
    expect((await http(node.url, "POST", "/v1/messages", { token: onlyToDave, body })).status).toBe(403)
    expect(
      (await http(node.url, "POST", "/v1/messages", { token: onlyToDave, body: { to: "dave", payload: 1 } }))
        .status,
    ).toBe(202)
    expect((await http(node.url, "GET", "/v1/recipients/dave/queue", { token: onlyToDave })).status).toBe(403)
  })

  it("answers a batch with one result per message, in order", async () => {
    const to = unique("batch")
    const reply = await http(node.url, "POST", "/v1/messages/batch", {
      token: admin,
      body: {
        messages: [
          { to, payload: 1 },
          { to, priority: "bogus", payload: 2 },
          { to, priority: "high", id: "b3", payload: 3 },
          { to, priority: "low", ttlMs: 400 * 24 * 3_600_000, payload: 4 },
        ],
      },
    })
    expect(reply.status).toBe(200)
    const results = reply.body["results"] as Array<Record<string, Json>>
    expect(results).toHaveLength(4)
    expect(results[0]).toMatchObject({ status: "queued", priority: "normal" })
    expect(results[1]).toMatchObject({ error: { code: "INVALID_MESSAGE", path: "messages.1.priority" } })
    expect(results[2]).toMatchObject({ id: "b3", status: "queued", priority: "high" })
    // A TTL over the lane's maximum is refused by the queue, named by its place in the batch.
    expect(results[3]).toMatchObject({ error: { code: "INVALID_MESSAGE", path: "messages.3.ttlMs" } })
    const tooMany = await http(node.url, "POST", "/v1/messages/batch", {
      token: admin,
      body: { messages: Array.from({ length: 1001 }, () => ({ to, payload: 1 })) },
    })
    expect(tooMany.status).toBe(400)
  })

  it("keeps each recipient's batch order when a batch interleaves many recipients", async () => {
    const recipients = Array.from({ length: 40 }, () => unique("interleaved"))
    const messages = Array.from({ length: 1000 }, (_, i) => ({
      to: recipients[i % recipients.length],
      priority: "normal",
      payload: i,
    }))
    const reply = await http(node.url, "POST", "/v1/messages/batch", { token: admin, body: { messages } })
    expect(reply.status).toBe(200)
    const results = reply.body["results"] as Array<Record<string, Json>>
    expect(results.every((r) => r["status"] === "queued")).toBe(true)
    for (const to of [recipients[0]!, recipients[39]!]) {
      const socket = await connect(node.wsUrl, { token: await token(to) })
      const got = (await socket.messages(25)).map((frame) => frame["payload"])
      expect(got).toEqual(messages.filter((m) => m.to === to).map((m) => m.payload))
      socket.ws.close()
    }
  })

  it("keeps one recipient's batch order when some messages carry producer ids and some are invalid", async () => {
    // A producer id costs a dedup claim before its publish; the publishes of one recipient go
    // out pipelined, so a message without one must still wait for its turn.
    const to = unique("mixed-order")
    const messages = Array.from({ length: 300 }, (_, i) =>
      i % 50 === 7
        ? { to, priority: "normal", ttlMs: -1, payload: i }
        : { to, priority: "normal", ...(i % 3 === 0 ? { id: `mixed-${i}` } : {}), payload: i },
    )
    const reply = await http(node.url, "POST", "/v1/messages/batch", { token: admin, body: { messages } })
    expect(reply.status).toBe(200)
    const results = reply.body["results"] as Array<Record<string, Json>>
    const queued = messages.filter((_, i) => results[i]?.["status"] === "queued").map((m) => m.payload)
    expect(queued).toEqual(messages.filter((m) => m.ttlMs === undefined).map((m) => m.payload))
    const socket = await connect(node.wsUrl, { token: await token(to) })
    const got = (await socket.messages(queued.length)).map((frame) => frame["payload"])
    expect(got).toEqual(queued)
    socket.ws.close()
  })

  it("purges a recipient's queue and reports how many messages went", async () => {
    const to = unique("purge")
    for (const priority of ["high", "normal", "normal"])
      await http(node.url, "POST", "/v1/messages", { token: admin, body: { to, priority, payload: 1 } })
    expect(await http(node.url, "DELETE", `/v1/recipients/${to}/queue`, { token: admin })).toMatchObject({
      status: 200,
      body: { purged: 3 },
    })
    expect(
      (await http(node.url, "GET", `/v1/recipients/${to}/queue`, { token: admin })).body["depth"],
    ).toEqual({
      critical: 0,
      high: 0,
      normal: 0,
      low: 0,
    })
  })

  it("keeps recipient ids with subject wildcards apart", async () => {
    for (const to of ["a.b", "a.*", ">", "a b"]) {
      await http(node.url, "DELETE", `/v1/recipients/${encodeURIComponent(to)}/queue`, { token: admin })
      await http(node.url, "POST", "/v1/messages", { token: admin, body: { to, payload: to } })
    }
    for (const to of ["a.b", "a.*", ">", "a b"]) {
      const reply = await http(node.url, "GET", `/v1/recipients/${encodeURIComponent(to)}/queue`, {
        token: admin,
      })
      expect(reply.body["depth"]["normal"], to).toBe(1)
    }
  })

  it("reports NATS and stream health with the policy of each priority to admins", async () => {
    const launcher = inject("natsLauncher")
    const status = await http(node.url, "GET", "/v1/status", { token: admin })
    expect(status.status).toBe(200)
    expect(status.body).toMatchObject({
      gateway: { ready: true, draining: false },
      nats: { connected: true, ...(launcher.kind === "binary" ? { version: launcher.version } : {}) },
    })
    const streams = status.body["streams"] as Array<Record<string, Json>>
    expect(streams.map((s) => [s["stream"], s["policy"]["overflow"], s["policy"]["capacity"]])).toEqual([
      ["HOLDOVER_CRITICAL", "reject", 2],
      ["HOLDOVER_HIGH", "drop_oldest", 1000],
      ["HOLDOVER_NORMAL", "drop_oldest", 1000],
      ["HOLDOVER_LOW", "drop_newest", 2],
    ])
    expect((await http(node.url, "GET", "/v1/status", { token: await token("r", ["receive"]) })).status).toBe(
      403,
    )
  })

  it("serves health, readiness, metrics and the OpenAPI document", async () => {
    expect((await http(node.url, "GET", "/healthz")).status).toBe(200)
    expect(await http(node.url, "GET", "/readyz")).toMatchObject({ status: 200, body: { status: "ready" } })
    const metrics = await http(node.url, "GET", "/metrics")
    expect(metrics.status).toBe(200)
    expect(String(metrics.body)).toMatch(/holdover_messages_enqueued_total\{priority="high"\} \d+/)
    expect(String(metrics.body)).toContain("holdover_nats_connected 1")
    const openapi = await http(node.url, "GET", "/v1/openapi.json")
    expect(openapi.body).toMatchObject({ openapi: "3.1.0" })
    expect(Object.keys(openapi.body["paths"])).toContain("/v1/messages")
    expect((await http(node.url, "GET", "/nope")).status).toBe(404)
  })

  it("serves a landing page at / whose links all answer 200", async () => {
    const page = await fetch(`${node.url}/`)
    expect(page.status).toBe(200)
    expect(page.headers.get("content-type")).toContain("text/html")
    const html = await page.text()
    expect(html).toContain("/v1/ws")
    expect(html).toContain("HOLDOVER_DEMO=on") // this suite's gateway has the demo page off
    const links = [...html.matchAll(/href="([^"]+)"/g)].map((match) => match[1] ?? "")
    expect(links).toEqual(["v1/openapi.json", "metrics", "healthz", "readyz"])
    for (const link of links) expect((await fetch(new URL(link, `${node.url}/`))).status, link).toBe(200)
  })
})
