// Fault scenarios against a containerised 3-node JetStream cluster (R3, file storage) and three
// gateway processes. Each test starts its own cluster, runs the checker (checker.ts) while it
// injects one kind of fault, and requires what docs/guarantees.md promises: every message
// answered 202 queued reaches its recipient's handler exactly once (after the SDK's dedup), FIFO
// within its priority, nothing expired is delivered, and the queues end empty.
// Needs Docker: without it the file is skipped locally and fails under CI=true.
import { afterEach, describe, expect, it } from "vitest"
import { problems, startChecker, type ChurnOptions, type CheckerOptions, type CheckerRun } from "./checker.ts"
import { DEFAULT_NATS_IMAGE, dockerStatus, startCluster, waitUntil, type Cluster } from "./harness.ts"
import { featuresOf } from "@holdover/queue"
import WebSocket from "ws"

const docker = dockerStatus()
if (!docker.ok) {
  const banner = "!".repeat(96)
  console.error(`${banner}\n!!! cluster fault tests SKIPPED: ${docker.reason}\n${banner}`)
  if (process.env["CI"] === "true")
    throw new Error(`the cluster tests need Docker under CI=true: ${docker.reason}`)
}

const lightChurn: ChurnOptions = {
  upMs: [2_000, 6_000],
  offlineShare: 0.3,
  downMs: [500, 3_000],
  maxCycles: 30,
}

/**
 * Waits until the producers have had `more` messages accepted beyond what they had, or have
 * posted everything they had to post (a slow fault phase can outlast them).
 */
const progress = async (checker: CheckerRun, more: number, timeoutMs = 60_000) => {
  const target = checker.accepted() + more
  await waitUntil(
    `${target} messages were accepted`,
    () => checker.accepted() >= target || !checker.producing(),
    timeoutMs,
  ).catch((error: unknown) => {
    throw new Error(
      `${String(error)} (${checker.accepted()} so far)\nlast answers:\n${checker.recentAnswers()}\n${cluster?.gatewayLogs(40) ?? ""}`,
      { cause: error },
    )
  })
}

let cluster: Cluster | undefined
let current: CheckerRun | undefined
afterEach(async () => {
  await current?.abort()
  await cluster?.stop()
  current = undefined
  cluster = undefined
})

const check = async (options: Omit<CheckerOptions, "cluster">) => {
  current = await startChecker({ cluster: cluster!, ...options })
  return current
}

const expectClean = async (checker: CheckerRun) => {
  const report = await checker.finish()
  expect(problems(report), cluster?.gatewayLogs()).toEqual([])
  return report
}

describe.skipIf(!docker.ok)("a 3-node JetStream cluster and three gateways under faults", () => {
  it("loses nothing when a gateway is killed with -9 under load", async () => {
    cluster = await startCluster()
    const checker = await check({ name: "gateway kill -9", churn: lightChurn })
    await progress(checker, 400)
    const victim = cluster.gateways[0]!
    await victim.kill()
    await progress(checker, 600)
    await victim.start()
    await progress(checker, 300)
    await expectClean(checker)
  }, 240_000)

  it("loses nothing when the stream leader's NATS node is killed with -9 under load, and when it returns", async () => {
    cluster = await startCluster()
    const checker = await check({ name: "nats leader kill -9", churn: lightChurn })
    await progress(checker, 400)
    const leader = await cluster.streamLeader("critical")
    await leader.kill()
    await progress(checker, 600)
    const successor = await cluster.streamLeader("critical")
    expect(successor.name).not.toBe(leader.name)
    await leader.start()
    await cluster.waitSettled()
    await progress(checker, 300)
    await expectClean(checker)
  }, 240_000)

  // nats-server 2.9 loses acknowledged messages in this scenario (docs/guarantees.md, "Known
  // limits": WorkQueue replicas drift apart across a partition; runs on 2.9.10 lost 0 to 187 of a
  // few thousand, each stored with a PubAck and never handed to any session). The test runs on
  // every newer server and says loudly when it does not run.
  it("loses nothing when a network partition isolates one NATS node, and after it heals", async (context) => {
    cluster = await startCluster()
    const version = (await cluster.status()).nats.version
    const { partitionSafe } = featuresOf(version)
    // Operators are told at start when their servers are not safe for this.
    const warned = cluster.gateways[0]!.logs().some((line) => line.includes("across a network partition"))
    expect(warned, `gateway warning about nats-server ${version}`).toBe(!partitionSafe)
    // HOLDOVER_CLUSTER_FORCE_PARTITION=1 runs it anyway (to reproduce the 2.9 loss).
    if (!partitionSafe && process.env["HOLDOVER_CLUSTER_FORCE_PARTITION"] !== "1") {
      const banner = "!".repeat(96)
      const reason = `nats-server ${version} (image ${cluster.image}) loses messages across a partition (2.9 WorkQueue replica drift); run on the pinned server (scripts/install-nats-server.sh), HOLDOVER_NATS_IMAGE=${DEFAULT_NATS_IMAGE} or HOLDOVER_NATS_SERVER_BIN=<a 2.10+ nats-server>`
      console.error(`${banner}\n!!! partition scenario SKIPPED: ${reason}\n${banner}`)
      context.skip(reason)
    }
    const checker = await check({ name: "nats partition", churn: lightChurn })
    await progress(checker, 400)
    const isolated = await cluster.streamLeader("high")
    await isolated.partition()
    const cut = Date.now()
    await progress(checker, 600)
    console.log(`[cluster] partition: 600 more accepted ${Date.now() - cut} ms after the cut`)
    await isolated.heal()
    // Deliveries go on while the isolated node catches up (two of three servers are a quorum).
    // nats-server 2.9.10 sometimes switches JetStream off for good instead ("JetStream not
    // enabled", fixed in 2.9.16, nats-server#3985); deploy/k8s's liveness probe
    // (/healthz?js-enabled-only) then restarts it, and so does this test.
    const healing = Date.now()
    const healed = cluster
    await healed.waitSettled(150_000).catch(async (error: unknown) => {
      if (!String(error).includes("JetStream not enabled")) throw error
      console.log(
        `[cluster] partition: ${isolated.name} switched JetStream off after the heal; restarting it`,
      )
      await isolated.restart()
      await healed.waitSettled(120_000)
    })
    console.log(
      `[cluster] partition healed: settled ${Math.round((Date.now() - healing) / 1000)} s after the heal`,
    )
    await progress(checker, 300)
    await expectClean(checker)
  }, 480_000)

  it("keeps the queues of offline recipients through a full cluster restart", async () => {
    cluster = await startCluster()
    const checker = await check({
      name: "full cluster restart",
      online: false,
      laneIntervalMs: 40,
      maxPerLane: 30,
      shortTtlShare: 0,
    })
    await checker.producersDone()
    const accepted = checker.accepted()
    expect(await checker.queued()).toBe(accepted)
    await Promise.all(cluster.nats.map((node) => node.stop()))
    await Promise.all(cluster.nats.map((node) => node.start()))
    await cluster.waitSettled()
    expect(await checker.queued()).toBe(accepted)
    const report = await expectClean(checker)
    expect(report.accepted).toBe(accepted)
  }, 240_000)

  it("loses nothing through a rolling restart of every gateway with clients connected", async () => {
    cluster = await startCluster()
    const checker = await check({ name: "rolling gateway restart" })
    await progress(checker, 300)
    for (const gateway of cluster.gateways) {
      await gateway.restart()
      await cluster.waitSettled()
      await progress(checker, 300)
    }
    await expectClean(checker)
  }, 240_000)

  it("loses nothing while 100 clients reconnect in rapid cycles", async () => {
    cluster = await startCluster()
    const checker = await check({
      name: "100 clients rapid reconnects",
      recipients: 100,
      laneIntervalMs: 2_000,
      // 16 000 messages at most: the scenario is about reconnects, and on 2 cores an unbounded
      // producer load (200 msg/s for the whole run) slows the session openings it counts.
      maxPerLane: 40,
      churn: { upMs: [200, 800], offlineShare: 0.2, downMs: [100, 600], maxCycles: 5 },
    })
    // 400 sessions within 5 minutes: generous on purpose — on 2 shared cores, three NATS
    // containers, three gateways and the producers, session opens on the R3 cluster ran at
    // 158–257/s in clean-clone CI runs (the next test prints the rate); with consumers (before
    // sessions read the streams directly) it was 1–3/s.
    await waitUntil("400 sessions were opened", () => checker.sessions() >= 400, 300_000).catch(
      (error: unknown) => {
        throw new Error(
          `${String(error)}: ${checker.sessions()} sessions, ${checker.accepted()} accepted; ${checker.details().slice(0, 5).join("; ")}`,
        )
      },
    )
    const report = await expectClean(checker)
    expect(report.sessions).toBeGreaterThanOrEqual(400)
  }, 420_000)

  // Session opens on the R3 cluster, measured (printed, not asserted: speed belongs to the bench)
  // and checked: every welcome counts the backlog right, and every backlog is delivered in order.
  it("opens 1 000 sessions across the gateways with the right counts, and hands over every backlog", async () => {
    cluster = await startCluster()
    const run = Date.now().toString(36)
    const n = 1_000
    const withBacklog = 200
    const producer = await cluster.token("producer", ["publish"])
    const order = ["low", "critical", "normal", "high"] as const
    for (let i = 0; i < withBacklog; i++) {
      const response = await fetch(`${cluster.gateways[i % 3]!.url}/v1/messages/batch`, {
        method: "POST",
        headers: { Authorization: `Bearer ${producer}`, "Content-Type": "application/json" },
        body: JSON.stringify({
          messages: order.map((priority, k) => ({ to: `open-${run}-${i}`, priority, payload: { k } })),
        }),
      })
      expect(response.status).toBe(200)
    }
    const tokens = await Promise.all(
      Array.from({ length: n }, (_, i) => cluster!.token(`open-${run}-${i}`, ["receive"])),
    )
    const open = (i: number) =>
      new Promise<{ pending: Record<string, number>; got: Array<string> }>((resolve, reject) => {
        const ws = new WebSocket(cluster!.gateways[i % 3]!.wsUrl, ["holdover.v1"], {
          headers: { Authorization: `Bearer ${tokens[i]}` },
        })
        const timer = setTimeout(() => reject(new Error(`session ${i} did not finish in time`)), 60_000)
        let pending: Record<string, number> = {}
        const got: Array<string> = []
        const expected = i < withBacklog ? order.length : 0
        const done = () => {
          clearTimeout(timer)
          ws.close()
          resolve({ pending, got })
        }
        ws.on("error", reject)
        ws.on("message", (data) => {
          const frame = JSON.parse(data.toString()) as {
            type: string
            id?: string
            priority?: string
            pending?: Record<string, number>
          }
          if (frame.type === "welcome") {
            pending = frame.pending ?? {}
            if (expected === 0) done()
          }
          if (frame.type === "message") {
            got.push(frame.priority!)
            ws.send(JSON.stringify({ type: "ack", ids: [frame.id] }))
            if (got.length === expected) done()
          }
        })
      })
    const started = Date.now()
    const results: Array<{ pending: Record<string, number>; got: Array<string> }> = []
    let next = 0
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (next < n) {
          const i = next++
          results[i] = await open(i)
        }
      }),
    )
    const seconds = (Date.now() - started) / 1000
    console.log(
      `[cluster] session opens on the R3 cluster: ${n} (${withBacklog} with a backlog of 4) in ${seconds.toFixed(1)} s = ${Math.round(n / seconds)}/s`,
    )
    for (const [i, { pending, got }] of results.entries()) {
      const backlog = i < withBacklog ? 1 : 0
      expect(pending, `session ${i}`).toEqual({
        critical: backlog,
        high: backlog,
        normal: backlog,
        low: backlog,
      })
      expect(got, `session ${i}`).toEqual(i < withBacklog ? ["critical", "high", "normal", "low"] : [])
    }
  }, 240_000)
})
