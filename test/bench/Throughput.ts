// Step 1 — producer throughput: HTTP POST /v1/messages (one message per request), POST
// /v1/messages/batch (1000 per request) and libs/queue's enqueue called in-process, each as
// msg/s next to raw JetStream async publish (same client library, 256-byte payloads). The raw
// figure is measured before and after the Holdover ones and averaged, so a change of load on the
// shared machine during the step does not tilt the ratios.
import type { RunningGateway } from "@holdover/local-nats"
import type { Figures, StepContext } from "./Figures.ts"
import type { Harness } from "./Harness.ts"
import { InProcessQueue } from "./InProcessQueue.ts"
import { RawJetStream, payloadBytes } from "./RawJetStream.ts"
import { filler, perSecond, ratio, round, runPool } from "./Stats.ts"

const recipients = 100

export const throughput = async (
  harness: Harness,
  gateway: RunningGateway,
  ctx: StepContext,
): Promise<Figures> => {
  const plan = ctx.quick
    ? { raw: 5_000, single: 2_000, batch: 6_000, direct: 4_000 }
    : { raw: 30_000, single: 10_000, batch: 30_000, direct: 20_000 }
  const stepDeadline = (ms: number) => Date.now() + ms
  const payload = filler(payloadBytes)
  const producer = await harness.token("bench-producer", ["publish"])

  const raw = await RawJetStream.connect(harness.nats.url, "BENCHRAWPUB")
  // Warm-up (JIT, first file blocks), not measured.
  await raw.publishRate({ count: 2_000, window: 256, recipients, deadline: stepDeadline(20_000) })
  const rawBefore = await raw.publishRate({
    count: plan.raw,
    window: 256,
    recipients,
    deadline: stepDeadline(40_000),
  })
  ctx.log(`raw JetStream async publish: ${rawBefore.rate} msg/s`)
  const rawEnvelope = await raw.publishRate({
    count: plan.raw,
    window: 256,
    recipients,
    deadline: stepDeadline(40_000),
    envelope: true,
  })
  ctx.log(`raw publish with id + Holdover headers: ${rawEnvelope.rate} msg/s`)

  // Warm-up of the gateway's HTTP path (JIT, connections), not measured.
  await runPool(200, 16, stepDeadline(20_000), async (i) => {
    await harness.http(gateway.url, "POST", "/v1/messages", producer, { to: `tp-warm-${i % 10}`, payload })
  })

  // HTTP, one message per request, 64 requests in flight over keep-alive connections.
  let singleOk = 0
  let singleErrors = 0
  const singleCpu = harness.meter(gateway)
  const singleStart = performance.now()
  await runPool(plan.single, 64, stepDeadline(60_000), async (i) => {
    const reply = await harness.http(gateway.url, "POST", "/v1/messages", producer, {
      to: `tp-single-${i % recipients}`,
      priority: "normal",
      payload,
    })
    if (reply.status === 202) singleOk++
    else singleErrors++
  })
  const single = perSecond(singleOk, performance.now() - singleStart)
  const singleUse = singleCpu()
  ctx.log(
    `HTTP single: ${single} msg/s (${singleOk} queued, ${singleErrors} refused); CPU ${JSON.stringify(singleUse)}`,
  )

  // HTTP batch: 1000 messages per request, 4 requests in flight.
  const httpBatch = async (batches: number, inFlight: number) => {
    let ok = 0
    let refused = 0
    const cpu = harness.meter(gateway)
    const started = performance.now()
    await runPool(batches, inFlight, stepDeadline(90_000), async (b) => {
      const messages = Array.from({ length: 1000 }, (_, i) => ({
        to: `tp-batch-${(b * 1000 + i) % recipients}`,
        priority: "normal",
        payload,
      }))
      const reply = await harness.http(gateway.url, "POST", "/v1/messages/batch", producer, { messages })
      const results = (reply.body as { results?: Array<{ status?: string }> }).results ?? []
      const queued = results.filter((r) => r.status === "queued").length
      ok += queued
      refused += 1000 - queued
    })
    return { rate: perSecond(ok, performance.now() - started), ok, refused, cpu: cpu() }
  }
  const batch = await httpBatch(Math.ceil(plan.batch / 1000), 4)
  ctx.log(
    `HTTP batch (4 requests in flight): ${batch.rate} msg/s (${batch.ok} queued, ${batch.refused} refused); CPU ${JSON.stringify(batch.cpu)}`,
  )
  // How batch throughput follows the number of requests in flight tells whether a batch's
  // messages are published one after another.
  const sweep = ctx.quick ? [] : [1, 16]
  const batchSweep: Record<string, number> = {}
  for (const inFlight of sweep) {
    const run = await httpBatch(inFlight === 1 ? 3 : 2 * inFlight, inFlight)
    batchSweep[`in_flight_${inFlight}`] = run.rate
    ctx.log(`HTTP batch (${inFlight} in flight): ${run.rate} msg/s`)
  }

  // libs/queue in this process: 256 enqueues in flight.
  const queue = await InProcessQueue.start(harness.nats.url, "BENCHQ")
  await queue.enqueueMany(
    500,
    64,
    (i) => ({ to: `tp-warm-${i % 10}`, priority: "normal", payload }),
    stepDeadline(20_000),
  )
  const directCpu = harness.meter()
  const direct = await queue.enqueueMany(
    plan.direct,
    256,
    (i) => ({ to: `tp-direct-${i % recipients}`, priority: "normal", payload }),
    stepDeadline(60_000),
  )
  const directRate = perSecond(direct.count, direct.ms)
  const directUse = directCpu()
  ctx.log(
    `libs/queue enqueue (in-process): ${directRate} msg/s (${direct.failed} failed); CPU ${JSON.stringify(directUse)}`,
  )
  await queue.deleteStreams()
  await queue.close()

  const rawAfter = await raw.publishRate({
    count: plan.raw,
    window: 256,
    recipients,
    deadline: stepDeadline(40_000),
  })
  const baseline = round((rawBefore.rate + rawAfter.rate) / 2)
  ctx.log(`raw JetStream async publish (again): ${rawAfter.rate} msg/s → baseline ${baseline} msg/s`)
  await raw.close()

  const vsRaw = (value: number) => ({ value, unit: "msg/s", baseline, ratio: ratio(value, baseline) })
  return {
    http_batch_publish: vsRaw(batch.rate),
    http_single_publish: vsRaw(single),
    queue_enqueue_direct: vsRaw(directRate),
    producer_cpu: {
      batch_gateway_cpu_pct: batch.cpu["gateway_cpu_pct"] ?? 0,
      batch_nats_cpu_pct: batch.cpu["nats_cpu_pct"] ?? 0,
      single_gateway_cpu_pct: singleUse["gateway_cpu_pct"] ?? 0,
      single_nats_cpu_pct: singleUse["nats_cpu_pct"] ?? 0,
      direct_bench_cpu_pct: directUse["bench_cpu_pct"] ?? 0,
      direct_nats_cpu_pct: directUse["nats_cpu_pct"] ?? 0,
    },
    raw_publish_with_envelope: vsRaw(rawEnvelope.rate),
    ...(sweep.length > 0
      ? { http_batch_by_requests_in_flight: { unit: "msg/s", in_flight_4: batch.rate, ...batchSweep } }
      : {}),
  }
}
