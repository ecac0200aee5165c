// Step — soak: does a gateway run for months? One fresh gateway (and nats-server) carries, for
// ten minutes, a steady stream of live messages to connected recipients while 50 000 short
// sessions open and close beside it — a quarter of them with a message waiting, one in twenty
// taking over a session of the same recipient that is still open. Every 30 s the gateway's
// memory is read (twenty times a run) after a full garbage collection (through the V8 inspector, test/bench/Inspector.ts),
// so growth means objects kept, not garbage not collected yet: heap in use and RSS. The first
// samples are warm-up (JIT, pools, caches); the figures are the largest drift from the first
// sample after warm-up, and the slope per 10 000 sessions of a line fitted through the samples.
// Goal: heap and RSS flat within 10 %. Every live message must arrive (counted).
// HOLDOVER_BENCH_HEAP_SNAPSHOTS=DIR writes heap snapshots after warm-up and at the end (open them
// in Chrome DevTools' Memory tab and compare) — how a leak is found.
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { freePort } from "@holdover/local-nats"
import { BenchClient } from "./BenchClient.ts"
import type { Figures, StepContext } from "./Figures.ts"
import { rssKb, type Harness } from "./Harness.ts"
import { Inspector } from "./Inspector.ts"
import { payloadBytes } from "./RawJetStream.ts"
import { filler, round } from "./Stats.ts"

interface Plan {
  readonly sessions: number
  readonly minutes: number
  readonly warmupSamples: number
  readonly receivers: number
  readonly liveRate: number
}

const full: Plan = { sessions: 50_000, minutes: 10, warmupSamples: 3, receivers: 100, liveRate: 200 }
const quick: Plan = { sessions: 5_000, minutes: 1.5, warmupSamples: 3, receivers: 20, liveRate: 100 }

/** How often memory is read (a full collection each time). */
const sampleEvery = (plan: Plan): number => (plan.minutes * 60_000) / 20
/** Recipients the short sessions cycle through (each opens about sessions / pool times). */
const churnPool = 2_000

interface Sample {
  readonly s: number
  readonly sessions: number
  readonly heapMb: number
  readonly rssMb: number
  /** RSS as the process ran, just before the forced collection. */
  readonly rssLiveMb: number
}

/** Least-squares slope of y over x. */
const slope = (points: ReadonlyArray<readonly [number, number]>): number => {
  const n = points.length
  if (n < 2) return 0
  const mx = points.reduce((a, [x]) => a + x, 0) / n
  const my = points.reduce((a, [, y]) => a + y, 0) / n
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0)
  return sxx === 0 ? 0 : points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0) / sxx
}

/** Largest deviation from `base`, in % of it. */
const drift = (values: ReadonlyArray<number>, base: number): number =>
  base > 0 ? (Math.max(...values.map((v) => Math.abs(v - base))) / base) * 100 : 0

export const soak = async (harness: Harness, ctx: StepContext): Promise<Figures> => {
  const plan = ctx.quick ? quick : full
  const snapshots = process.env["HOLDOVER_BENCH_HEAP_SNAPSHOTS"]
  const nats = await harness.freshNats()
  const inspectPort = await freePort()
  const gateway = await harness.gateway({
    HOLDOVER_NATS_URL: nats.url,
    NODE_OPTIONS: `--inspect=127.0.0.1:${inspectPort}`,
  })
  const inspector = await Inspector.connect(inspectPort)
  const receivers: Array<BenchClient> = []
  try {
    const tag = `soak-${Date.now().toString(36)}`
    const payload = filler(payloadBytes)
    const producer = await harness.token("soak-producer", ["publish"])
    const churnTokens = await harness.tokens(Array.from({ length: churnPool }, (_, i) => `${tag}-c${i}`))
    const liveTokens = await harness.tokens(Array.from({ length: plan.receivers }, (_, i) => `${tag}-r${i}`))
    for (const token of liveTokens)
      receivers.push(new BenchClient({ url: gateway.wsUrl, token, expect: 0, maxAttempts: 100 }).start())
    await Promise.all(receivers.map((r) => r.welcomed))

    const durationMs = plan.minutes * 60_000
    const started = Date.now()
    const stopAt = started + durationMs
    let sessions = 0
    let churnFailures = 0
    /** Short sessions that did not get their welcome (and message) in time, by how they ended. */
    const churnEnds = new Map<string, number>()
    const churnFailed = (how: string) => {
      churnFailures++
      churnEnds.set(how, (churnEnds.get(how) ?? 0) + 1)
    }
    let queuedForChurn = 0
    let churnReceived = 0
    let takeovers = 0

    // Live traffic: liveRate messages/s, round robin over the connected receivers.
    let sent = 0
    let sendFailures = 0
    /** Answers other than 202 by status (a loaded node sheds with 503; "error": no answer). */
    const refusals = new Map<string, number>()
    const refused = (status: string, live: boolean) => {
      if (live) sendFailures++
      refusals.set(status, (refusals.get(status) ?? 0) + 1)
    }
    const live = (async () => {
      while (Date.now() < stopAt) {
        const due = Math.floor(((Date.now() - started) / 1000) * plan.liveRate)
        const batch: Array<Promise<void>> = []
        for (; sent < due; sent++) {
          const to = `${tag}-r${sent % plan.receivers}`
          batch.push(
            harness
              .http(gateway.url, "POST", "/v1/messages", producer, { to, priority: "normal", payload })
              .then(
                (reply) => {
                  if (reply.status !== 202) refused(String(reply.status), true)
                },
                () => refused("error", true),
              ),
          )
        }
        await Promise.all(batch)
        await sleep(50)
      }
    })()

    // Short sessions, paced so that `sessions` of them spread over the whole run.
    const oneSession = async (i: number) => {
      const recipient = i % churnPool
      const token = churnTokens[recipient] ?? ""
      let withMessage = false
      if (i % 4 === 0) {
        const reply = await harness.http(gateway.url, "POST", "/v1/messages", producer, {
          to: `${tag}-c${recipient}`,
          priority: "high",
          payload,
        })
        // Refused (a loaded node sheds with 503): counted with the live refusals, not expected.
        if (reply.status === 202) {
          withMessage = true
          queuedForChurn++
        } else refused(String(reply.status), false)
      }
      const client = new BenchClient({
        url: gateway.wsUrl,
        token,
        expect: withMessage ? 1 : 0,
        reconnect: false,
      })
      // Unref: 50 000 of these must not keep the process alive once the step is over.
      const deadline = sleep(20_000, undefined, { ref: false }).then(() => "timeout" as const)
      client.start()
      if ((await Promise.race([client.done.then(() => "ok" as const), deadline])) !== "ok")
        churnFailed(
          [...client.closes.keys()].join("+") ||
            (client.welcomedAt > 0 ? "no message in 20 s" : "no welcome in 20 s"),
        )
      churnReceived += client.received
      if (i % 20 === 0) {
        // A second device of the same recipient takes the session over while it is open.
        const second = new BenchClient({ url: gateway.wsUrl, token, expect: 0, reconnect: false }).start()
        if ((await Promise.race([second.welcomed.then(() => "ok" as const), deadline])) === "ok") takeovers++
        await second.close()
      }
      await client.close()
    }
    const churn = (async () => {
      const workers = 16
      let next = 0
      const worker = async () => {
        while (next < plan.sessions && Date.now() < stopAt + 60_000) {
          const i = next++
          // Pace: session i starts no earlier than its share of the run.
          const due = started + (i / plan.sessions) * durationMs
          if (due > Date.now()) await sleep(due - Date.now())
          await oneSession(i).catch((error: unknown) => churnFailed(String(error).slice(0, 80)))
          sessions++
        }
      }
      await Promise.all(Array.from({ length: workers }, worker))
    })()

    const samples: Array<Sample> = []
    const sample = async () => {
      const rssLive = rssKb(gateway.pid)
      const heap = await inspector.heapAfterGc()
      const s: Sample = {
        s: round((Date.now() - started) / 1000),
        sessions,
        heapMb: round(heap / 2 ** 20),
        rssMb: round(rssKb(gateway.pid) / 1024),
        rssLiveMb: round(rssLive / 1024),
      }
      samples.push(s)
      ctx.log(
        `soak ${s.s} s: ${sessions} sessions, ${sent} live sent, heap ${s.heapMb} MB, RSS ${s.rssMb} MB (after GC; ${s.rssLiveMb} MB before)`,
      )
      if (snapshots && samples.length === plan.warmupSamples + 1)
        await inspector.snapshot(join(snapshots, `soak-${samples.length}.heapsnapshot`))
    }
    while (Date.now() < stopAt) {
      await sleep(Math.min(sampleEvery(plan), Math.max(0, stopAt - Date.now())))
      await sample()
    }
    await Promise.all([live, churn])
    // Everything sent live must arrive.
    const deadline = Date.now() + 60_000
    const liveReceived = () => receivers.reduce((a, r) => a + r.received, 0)
    while (liveReceived() < sent - sendFailures && Date.now() < deadline) await sleep(100)
    await sample()
    if (snapshots) {
      await inspector.snapshot(join(snapshots, `soak-end.heapsnapshot`))
      ctx.note(`soak: heap snapshots in ${snapshots}; RSS figures include the memory the snapshots took`)
    }

    const after = samples.slice(plan.warmupSamples)
    const base = after[0] ?? samples[0]
    const heapDrift = drift(
      after.map((s) => s.heapMb),
      base?.heapMb ?? 0,
    )
    const rssDrift = drift(
      after.map((s) => s.rssMb),
      base?.rssMb ?? 0,
    )
    const per10k = (pick: (s: Sample) => number) =>
      round(slope(after.map((s) => [s.sessions / 10_000, pick(s)] as const)))
    const violations = receivers.reduce((a, r) => a + r.orderViolations, 0)
    if (liveReceived() < sent - sendFailures)
      ctx.note(`soak: ${sent - sendFailures - liveReceived()} live messages did not arrive`)
    if (churnFailures > 0)
      ctx.note(
        `soak: ${churnFailures} short sessions were not served in 20 s (${JSON.stringify([...churnEnds])})`,
      )
    if (sendFailures > 0)
      ctx.note(
        `soak: ${sendFailures} live messages were refused, posts refused by status ${JSON.stringify([...refusals])}; not retried`,
      )
    return {
      soak: {
        sessions,
        minutes: plan.minutes,
        heap_mb_after_warmup: base?.heapMb ?? 0,
        heap_mb_end: samples.at(-1)?.heapMb ?? 0,
        heap_drift_pct: round(heapDrift),
        rss_mb_after_warmup: base?.rssMb ?? 0,
        rss_mb_end: samples.at(-1)?.rssMb ?? 0,
        rss_drift_pct: round(rssDrift),
        goal_drift_pct: 10,
      },
      soak_detail: {
        heap_mb_per_10k_sessions: per10k((s) => s.heapMb),
        rss_mb_per_10k_sessions: per10k((s) => s.rssMb),
        rss_live_mb_max: Math.max(...samples.map((s) => s.rssLiveMb)),
        live_sent: sent,
        live_refused: sendFailures,
        posts_refused_by_status: [...refusals].map(([status, n]) => `${status}:${n}`).join(" "),
        live_received: liveReceived(),
        live_order_violations: violations,
        churn_with_message: queuedForChurn,
        churn_received: churnReceived,
        churn_failures: churnFailures,
        churn_failures_by_end: [...churnEnds].map(([how, n]) => `${how}:${n}`).join(" "),
        takeovers,
        samples: samples.map((s) => `${s.s}s:${s.sessions}:${s.heapMb}/${s.rssMb}/${s.rssLiveMb}`).join(" "),
      },
    }
  } finally {
    inspector.close()
    await Promise.all(receivers.map((r) => r.close()))
    await harness.stopGateway(gateway)
    await nats.stop()
  }
}
