// Step "overload" — a gateway node offered twice what it sustains. Three phases:
//  1. sustained: on a fresh gateway with the producer rate limits lifted, producers POST single
//     messages to /v1/messages as fast as they can (64 in flight) for a few seconds; accepted
//     (202) msg/s is what the node sustains, S (the baseline of this step). Raw JetStream async
//     publish is measured beside it, as in the throughput step. S is measured again at the end,
//     on the overload node once idle, and the baseline is the mean of the two.
//  2. overload: a second fresh gateway, shipped defaults except capacities and a per-producer
//     rate limit of S/8 msg/s (burst: 1 s of it). An open-loop schedule offers 2·S requests/s for
//     a fixed time: request i leaves at i / (2·S) s whether or not earlier ones were answered, over
//     at most `cap` keep-alive connections (a request due while all are busy is counted as
//     `skipped` and not sent). Half the requests come from two "noisy" producers (each offering
//     4× its limit, and still 2× it if the node only gets through S/s) and half from sixteen
//     "fair" ones (each at most half its limit: none should get 429). Meanwhile GET /healthz is
//     probed every 50 ms, on a new connection each time as a kubelet does, and over a kept-alive
//     one (the difference is time spent waiting to be accepted).
//  3. drain: every recipient connects; each message that was answered 202 must arrive
//     (`lost_accepted` must be 0); a message answered 429 must never arrive.
// Every loop is bounded in count and time; all traffic goes to 127.0.0.1.
import { readFileSync } from "node:fs"
import { Agent, request } from "node:http"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { setTimeout as sleep } from "node:timers/promises"
import type { RunningGateway } from "@holdover/local-nats"
import { BenchClient } from "./BenchClient.ts"
import type { Figures, StepContext } from "./Figures.ts"
import { openFilesLimit, type Harness } from "./Harness.ts"
import { RawJetStream } from "./RawJetStream.ts"
import { filler, percentile, perSecond, pollUntil, ratio, round, runPool } from "./Stats.ts"

const recipients = 64

/** POSTs one JSON body; resolves with the HTTP status, or 0 and the error's code (a socket error,
 * or no answer within `timeoutMs`). */
const post = (agent: Agent, base: string, path: string, token: string, body: unknown, timeoutMs = 30_000) =>
  new Promise<{ status: number; error?: string }>((resolve) => {
    const text = JSON.stringify(body)
    const req = request(
      `${base}${path}`,
      {
        method: "POST",
        agent,
        timeout: timeoutMs,
        headers: {
          Authorization: `Bearer ${token}`,
          "Content-Type": "application/json",
          "Content-Length": Buffer.byteLength(text),
        },
      },
      (response) => {
        response.on("error", (error: NodeJS.ErrnoException) =>
          resolve({ status: 0, error: error.code ?? "" }),
        )
        response.on("end", () => resolve({ status: response.statusCode ?? 0 }))
        response.resume()
      },
    )
    req.on("timeout", () => req.destroy(new Error("timed out")))
    req.on("error", (error: NodeJS.ErrnoException) =>
      resolve({ status: 0, error: error.code ?? error.message }),
    )
    req.end(text)
  })

/** GET /healthz (`agent` false: on a new connection); resolves with the status (0: failed or over
 * `timeoutMs`) and the time taken. */
const probe = (base: string, agent: Agent | false, timeoutMs = 5_000) =>
  new Promise<{ status: number; ms: number }>((resolve) => {
    const started = performance.now()
    const done = (status: number) => resolve({ status, ms: performance.now() - started })
    const req = request(`${base}/healthz`, { agent, timeout: timeoutMs }, (response) => {
      response.on("error", () => done(0))
      response.on("end", () => done(response.statusCode ?? 0))
      response.resume()
    })
    req.on("timeout", () => req.destroy(new Error("timed out")))
    req.on("error", () => done(0))
    req.end()
  })

/**
 * Probes /healthz every `everyMs` until `stop()` (at most `max` times), each time twice: on a new
 * connection, as a kubelet does, and over a kept-alive one — the difference is time spent waiting
 * to be accepted (the listen backlog) rather than in the node's event loop.
 */
const prober = (base: string, everyMs: number, max: number) => {
  const agent = new Agent({ keepAlive: true, maxSockets: 128, maxFreeSockets: 128 })
  const fresh: Array<Promise<{ status: number; ms: number }>> = []
  const kept: Array<Promise<{ status: number; ms: number }>> = []
  let stopped = false
  const loop = (async () => {
    while (!stopped && fresh.length < max) {
      fresh.push(probe(base, false))
      kept.push(probe(base, agent))
      await sleep(everyMs)
    }
  })()
  return async () => {
    stopped = true
    await loop
    const results = { fresh: await Promise.all(fresh), kept: await Promise.all(kept) }
    agent.destroy()
    return results
  }
}

/** TcpExt ListenOverflows of this network namespace (connections dropped because an accept queue
 * was full — all listeners, not only the gateway's), from /proc/net/netstat; 0 when unreadable. */
const listenOverflows = (): number => {
  try {
    const lines = readFileSync("/proc/net/netstat", "utf8").split("\n")
    const at = lines.findIndex((l) => l.startsWith("TcpExt:"))
    const names = (lines[at] ?? "").split(/\s+/)
    const values = (lines[at + 1] ?? "").split(/\s+/)
    return Number(values[names.indexOf("ListenOverflows")] ?? 0)
  } catch {
    return 0
  }
}

const metricsOf = async (base: string): Promise<string> =>
  fetch(`${base}/metrics`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text())

const metric = (text: string, pattern: string): number =>
  Number(new RegExp(`^${pattern}\\s+(\\S+)`, "m").exec(text)?.[1] ?? 0)

export const overload = async (harness: Harness, ctx: StepContext): Promise<Figures> => {
  const plan = ctx.quick
    ? { sustainS: 2, overloadS: 5, raw: 3_000, drainS: 30 }
    : { sustainS: 3, overloadS: 12, raw: 10_000, drainS: 60 }
  const limit = openFilesLimit()
  // The client's connections, and as many on the gateway's side, must fit in the open-files limit.
  const cap = Math.max(64, Math.min(1024, Math.floor(((limit?.soft ?? 4096) - 512) / 2)))
  const runId = Date.now().toString(36)
  const payload = { kind: "notification", body: filler(200) }

  // 1. What the node sustains (limits lifted), and raw JetStream beside it.
  const raw = await RawJetStream.connect(harness.nats.url, "BENCHOVRAW")
  const rawRun = await raw.publishRate({
    count: plan.raw,
    window: 256,
    recipients,
    deadline: Date.now() + 20_000,
  })
  await raw.close()
  ctx.log(`raw JetStream async publish: ${rawRun.rate} msg/s`)

  const sustainTokens: Array<string> = []
  // 64 producers: each stays under the overload node's per-producer limit when it is measured again there.
  for (let k = 0; k < 64; k++) sustainTokens.push(await harness.token(`ov-sustain-${k}`, ["publish"]))
  const closedLoop = async (gateway: RunningGateway, seconds: number, count: number) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 64 })
    let accepted = 0
    let refused = 0
    const started = performance.now()
    await runPool(count, 64, Date.now() + seconds * 1000, async (i) => {
      const { status } = await post(agent, gateway.url, "/v1/messages", sustainTokens[i % 64] ?? "", {
        to: `ov-sustain-${runId}-${i % recipients}`,
        payload,
      })
      if (status === 202) accepted++
      else refused++
    })
    const rate = perSecond(accepted, performance.now() - started)
    agent.destroy()
    return { rate, accepted, refused }
  }
  const first = await harness.gateway()
  let sustained: { rate: number; accepted: number; refused: number }
  try {
    await closedLoop(first, 1, 2_000) // warm-up: JIT, connections
    sustained = await closedLoop(first, plan.sustainS, 50_000)
  } finally {
    await harness.stopGateway(first)
  }
  ctx.log(
    `sustained: ${sustained.rate} msg/s accepted (${sustained.accepted} in ${plan.sustainS} s, ${sustained.refused} refused; 64 in flight, limits lifted)`,
  )
  if (sustained.rate < 10) throw new Error(`the node sustained only ${sustained.rate} msg/s`)

  // 2. Twice that, open loop, on a fresh node whose per-producer limit is S/8.
  const S = sustained.rate // sets the offered load and the limits; the baseline is averaged below
  const perProducerLimit = Math.max(1, Math.round(S / 8))
  const offeredRate = 2 * S
  const total = Math.min(Math.round(offeredRate * plan.overloadS), 80_000)
  const gateway = await harness.gateway({
    HOLDOVER_PUBLISH_RATE: String(perProducerLimit),
    HOLDOVER_PUBLISH_BURST: String(perProducerLimit),
    HOLDOVER_MAX_PENDING_PUBLISHES: "10000", // the shipped default (the bench's other gateways lift it)
  })
  const clients: Array<BenchClient> = []
  const agent = new Agent({ keepAlive: true, maxSockets: cap, maxFreeSockets: cap })
  try {
    const noisy = [
      await harness.token("ov-noisy-0", ["publish"]),
      await harness.token("ov-noisy-1", ["publish"]),
    ]
    const fair: Array<string> = []
    for (let k = 0; k < 16; k++) fair.push(await harness.token(`ov-fair-${k}`, ["publish"]))
    // Warm-up (JIT) from producers of their own, so no bucket starts drained.
    const warmTokens: Array<string> = []
    for (let k = 0; k < 16; k++) warmTokens.push(await harness.token(`ov-warm-${k}`, ["publish"]))
    await runPool(Math.min(500, 8 * perProducerLimit), 16, Date.now() + 10_000, async (i) => {
      await post(agent, gateway.url, "/v1/messages", warmTokens[i % 16] ?? "", {
        to: `ov-warm-${runId}`,
        payload,
      })
    })
    const idleProbes = await (async () => {
      const stop = prober(gateway.url, 50, 20)
      await sleep(1_000)
      return stop()
    })()
    const idleHealthz = idleProbes.fresh.map((p) => p.ms)

    const producerOf = (i: number): { token: string; noisy: boolean } => {
      const slot = i % 32
      return slot < 16
        ? { token: noisy[slot % 2] ?? "", noisy: true }
        : { token: fair[slot - 16] ?? "", noisy: false }
    }
    const recipientOf = (i: number) => `ov-${runId}-${i % recipients}`
    const idOf = (i: number) => `ov-${runId}-${i}`
    const accepted = new Set<string>()
    const limited = new Set<string>()
    const unconfirmed = new Set<string>() // 503, other statuses, errors: may or may not be stored
    const counts = { sent: 0, skipped: 0, s202: 0, s429: 0, s503: 0, other: 0, errors: 0, fair429: 0 }
    const acceptedLatency: Array<number> = []
    const errorCodes = new Map<string, number>()
    let inFlight = 0
    const fire = (i: number) => {
      if (inFlight >= cap) {
        counts.skipped++
        return
      }
      inFlight++
      counts.sent++
      const producer = producerOf(i)
      const started = performance.now()
      void post(agent, gateway.url, "/v1/messages", producer.token, {
        to: recipientOf(i),
        id: idOf(i),
        payload,
      }).then(({ status, error }) => {
        inFlight--
        const id = idOf(i)
        if (status === 202) {
          counts.s202++
          accepted.add(id)
          acceptedLatency.push(performance.now() - started)
        } else if (status === 429) {
          counts.s429++
          limited.add(id)
          if (!producer.noisy) counts.fair429++
        } else {
          if (status === 503) counts.s503++
          else if (status === 0) {
            counts.errors++
            errorCodes.set(error ?? "", (errorCodes.get(error ?? "") ?? 0) + 1)
          } else counts.other++
          unconfirmed.add(id)
        }
      })
    }
    // Producers already hold their keep-alive connections (as a fleet of services would): open
    // them now, 256 more at a time so that no burst of connects overflows the listen backlog
    // (Node's default: 511), and just before the schedule, within the server's 5 s keep-alive.
    for (let open = 256; open < cap + 256; open += 256)
      await Promise.all(Array.from({ length: Math.min(open, cap) }, () => probe(gateway.url, agent)))
    const loopDelay = monitorEventLoopDelay({ resolution: 10 })
    loopDelay.enable()
    const cpu = harness.meter(gateway)
    const overflowsBefore = listenOverflows()
    await metricsOf(gateway.url) // a scrape resets the gateway's event-loop delay histogram
    const stopProbes = prober(gateway.url, 50, Math.ceil((plan.overloadS + 40) * 20))
    const start = performance.now()
    const scheduleDeadline = Date.now() + plan.overloadS * 1000 + 5_000
    let next = 0
    while (next < total && Date.now() < scheduleDeadline) {
      const due = Math.min(total, Math.floor(((performance.now() - start) * offeredRate) / 1000))
      for (; next < due; next++) fire(next)
      await sleep(2)
    }
    const scheduleMs = performance.now() - start
    const notStarted = total - next
    await pollUntil(() => inFlight === 0, 30_000, 10)
    const answeredMs = performance.now() - start
    const unanswered = inFlight
    const { fresh: healthz, kept: healthzKept } = await stopProbes()
    loopDelay.disable()
    const use = cpu()
    const overflows = listenOverflows() - overflowsBefore
    const healthzMs = healthz.map((p) => p.ms)
    const keptMs = healthzKept.map((p) => p.ms)
    const metricsText = await metricsOf(gateway.url)
    const offeredPerS = perSecond(total - notStarted, scheduleMs)
    const acceptedPerS = perSecond(counts.s202, answeredMs)
    ctx.log(
      `overload: offered ${offeredPerS} req/s for ${round(scheduleMs / 1000)} s (${counts.sent} sent, ${counts.skipped} skipped at ${cap} in flight): ` +
        `accepted ${acceptedPerS} msg/s (${counts.s202}), 429 ${counts.s429} (fair producers ${counts.fair429}), 503 ${counts.s503}, ` +
        `other ${counts.other}, errors ${counts.errors} ${JSON.stringify(Object.fromEntries(errorCodes))}, unanswered ${unanswered}; accepted latency p50 ${round(percentile(acceptedLatency, 50))} ms ` +
        `p99 ${round(percentile(acceptedLatency, 99))} ms; /healthz p50 ${round(percentile(healthzMs, 50))} ms p99 ${round(percentile(healthzMs, 99))} ms ` +
        `max ${round(Math.max(0, ...healthzMs))} ms (${healthz.length} probes, ${healthz.filter((p) => p.status !== 200).length} failed; ` +
        `kept-alive p50 ${round(percentile(keptMs, 50))} ms p99 ${round(percentile(keptMs, 99))} ms); ` +
        `TCP listen overflows ${overflows}; gateway event-loop delay p99 ${round(metric(metricsText, "holdover_nodejs_eventloop_lag_p99_seconds") * 1000)} ms; CPU ${JSON.stringify(use)}`,
    )

    // 3. Drain: every recipient connects; every 202 must arrive, no 429 may.
    const expected = new Map<string, number>()
    for (const id of accepted) {
      const r = recipientOf(Number(id.slice(id.lastIndexOf("-") + 1)))
      expected.set(r, (expected.get(r) ?? 0) + 1)
    }
    const seen = new Set<string>()
    const drainStart = performance.now()
    const subs = Array.from({ length: recipients }, (_, r) => `ov-${runId}-${r}`)
    const tokens = await harness.tokens(subs)
    subs.forEach((sub, r) =>
      clients.push(
        new BenchClient({
          url: gateway.wsUrl,
          token: tokens[r] ?? "",
          expect: expected.get(sub) ?? 0,
          onMessage: (message) => seen.add(message.id),
        }).start(),
      ),
    )
    const drained = await pollUntil(() => [...accepted].every((id) => seen.has(id)), plan.drainS * 1000, 100)
    // Give messages beyond the accepted ones (a 503 whose publish was stored after all) a moment.
    await sleep(500)
    const drainS = round((performance.now() - drainStart) / 1000)
    const lost = [...accepted].filter((id) => !seen.has(id))
    const deliveredAfter429 = [...limited].filter((id) => seen.has(id)).length
    const deliveredUnconfirmed = [...unconfirmed].filter((id) => seen.has(id)).length
    const duplicates = clients.reduce((n, c) => n + c.duplicates, 0)
    ctx.log(
      `drain: ${seen.size} delivered in ${drainS} s${drained ? "" : " (deadline)"}; lost accepted ${lost.length}, ` +
        `delivered after 429 ${deliveredAfter429}, delivered without a 202 ${deliveredUnconfirmed}, duplicates ${duplicates}`,
    )
    if (lost.length > 0)
      ctx.note(
        `overload: ${lost.length} accepted (202) messages were not delivered, e.g. ${lost.slice(0, 3).join(", ")}`,
      )
    if (deliveredAfter429 > 0) ctx.note(`overload: ${deliveredAfter429} messages answered 429 were delivered`)

    // What the node sustains, measured again on this node now that it is idle (the machine's load
    // may have changed): the baseline is the mean of the two.
    await Promise.all(clients.map((c) => c.close()))
    const again = await closedLoop(gateway, plan.sustainS, 50_000)
    const baseline = round((S + again.rate) / 2)
    ctx.log(
      `sustained again (on the overload node, ${again.refused} refused): ${again.rate} msg/s → baseline ${baseline} msg/s`,
    )

    const perS = (n: number) => perSecond(n, answeredMs)
    return {
      overload_sustained: {
        value: baseline,
        unit: "msg/s",
        baseline: rawRun.rate,
        ratio: ratio(baseline, rawRun.rate),
        before: S,
        after: again.rate,
        in_flight: 64,
        seconds: plan.sustainS,
      },
      overload_2x: {
        value: acceptedPerS,
        unit: "msg/s",
        baseline,
        ratio: ratio(acceptedPerS, baseline),
        offered_per_s: offeredPerS,
        rate_429_per_s: perS(counts.s429),
        rate_503_per_s: perS(counts.s503),
        other_per_s: perS(counts.other + counts.errors + unanswered),
        healthz_p50_ms: round(percentile(healthzMs, 50)),
        healthz_p99_ms: round(percentile(healthzMs, 99)),
        healthz_max_ms: round(Math.max(0, ...healthzMs)),
        lost_accepted: lost.length,
      },
      overload_2x_detail: {
        seconds: round(scheduleMs / 1000),
        per_producer_limit: perProducerLimit,
        client_connections: cap,
        offered: total - notStarted,
        sent: counts.sent,
        skipped_client_cap: counts.skipped,
        accepted: counts.s202,
        status_429: counts.s429,
        status_429_fair_producers: counts.fair429,
        status_503: counts.s503,
        status_other: counts.other,
        socket_errors: counts.errors,
        unanswered,
        accepted_p50_ms: round(percentile(acceptedLatency, 50)),
        accepted_p99_ms: round(percentile(acceptedLatency, 99)),
        healthz_probes: healthz.length,
        healthz_failed: healthz.filter((p) => p.status !== 200).length,
        healthz_over_1s: healthz.filter((p) => p.ms > 1_000).length,
        // deploy/k8s: the liveness probe on /healthz times out after 3 s.
        healthz_over_3s: healthz.filter((p) => p.ms > 3_000).length,
        healthz_keepalive_p50_ms: round(percentile(keptMs, 50)),
        healthz_keepalive_p99_ms: round(percentile(keptMs, 99)),
        healthz_idle_p50_ms: round(percentile(idleHealthz, 50)),
        healthz_idle_p99_ms: round(percentile(idleHealthz, 99)),
        bench_loop_delay_p99_ms: round(loopDelay.percentile(99) / 1e6),
        tcp_listen_overflows: overflows,
        gateway_loop_delay_p99_ms: round(
          metric(metricsText, "holdover_nodejs_eventloop_lag_p99_seconds") * 1000,
        ),
        gateway_loop_delay_max_ms: round(
          metric(metricsText, "holdover_nodejs_eventloop_lag_max_seconds") * 1000,
        ),
        gateway_shed: metric(metricsText, "holdover_shed_total"),
        gateway_rate_limited: metric(metricsText, 'holdover_rate_limited_total\\{reason="publish"\\}'),
        delivered: seen.size,
        delivered_after_429: deliveredAfter429,
        delivered_without_202: deliveredUnconfirmed,
        duplicates,
        drain_s: drainS,
        ...use,
      },
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()))
    agent.destroy()
    await harness.stopGateway(gateway).catch(() => undefined)
  }
}
