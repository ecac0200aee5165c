// Step 2 — end-to-end delivery to a connected recipient: producer → gateway → JetStream → the
// recipient's session → WebSocket → client ack. Three phases, each on a connected recipient:
//  - saturation: `count` messages published as fast as the batch endpoint takes them (4 requests
//    of 200 in flight); msg/s from the first publish to the last message received (the figure's
//    value). Latencies of this phase mostly measure the backlog that builds up: reported apart.
//  - half rate: open-loop batches every `halfTickMs` at half the saturated rate, each message
//    stamped with the time it was due (so a stalled producer counts against the latency, not for
//    it); due → receive latency p50/p99 (`e2e_half_rate`: the issue's "p99 ≤ 50 ms at half that
//    rate").
//  - light load: single-message POSTs paced at `lightRate`/s; publish → receive latency p50/p99
//    (the figure's p50_ms/p99_ms).
//  - saturation again, the producer being libs/queue in this process instead of HTTP: the gateway
//    then only delivers, which separates its delivery path from its producer path.
// The baseline is raw JetStream async publish on the same server (DESIGN.md: storing is the limit
// of a delivery that must survive a crash); `raw_ws_push` adds a bare `ws` server, in a process of
// its own like the gateway, pushing frames of the same size to one client as fast as its send
// buffer drains.
import { spawn } from "node:child_process"
import { setTimeout as sleep } from "node:timers/promises"
import type { RunningGateway } from "@holdover/local-nats"
import WebSocket from "ws"
import { BenchClient } from "./BenchClient.ts"
import type { Figures, StepContext } from "./Figures.ts"
import type { Harness } from "./Harness.ts"
import { InProcessQueue } from "./InProcessQueue.ts"
import { RawJetStream, payloadBytes } from "./RawJetStream.ts"
import { filler, percentile, perSecond, ratio, round } from "./Stats.ts"

const nowMs = () => performance.timeOrigin + performance.now()
/** How often the half-rate producer sends what fell due. */
const halfTickMs = 10

/** The child process of the baseline: a bare ws server that pushes `count` frames to its first client. */
const rawServerSource = `
const { WebSocketServer } = require("ws")
const count = Number(process.argv[1])
const frame = process.argv[2]
const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false })
wss.on("listening", () => console.log(String(wss.address().port)))
wss.on("connection", (ws) => {
  let sent = 0
  const pump = () => {
    while (sent < count) {
      if (ws.bufferedAmount > 1024 * 1024) return setTimeout(pump, 1)
      ws.send(frame)
      sent++
    }
  }
  pump()
})
setTimeout(() => process.exit(0), 120000).unref()
`

/** Frames per second a bare ws server pushes to one client (frames shaped like Holdover's message frames). */
export const rawWsPush = async (count: number, frameText: string): Promise<number> => {
  const child = spawn(process.execPath, ["-e", rawServerSource, String(count), frameText], {
    stdio: ["ignore", "pipe", "inherit"],
  })
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.once("data", (chunk: Buffer) => resolve(Number(chunk.toString().trim())))
      child.once("exit", (code) => reject(new Error(`the raw ws server exited (${code})`)))
    })
    return await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false })
      let received = 0
      let started = 0
      const timer = setTimeout(
        () => reject(new Error(`raw ws push: ${received} of ${count} in time`)),
        60_000,
      )
      ws.on("open", () => (started = performance.now()))
      ws.on("error", reject)
      ws.on("message", (data) => {
        JSON.parse(data.toString()) // the client of the Holdover run parses every frame too
        if (++received === count) {
          clearTimeout(timer)
          resolve(perSecond(count, performance.now() - started))
          ws.terminate()
        }
      })
    })
  } finally {
    child.kill("SIGKILL")
  }
}

/** Waits until `client` has `count` messages (bounded); returns msg/s since `since` and the latencies seen. */
const saturation = async (
  client: BenchClient,
  count: number,
  since: number,
  latencies: Array<number>,
): Promise<{ rate: number; p50: number; p99: number; received: number }> => {
  const deadline = Date.now() + 120_000
  while (client.received < count && Date.now() < deadline) await sleep(5)
  return {
    rate: perSecond(client.received, client.lastMessageAt - since),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    received: client.received,
  }
}

export const delivery = async (
  harness: Harness,
  gateway: RunningGateway,
  ctx: StepContext,
): Promise<Figures> => {
  const plan = ctx.quick
    ? { count: 4_000, raw: 50_000, light: 300, lightRate: 150, halfSeconds: 1.5 }
    : { count: 20_000, raw: 200_000, light: 1_500, lightRate: 150, halfSeconds: 4 }
  const pad = filler(payloadBytes - 30) // {"t":<17 digits>,"p":"…"} ≈ 256 bytes of JSON
  const producer = await harness.token("bench-producer", ["publish"])
  const latencies: Array<number> = []
  const connect = async (recipient: string, expect: number) => {
    const client = new BenchClient({
      url: gateway.wsUrl,
      token: await harness.token(recipient),
      expect,
      onMessage: (message) => {
        const t = (message.payload as { t?: number }).t
        if (typeof t === "number") latencies.push(nowMs() - t)
      },
    }).start()
    await client.welcomed
    return client
  }

  // Saturation, producers over HTTP (4 batch requests of 200 in flight).
  const recipient = `e2e-${Date.now().toString(36)}`
  // The half-rate phase's count is known once the saturated rate is: the client expects at most.
  const client = await connect(recipient, plan.count * 10)
  const httpCpu = harness.meter(gateway)
  const firstPublish = performance.now()
  let next = 0
  const publisher = async () => {
    const deadline = Date.now() + 120_000
    while (next < plan.count && Date.now() < deadline) {
      const size = Math.min(200, plan.count - next)
      next += size
      const t = nowMs()
      const messages = Array.from({ length: size }, () => ({
        to: recipient,
        priority: "normal",
        payload: { t, p: pad },
      }))
      const reply = await harness.http(gateway.url, "POST", "/v1/messages/batch", producer, { messages })
      if (reply.status !== 200)
        throw new Error(`e2e publish: HTTP ${reply.status} ${JSON.stringify(reply.body).slice(0, 200)}`)
    }
  }
  await Promise.all([publisher(), publisher(), publisher(), publisher()])
  const publishRate = perSecond(next, performance.now() - firstPublish)
  const http = await saturation(client, plan.count, firstPublish, latencies)
  const httpUse = httpCpu()
  ctx.log(
    `e2e saturated (HTTP producer, published at ${publishRate} msg/s): delivered ${http.rate} msg/s ` +
      `(${http.received}/${plan.count}), latency p50 ${round(http.p50)} ms p99 ${round(http.p99)} ms; CPU ${JSON.stringify(httpUse)}`,
  )
  if (http.received < plan.count) ctx.note(`e2e: only ${http.received} of ${plan.count} delivered in time`)

  // Half the saturated rate, open loop: every tick sends what fell due since the last one, as one
  // batch (at most 64 requests in flight; a tick that waits for room still stamps the due times).
  latencies.length = 0
  const halfRate = Math.max(100, Math.round(http.rate / 2))
  const halfCount = Math.round(halfRate * plan.halfSeconds)
  const halfFrom = client.received
  const halfCpu = harness.meter(gateway)
  const halfStart = nowMs()
  const halfRequests = new Set<Promise<unknown>>()
  let halfSent = 0
  const halfDeadline = Date.now() + plan.halfSeconds * 1000 + 30_000
  while (halfSent < halfCount && Date.now() < halfDeadline) {
    const due = Math.min(halfCount, Math.floor(((nowMs() - halfStart) * halfRate) / 1000))
    if (due > halfSent) {
      if (halfRequests.size >= 64) await Promise.race(halfRequests)
      const messages = Array.from({ length: due - halfSent }, (_, i) => ({
        to: recipient,
        priority: "normal",
        payload: { t: halfStart + ((halfSent + i) * 1000) / halfRate, p: pad },
      }))
      halfSent = due
      const request = harness
        .http(gateway.url, "POST", "/v1/messages/batch", producer, { messages })
        .then((reply) => {
          if (reply.status !== 200) throw new Error(`e2e half rate: HTTP ${reply.status}`)
        })
        .finally(() => halfRequests.delete(request))
      halfRequests.add(request)
    }
    await sleep(halfTickMs)
  }
  await Promise.all(halfRequests)
  while (client.received < halfFrom + halfSent && Date.now() < halfDeadline) await sleep(5)
  const half = {
    rate: halfRate,
    sent: halfSent,
    received: client.received - halfFrom,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: Math.max(...latencies),
    use: halfCpu(),
  }
  ctx.log(
    `e2e at half the saturated rate (${halfRate} msg/s, batches every ${halfTickMs} ms): ` +
      `${half.received}/${halfSent} delivered, latency p50 ${round(half.p50)} ms p99 ${round(half.p99)} ms ` +
      `max ${round(half.max)} ms; CPU ${JSON.stringify(half.use)}`,
  )
  if (half.received < halfSent)
    ctx.note(`e2e half rate: only ${half.received} of ${halfSent} delivered in time`)

  // Light load: single POSTs paced at lightRate/s, same recipient.
  latencies.length = 0
  const received = client.received
  const gap = 1000 / plan.lightRate
  const lightStart = performance.now()
  const inFlight = new Set<Promise<unknown>>()
  for (let i = 0; i < plan.light; i++) {
    const due = lightStart + i * gap
    const wait = due - performance.now()
    if (wait > 1) await sleep(wait)
    if (inFlight.size >= 64) await Promise.race(inFlight)
    const t = nowMs()
    const request = harness
      .http(gateway.url, "POST", "/v1/messages", producer, {
        to: recipient,
        priority: "high",
        payload: { t, p: pad },
      })
      .finally(() => inFlight.delete(request))
    inFlight.add(request)
  }
  await Promise.all(inFlight)
  const lightDeadline = Date.now() + 30_000
  while (client.received < received + plan.light && Date.now() < lightDeadline) await sleep(5)
  const light = { p50: percentile(latencies, 50), p99: percentile(latencies, 99) }
  ctx.log(`e2e light load (${plan.lightRate} msg/s): p50 ${round(light.p50)} ms, p99 ${round(light.p99)} ms`)
  await client.close()

  // Saturation with the producer outside the gateway (libs/queue in this process, on the
  // gateway's streams): the gateway only delivers, so this isolates its delivery path.
  latencies.length = 0
  const direct = await InProcessQueue.start(harness.nats.url, "HOLDOVER", "hq")
  const second = `e2e-direct-${Date.now().toString(36)}`
  const directClient = await connect(second, plan.count)
  const directCpu = harness.meter(gateway)
  const directStart = performance.now()
  const enqueued = await direct.enqueueMany(
    plan.count,
    256,
    () => ({ to: second, priority: "normal", payload: { t: nowMs(), p: pad } }),
    Date.now() + 120_000,
  )
  const directPublishRate = perSecond(enqueued.count, enqueued.ms)
  const deliveryOnly = await saturation(directClient, enqueued.count, directStart, latencies)
  const directUse = directCpu()
  await directClient.close()
  await direct.close()
  ctx.log(
    `e2e saturated (libs/queue producer, enqueued at ${directPublishRate} msg/s): delivered ${deliveryOnly.rate} msg/s, ` +
      `latency p50 ${round(deliveryOnly.p50)} ms p99 ${round(deliveryOnly.p99)} ms; CPU ${JSON.stringify(directUse)}`,
  )

  const frame = JSON.stringify({
    type: "message",
    id: "m_00000000-0000-0000-0000-000000000000",
    priority: "normal",
    payload: { t: nowMs(), p: pad },
    enqueuedAt: new Date().toISOString(),
    expiresAt: new Date().toISOString(),
    redelivered: false,
  })
  const wsPush = await rawWsPush(plan.raw, frame)
  ctx.log(`raw ws push to one client: ${wsPush} msg/s (${frame.length}-byte frames)`)
  // DESIGN.md: the baseline of a delivery that must survive a crash is storing it — raw
  // JetStream async publish, on the same server, in the same step.
  const raw = await RawJetStream.connect(harness.nats.url, "BENCHE2ERAW")
  await raw.publishRate({ count: 2_000, window: 256, recipients: 100, deadline: Date.now() + 20_000 })
  const baseline = (
    await raw.publishRate({ count: 20_000, window: 256, recipients: 100, deadline: Date.now() + 40_000 })
  ).rate
  await raw.close()
  ctx.log(`raw JetStream async publish: ${baseline} msg/s (the e2e baseline)`)

  return {
    e2e_delivery: {
      value: http.rate,
      unit: "msg/s",
      baseline,
      ratio: ratio(http.rate, baseline),
      p50_ms: round(light.p50),
      p99_ms: round(light.p99),
    },
    e2e_delivery_saturated: {
      publish_msg_per_s: publishRate,
      ...httpUse,
      p50_ms: round(http.p50),
      p99_ms: round(http.p99),
    },
    e2e_delivery_queue_producer: {
      value: deliveryOnly.rate,
      unit: "msg/s",
      baseline,
      ratio: ratio(deliveryOnly.rate, baseline),
      enqueue_msg_per_s: directPublishRate,
      ...directUse,
      saturated_p50_ms: round(deliveryOnly.p50),
      saturated_p99_ms: round(deliveryOnly.p99),
    },
    raw_ws_push: { value: wsPush, unit: "msg/s", e2e_ratio: ratio(http.rate, wsPush) },
    e2e_half_rate: {
      rate: half.rate,
      unit: "msg/s",
      p50_ms: round(half.p50),
      p99_ms: round(half.p99),
      max_ms: round(half.max),
      goal_p99_ms: 50,
      sent: half.sent,
      received: half.received,
      ...half.use,
    },
    e2e_light_load: {
      rate: plan.lightRate,
      unit: "msg/s",
      p50_ms: round(light.p50),
      p99_ms: round(light.p99),
    },
  }
}
