// Step 5 — idle connections: N recipients with nothing queued stay connected to one fresh
// gateway on a nats-server of its own. Measured once they are all welcomed and the node has settled: the gateway's RSS per
// connection (VmRSS from /proc/<pid>/status, after minus before), nats-server's RSS (/varz mem)
// and the JetStream consumers held (the goal is 0: an idle recipient holds only core-NATS
// subscriptions). Connections are opened 200 handshakes at a time, the way a fleet of clients
// trickles in, and the rate they were welcomed at is reported as well.
import { setTimeout as sleep } from "node:timers/promises"
import { BenchClient } from "./BenchClient.ts"
import type { Figures, StepContext } from "./Figures.ts"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { freePort } from "@holdover/local-nats"
import { openFilesLimit, rssKb, type Harness } from "./Harness.ts"
import { Inspector } from "./Inspector.ts"
import { median, pollUntil, round } from "./Stats.ts"

/** Open files each process needs besides its sockets (Node, nats, logs, pipes…). */
const fdHeadroom = 1024

/** How many connections the open-files limit leaves room for (each side holds one socket per connection). */
export const connectionsAllowed = (): number => {
  const limit = openFilesLimit()
  return limit === undefined ? Infinity : limit.soft - fdHeadroom
}

/** The gateway's V8 heap in use and its external memory (bytes), from its Prometheus metrics. */
const heapOf = async (base: string): Promise<{ heap: number; external: number }> => {
  const text = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text())
  const metric = (name: string) => Number(new RegExp(`^${name}\\s+(\\S+)`, "m").exec(text)?.[1] ?? 0)
  return {
    heap: metric("holdover_nodejs_heap_size_used_bytes"),
    external: metric("holdover_nodejs_external_memory_bytes"),
  }
}

const settledRss = async (pid: number | undefined): Promise<number> => {
  const samples: Array<number> = []
  for (let i = 0; i < 5; i++) {
    samples.push(rssKb(pid))
    await sleep(400)
  }
  return median(samples)
}

export const idle = async (harness: Harness, ctx: StepContext): Promise<Figures> => {
  const wanted = ctx.quick ? 1000 : 10_000
  const allowed = connectionsAllowed()
  if (wanted > allowed)
    throw new Error(
      `idle connections: ${wanted} connections need about ${wanted + fdHeadroom} open files per process, but ` +
        `the limit here is ${allowed + fdHeadroom} (ulimit -n). Raise it (ulimit -n 65536, or the hard limit in ` +
        `/etc/security/limits.conf or the container's --ulimit nofile) and run again.`,
    )
  // A nats-server of its own: its RSS then shows what idle sessions cost, not what earlier steps left.
  const nats = await harness.freshNats()
  // Retained heap is read after a full collection, through the inspector (heap in use without one
  // counts garbage too). HOLDOVER_BENCH_HEAP_SNAPSHOTS=DIR also writes a snapshot before and after
  // (compare them with test/bench/HeapDiff.ts, `per` = the connections).
  const snapshots = process.env["HOLDOVER_BENCH_HEAP_SNAPSHOTS"]
  const inspectPort = await freePort()
  const gateway = await harness.gateway({
    HOLDOVER_NATS_URL: nats.url,
    NODE_OPTIONS: `--inspect=127.0.0.1:${inspectPort}`,
  })
  const inspector = await Inspector.connect(inspectPort)
  const clients: Array<BenchClient> = []
  try {
    const subs = Array.from({ length: wanted }, (_, i) => `idle-${Date.now().toString(36)}-${i}`)
    const tokens = await harness.tokens(subs)
    // Warm the node up (JIT, first session) before the baseline reading.
    const warm = new BenchClient({
      url: gateway.wsUrl,
      token: await harness.token("idle-warmup"),
      expect: 0,
    }).start()
    await warm.welcomed
    await warm.close()
    const retainedBefore = await inspector.heapAfterGc()
    if (snapshots) {
      await inspector.snapshot(join(snapshots, "idle-before.heapsnapshot"))
      const scripts = Object.fromEntries(await inspector.scripts())
      writeFileSync(join(snapshots, "scripts.json"), JSON.stringify(scripts))
    }
    const rssBefore = await settledRss(gateway.pid)
    const heapBefore = await heapOf(gateway.url)
    const natsBefore = (await harness.varz(nats)).mem
    const jszBefore = await harness.jsz(nats)

    // Who is busy while the clients connect: a welcome rate bounded by the bench's own client
    // process (≈ 100 %) is not the gateway's.
    const connectCpu = harness.meter(gateway, nats)
    const started = performance.now()
    const deadline = Date.now() + (ctx.quick ? 60_000 : 240_000)
    let next = 0
    const opener = async () => {
      while (next < wanted && Date.now() < deadline) {
        const client = new BenchClient({ url: gateway.wsUrl, token: tokens[next++] ?? "", expect: 0 }).start()
        clients.push(client)
        await Promise.race([client.welcomed, sleep(30_000)])
      }
    }
    await Promise.all(Array.from({ length: 200 }, opener))
    const welcomed = clients.filter((c) => c.welcomedAt > 0).length
    const connectS = (performance.now() - started) / 1000
    const connectUse = connectCpu()
    ctx.log(
      `idle: ${welcomed}/${wanted} welcomed in ${round(connectS)} s (${round(welcomed / connectS)}/s); ` +
        `CPU while connecting ${JSON.stringify(connectUse)}`,
    )
    if (welcomed < wanted) ctx.note(`idle: only ${welcomed} of ${wanted} connections were welcomed in time`)

    // Settle: no consumer should exist; give the node a moment to reach a steady footprint.
    await pollUntil(async () => (await harness.jsz(nats)).consumers <= jszBefore.consumers, 10_000, 250)
    await sleep(2_000)
    // What holding them costs when nothing happens (heartbeats every 25 s, timers of the sessions).
    const idleCpu = harness.meter(gateway, nats)
    await sleep(5_000)
    const idleUse = idleCpu()
    const rssAfter = await settledRss(gateway.pid)
    const heapAfter = await heapOf(gateway.url)
    const retainedAfter = await inspector.heapAfterGc()
    // The same after that full collection: what a connection holds, without the free pages V8
    // keeps from the opening's garbage (an idle node collects, but keeps its pages: the figure
    // above is what it costs).
    const rssAfterGc = await settledRss(gateway.pid)
    if (snapshots) await inspector.snapshot(join(snapshots, "idle-after.heapsnapshot"))
    const retainedPerConn = (retainedAfter - retainedBefore) / 1024 / Math.max(1, welcomed)
    const varz = await harness.varz(nats)
    const jsz = await harness.jsz(nats)
    const still = clients.filter((c) => c.ws?.readyState === 1).length
    const perConn = welcomed > 0 ? (rssAfter - rssBefore) / welcomed : 0
    ctx.log(
      `idle ${welcomed}: gateway RSS ${round(rssBefore / 1024)} → ${round(rssAfter / 1024)} MB ` +
        `(${round(perConn)} KB per connection; heap retained after a collection ${round(retainedPerConn)} KB), nats-server RSS ${round(natsBefore / 2 ** 20)} → ` +
        `${round(varz.mem / 2 ** 20)} MB, consumers ${jsz.consumers}, still open ${still}; ` +
        `CPU while idle ${JSON.stringify(idleUse)}`,
    )
    return {
      // DESIGN.md's stable name: idle welcomes per second on one gateway, default admission.
      session_open_per_s: { value: round(welcomed / connectS), unit: "welcomes/s", goal: 2_000 },
      [`idle_${wanted}`]: {
        gateway_rss_kb_per_conn: round(perConn),
        nats_rss_mb: round(varz.mem / 2 ** 20),
        consumers: jsz.consumers - jszBefore.consumers,
      },
      [`idle_${wanted}_detail`]: {
        connections: welcomed,
        still_open: still,
        connect_per_s: round(welcomed / connectS),
        gateway_rss_before_mb: round(rssBefore / 1024),
        gateway_rss_after_mb: round(rssAfter / 1024),
        gateway_heap_retained_kb_per_conn: round(retainedPerConn),
        gateway_rss_kb_per_conn_after_full_gc: round((rssAfterGc - rssBefore) / Math.max(1, welcomed)),
        gateway_heap_used_kb_per_conn: round(
          (heapAfter.heap - heapBefore.heap) / 1024 / Math.max(1, welcomed),
        ),
        gateway_external_kb_per_conn: round(
          (heapAfter.external - heapBefore.external) / 1024 / Math.max(1, welcomed),
        ),
        nats_rss_before_mb: round(natsBefore / 2 ** 20),
        nats_rss_kb_per_conn: round((varz.mem - natsBefore) / 1024 / Math.max(1, welcomed)),
        js_api_calls_per_conn: round((jsz.api.total - jszBefore.api.total) / Math.max(1, welcomed)),
        connect_gateway_cpu_pct: connectUse["gateway_cpu_pct"] ?? 0,
        connect_nats_cpu_pct: connectUse["nats_cpu_pct"] ?? 0,
        connect_bench_cpu_pct: connectUse["bench_cpu_pct"] ?? 0,
        idle_gateway_cpu_pct: idleUse["gateway_cpu_pct"] ?? 0,
        idle_nats_cpu_pct: idleUse["nats_cpu_pct"] ?? 0,
      },
    }
  } finally {
    for (let i = 0; i < clients.length; i += 1000)
      await Promise.all(clients.slice(i, i + 1000).map((c) => c.close()))
    inspector.close()
    await harness.stopGateway(gateway)
    await nats.stop()
  }
}
