// Reads on replicated (R3) streams, against the containerised 3-node cluster (harness.ts).
// Sessions read a recipient's lane with gets by subject, and on a replicated stream a DIRECT.GET
// is answered by any replica — one that may not have applied the latest publish or delete yet.
// docs/semantics.md ("How a session works", "Replicated streams") says why Holdover reads replicated streams
// with the leader-answered STREAM.MSG.GET instead. The first test provokes the lag and measures
// both kinds of get (figures printed; the leader's consistency asserted, since the design rests
// on it); the second drives Holdover where the lag would hurt — ack, reconnect at once to another
// gateway, publish while connected — and requires that nothing acked comes back as new and that
// nothing new is skipped. The third loses a message's copy on its way to a connected session (a
// proxy in front of the session's NATS server drops it) and moves the stream's leader: the
// session must read the lane again and deliver it. Needs Docker (skipped locally without it, a failure under CI=true).
import {
  controlSubject,
  defaultSettings,
  NatsConnection,
  QueueConfig,
  RecipientQueue,
  streamName,
  type QueueSettings,
} from "@holdover/queue"
import { jetstream, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream"
import { connect } from "@nats-io/transport-node"
import { Effect, Fiber, Layer, ManagedRuntime, References } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { startDropProxy } from "./dropProxy.ts"
import { dockerStatus, startCluster, waitUntil, type Cluster } from "./harness.ts"

const docker = dockerStatus()
if (!docker.ok && process.env["CI"] === "true")
  throw new Error(`the cluster tests need Docker under CI=true: ${docker.reason}`)

let cluster: Cluster | undefined

const mean = (xs: ReadonlyArray<number>) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length)

describe.skipIf(!docker.ok)("reads on replicated streams", () => {
  beforeAll(async () => {
    cluster = await startCluster()
  }, 240_000)
  afterAll(async () => {
    await cluster?.stop()
  })

  it("direct gets lag behind publishes and deletes on R3; the leader's STREAM.MSG.GET does not", async () => {
    const nc = await connect({ servers: cluster!.nats.map((n) => n.url), timeout: 10_000 })
    try {
      const jsm = await jetstreamManager(nc, { timeout: 10_000 })
      const js = jetstream(nc, { timeout: 10_000 })
      const stream = "LAGPROBE"
      // Laid out like Holdover's lanes: work-queue retention, file storage, direct gets allowed.
      await jsm.streams.add({
        name: stream,
        subjects: ["lag.>"],
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
        num_replicas: 3,
        allow_direct: true,
      })
      // A new R3 stream takes a moment to elect its leader and propagate its subjects' interest.
      const deadline = Date.now() + 30_000
      for (;;) {
        const ready = await js.publish("lag.ready", new Uint8Array(0)).then(
          (ack) => jsm.streams.deleteMessage(stream, ack.seq, false),
          (error: unknown) => {
            if (Date.now() > deadline) throw error
            return false
          },
        )
        if (ready) break
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      const trials = 300
      const kinds = {
        direct: {
          get: (subject: string) => jsm.direct.getMessage(stream, { seq: 1, next_by_subj: subject }),
          missed: 0,
          stale: 0,
          micros: [] as Array<number>,
        },
        leader: {
          get: (subject: string) =>
            jsm.streams.getMessage(stream, { seq: 1, next_by_subj: subject } as unknown as {
              last_by_subj: string
            }),
          missed: 0,
          stale: 0,
          micros: [] as Array<number>,
        },
      }
      const timed = async <A>(micros: Array<number>, read: () => Promise<A>) => {
        const started = performance.now()
        const result = await read()
        micros.push((performance.now() - started) * 1000)
        return result
      }
      for (let i = 0; i < trials; i++) {
        for (const [name, kind] of Object.entries(kinds)) {
          const subject = `lag.${name}.${i}`
          const ack = await js.publish(subject, new TextEncoder().encode(`m${i}`))
          // Right after the publish was acknowledged: is it readable?
          if ((await timed(kind.micros, () => kind.get(subject))) === null) kind.missed++
          await jsm.streams.deleteMessage(stream, ack.seq, false)
          // Right after the delete was acknowledged: is it gone?
          if ((await timed(kind.micros, () => kind.get(subject))) !== null) kind.stale++
        }
      }
      for (const [name, kind] of Object.entries(kinds))
        console.log(
          `[cluster] R3 ${name === "direct" ? "DIRECT.GET (any replica)" : "STREAM.MSG.GET (leader)"}: ` +
            `${trials} publish→get: ${kind.missed} not found yet; ${trials} delete→get: ${kind.stale} still found; ` +
            `mean get ${Math.round(mean(kind.micros))} µs`,
        )
      expect({ missed: kinds.leader.missed, stale: kinds.leader.stale }).toEqual({ missed: 0, stale: 0 })
    } finally {
      await nc.close()
    }
  }, 300_000)

  it("a recipient that acks, reconnects at once to another gateway and gets live messages sees nothing acked again as new and misses nothing", async () => {
    const run = Date.now().toString(36)
    const recipient = `lag-${run}`
    const producer = await cluster!.token("producer", ["publish"])
    const receiver = await cluster!.token(recipient, ["receive"])
    const post = async (gateway: number, payload: number) => {
      const response = await fetch(`${cluster!.gateways[gateway % 3]!.url}/v1/messages`, {
        method: "POST",
        headers: { Authorization: `Bearer ${producer}`, "Content-Type": "application/json" },
        body: JSON.stringify({ to: recipient, priority: "normal", payload }),
      })
      expect(response.status).toBe(202)
    }
    interface Seen {
      readonly payload: number
      readonly redelivered: boolean
    }
    /** One session on `gateway`: waits for `want` payloads (each acked at once), then closes. */
    const session = (gateway: number, want: ReadonlySet<number>, live?: () => Promise<void>) =>
      new Promise<Array<Seen>>((resolve, reject) => {
        const ws = new WebSocket(cluster!.gateways[gateway % 3]!.wsUrl, ["holdover.v1"], {
          headers: { Authorization: `Bearer ${receiver}` },
        })
        const seen: Array<Seen> = []
        const missing = new Set(want)
        const timer = setTimeout(() => {
          ws.terminate()
          reject(new Error(`gateway ${gateway % 3}: still waiting for ${[...missing].join(", ")}`))
        }, 30_000)
        ws.on("error", reject)
        ws.on("message", (data) => {
          const frame = JSON.parse(data.toString()) as {
            type: string
            id?: string
            payload?: number
            redelivered?: boolean
          }
          if (frame.type === "welcome" && live) live().catch(reject)
          if (frame.type !== "message") return
          seen.push({ payload: frame.payload!, redelivered: frame.redelivered === true })
          ws.send(JSON.stringify({ type: "ack", ids: [frame.id] }))
          missing.delete(frame.payload!)
          if (missing.size === 0) {
            clearTimeout(timer)
            ws.close(1000)
            ws.once("close", () => resolve(seen))
          }
        })
      })

    const cycles = 100
    const all: Array<Seen> = []
    let payload = 0
    for (let cycle = 0; cycle < cycles; cycle++) {
      // One message waits for the session (a backlog read), one arrives while it is open (the
      // doorbell, read right after the publish was acknowledged by another gateway's node).
      const queued = ++payload
      await post(cycle, queued)
      const live = ++payload
      all.push(...(await session(cycle + 1, new Set([queued, live]), () => post(cycle + 2, live))))
    }
    const fresh = all.filter((s) => !s.redelivered).map((s) => s.payload)
    const again = all.filter((s) => s.redelivered).map((s) => s.payload)
    console.log(
      `[cluster] ${cycles} ack→reconnect cycles over three gateways: ${fresh.length} delivered new, ` +
        `${again.length} again flagged redelivered`,
    )
    // Each message exactly once as new, in the order it was sent; a repeat only ever flagged.
    expect(fresh).toEqual(Array.from({ length: payload }, (_, i) => i + 1))
    // …and a message flagged redelivered is one that was handed over before.
    const repeats = all.flatMap((s, i) =>
      s.redelivered && !all.slice(0, i).some((earlier) => earlier.payload === s.payload) ? [s.payload] : [],
    )
    expect(repeats).toEqual([])
  }, 300_000)
  it("a message whose copy was lost reaches the connected recipient once its stream elects a new leader", async () => {
    const run = Date.now().toString(36)
    const proxy = await startDropProxy(cluster!.nats[0]!.url)
    const settings: QueueSettings = {
      ...defaultSettings,
      namespace: `LOST${run.toUpperCase()}`,
      subjectPrefix: `lost${run}`,
      replicas: 3,
    }
    const runtime = ManagedRuntime.make(
      RecipientQueue.layer.pipe(
        Layer.provideMerge(QueueConfig.layer(settings)),
        Layer.provideMerge(NatsConnection.layer({ servers: [proxy.url], name: "lost-copy" })),
        Layer.provide(Layer.succeed(References.MinimumLogLevel, "Warn")),
      ),
    )
    const nc = await connect({ servers: cluster!.nats.map((n) => n.url), timeout: 10_000 })
    try {
      const queue = await runtime.runPromise(
        Effect.gen(function* () {
          return yield* RecipientQueue
        }),
      )
      const recipient = `lost-${run}`
      const seen: Array<{ payload: unknown; redelivered: boolean }> = []
      let open = false
      const session = runtime.runFork(
        Effect.scoped(
          Effect.gen(function* () {
            const opened = yield* queue.openSession(recipient)
            opened.listen({
              deliver: (delivery) => {
                seen.push({ payload: delivery.payload, redelivered: delivery.redelivered })
                opened.ackNow([delivery.id])
              },
              ended: () => undefined,
            })
            open = true
            return yield* Effect.never
          }),
        ),
      )
      await waitUntil("the session is open", () => open, 30_000, 20)
      const send = (payload: number) =>
        runtime.runPromise(queue.enqueue(recipient, payload, { priority: "normal" }))
      // Copies reach the session through the proxy.
      await send(1)
      await waitUntil("the first message arrives live", () => seen.length === 1, 15_000, 20)
      // The next copy is lost; the message stays stored and the session believes its lane empty.
      proxy.dropNext(controlSubject(settings, recipient))
      await send(2)
      await waitUntil("the proxy lost the copy", () => proxy.dropped() === 1, 15_000, 20)
      const stream = streamName(settings, "normal")
      const jsm = await jetstreamManager(nc, { timeout: 10_000 })
      const leader = (await jsm.streams.info(stream)).cluster?.leader
      await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${stream}`, "", { timeout: 10_000 })
      await waitUntil(
        "the stream elected another leader",
        async () => (await jsm.streams.info(stream)).cluster?.leader !== leader,
        30_000,
      )
      await waitUntil("the message whose copy was lost arrives", () => seen.length >= 2, 15_000, 20)
      expect(seen).toEqual([
        { payload: 1, redelivered: false },
        { payload: 2, redelivered: false },
      ])
      await runtime.runPromise(Fiber.interrupt(session))
    } finally {
      await runtime.dispose()
      await nc.close()
      await proxy.close()
    }
  }, 180_000)
})
