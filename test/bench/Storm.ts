// Step 4 — reconnect storm: N recipients, each with a backlog (two messages of each priority, so
// every session needs all four lanes), connect at the same moment, as clients do after a gateway
// restart. The clients behave like the SDK (BenchClient: at once on 1012, backoff on 4429/1006).
// Measured: the time until every recipient has its whole backlog, JetStream API errors during
// the storm (the /jsz api.errors delta), the consumers alive at the peak (/jsz sampled every
// 100 ms), the gateway's peak RSS, and how connections were closed on the way.
import { setTimeout as sleep } from "node:timers/promises"
import type { RunningGateway } from "@holdover/local-nats"
import { priorities } from "@holdover/protocol"
import { BenchClient } from "./BenchClient.ts"
import type { Figures, StepContext } from "./Figures.ts"
import { rssKb, type Harness } from "./Harness.ts"
import { payloadBytes } from "./RawJetStream.ts"
import { filler, pollUntil, round } from "./Stats.ts"

const perPriority = 2

export const stormOnce = async (
  harness: Harness,
  gateway: RunningGateway,
  recipients: number,
  ctx: StepContext,
  timeoutMs: number,
): Promise<{ drainS: number; apiErrors: number; peakConsumers: number; figure: Record<string, number> }> => {
  const tag = `storm-${recipients}-${Date.now().toString(36)}`
  const payload = filler(payloadBytes)
  const producer = await harness.token("bench-producer", ["publish"])
  const messages = Array.from({ length: recipients }, (_, r) =>
    priorities.flatMap((priority) =>
      Array.from({ length: perPriority }, () => ({ to: `${tag}-${r}`, priority, payload })),
    ),
  ).flat()
  await harness.seed(gateway.url, producer, messages, 300_000)
  const tokens = await harness.tokens(Array.from({ length: recipients }, (_, r) => `${tag}-${r}`))
  const expect = perPriority * priorities.length

  const before = await harness.jsz()
  let peakConsumers = before.consumers
  let peakRss = rssKb(gateway.pid)
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      const z = await harness.jsz().catch(() => undefined)
      if (z) peakConsumers = Math.max(peakConsumers, z.consumers)
      peakRss = Math.max(peakRss, rssKb(gateway.pid))
      await sleep(100)
    }
  })()

  const cpu = harness.meter(gateway)
  const started = performance.now()
  const clients = tokens.map((token) =>
    new BenchClient({ url: gateway.wsUrl, token, expect, maxAttempts: 40 }).start(),
  )
  const deadline = Date.now() + timeoutMs
  let lastReport = Date.now()
  while (Date.now() < deadline) {
    const done = clients.filter((c) => c.isDone).length
    if (done === recipients) break
    if (clients.every((c) => c.isDone || c.failed !== undefined)) break
    if (Date.now() - lastReport > 10_000) {
      lastReport = Date.now()
      ctx.log(`storm ${recipients}: ${done} drained after ${round((performance.now() - started) / 1000)} s`)
    }
    await sleep(20)
  }
  const drained = clients.filter((c) => c.isDone).length
  // Not all drained: the time we gave it is a lower bound of the drain time.
  const drainS =
    drained === recipients
      ? (Math.max(...clients.map((c) => c.lastMessageAt)) - started) / 1000
      : (performance.now() - started) / 1000
  const cpuUse = cpu()
  sampling = false
  await sampler
  const after = await harness.jsz()
  const closes = new Map<number, number>()
  for (const client of clients)
    for (const [code, count] of client.closes) closes.set(code, (closes.get(code) ?? 0) + count)
  const reconnects = clients.reduce((sum, c) => sum + c.attempts - 1, 0)
  const duplicates = clients.reduce((sum, c) => sum + c.duplicates, 0)
  const violations = clients.reduce((sum, c) => sum + c.orderViolations, 0)
  const failed = clients.filter((c) => c.failed !== undefined)
  const apiErrors = after.api.errors - before.api.errors
  ctx.log(
    `storm ${recipients}: ${drained}/${recipients} drained in ${round(drainS)} s; JetStream API errors ${apiErrors} ` +
      `(of ${after.api.total - before.api.total} calls); peak consumers ${peakConsumers}; reconnects ${reconnects}; ` +
      `closes ${JSON.stringify(Object.fromEntries(closes))}; duplicates ${duplicates}; gateway peak RSS ${round(peakRss / 1024)} MB; CPU ${JSON.stringify(cpuUse)}`,
  )
  if (drained < recipients)
    ctx.note(
      `storm ${recipients}: only ${drained} of ${recipients} drained within ${timeoutMs / 1000} s ` +
        `(drain_s is the time given, a lower bound)` +
        (failed[0] ? ` (e.g. ${failed[0].failed})` : ""),
    )

  await Promise.all(clients.map((c) => c.close()))
  // Leave JetStream as we found it before the next step: sessions end, consumers go.
  await pollUntil(async () => (await harness.jsz()).consumers <= before.consumers, 60_000, 250)
  return {
    drainS,
    apiErrors,
    peakConsumers,
    figure: {
      recipients,
      drained,
      drain_s: round(drainS),
      js_api_errors: apiErrors,
      js_api_calls: after.api.total - before.api.total,
      peak_consumers: peakConsumers,
      reconnects,
      closed_1006: closes.get(1006) ?? 0,
      closed_1012: closes.get(1012) ?? 0,
      closed_4429: closes.get(4429) ?? 0,
      duplicates,
      order_violations: violations,
      gateway_peak_rss_mb: round(peakRss / 1024),
      ...cpuUse,
    },
  }
}

export const storm = async (harness: Harness, ctx: StepContext): Promise<Figures> => {
  const sizes = ctx.quick ? [200, 1000] : [1000, 5000]
  const figures: Figures = {}
  for (const recipients of sizes) {
    // A fresh gateway per storm: nothing left over from earlier steps in its memory or its sessions.
    const gateway = await harness.gateway()
    try {
      const result = await stormOnce(harness, gateway, recipients, ctx, ctx.quick ? 60_000 : 180_000)
      figures[`storm_${recipients}_detail`] = result.figure
      figures[`storm_${recipients}`] = {
        drain_s: round(result.drainS),
        js_api_errors: result.apiErrors,
        peak_consumers: result.peakConsumers,
      }
    } finally {
      await harness.stopGateway(gateway)
    }
  }
  return figures
}
