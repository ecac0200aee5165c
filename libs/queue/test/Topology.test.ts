import { describe, expect, it, layer } from "@effect/vitest"
import {
  atLeast,
  defaultSettings,
  featuresOf,
  NatsConnection,
  QueueConfig,
  reconcile,
  republishOf,
  streamConfig,
  streamName,
} from "@holdover/queue"
import { priorities } from "@holdover/protocol"
import { RetentionPolicy, StorageType } from "@nats-io/jetstream"
import { Effect } from "effect"
import { buildQueue, take, TestNats, unique, waitUntil } from "./support.ts"

layer(TestNats.layer, { excludeTestServices: true })("topology", (it) => {
  it.effect("creates one WorkQueue file stream per priority with the policy's limits", () =>
    Effect.gen(function* () {
      const namespace = unique("TOPO").toUpperCase()
      const { conn } = yield* buildQueue({ namespace })
      const info = yield* Effect.promise(() => conn.jsm.streams.info(`${namespace}_LOW`))
      expect(info.config).toMatchObject({
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
        max_msgs_per_subject: 100,
        discard: "new",
        discard_new_per_subject: true,
        max_age: 10 * 60 * 1e9,
      })
      expect(info.config.duplicate_window).toBeGreaterThanOrEqual(120 * 1e9)
      const high = yield* Effect.promise(() => conn.jsm.streams.info(`${namespace}_HIGH`))
      expect(high.config).toMatchObject({ discard: "old", max_msgs_per_subject: 1_000 })
    }),
  )

  it.effect("applies a changed capacity and max age in place, keeping the queued messages", () =>
    Effect.gen(function* () {
      const namespace = unique("TOPO").toUpperCase()
      const subjectPrefix = unique("t")
      const first = yield* buildQueue({ namespace, subjectPrefix })
      for (let i = 0; i < 5; i++) yield* first.queue.enqueue("keep", i)
      const policies = {
        ...defaultSettings.policies,
        normal: { maxAgeMs: 7_200_000, capacity: 50, overflow: "reject" as const },
      }
      const second = yield* buildQueue({ namespace, subjectPrefix, policies })
      expect((yield* second.queue.depth("keep")).normal).toBe(5)
      const info = yield* Effect.promise(() => second.conn.jsm.streams.info(`${namespace}_NORMAL`))
      expect(info.config).toMatchObject({ max_msgs_per_subject: 50, max_age: 7_200 * 1e9, discard: "new" })
    }),
  )

  it.effect("leaves streams that already match alone: a second node starting updates nothing", () =>
    Effect.gen(function* () {
      const namespace = unique("TOPO").toUpperCase()
      const subjectPrefix = unique("t")
      const first = yield* buildQueue({ namespace, subjectPrefix })
      const updates: Array<string> = []
      const advisories = first.conn.nc.subscribe("$JS.EVENT.ADVISORY.STREAM.UPDATED.>", {
        callback: (_error, msg) => {
          if (msg.subject.includes(namespace)) updates.push(msg.subject)
        },
      })
      yield* Effect.promise(() => first.conn.nc.flush())
      yield* buildQueue({ namespace, subjectPrefix })
      // "Nothing" is known once a marker arrives: an update of our own, advised after any of the second node's.
      const marker = `${namespace}_LOW`
      const markerAdvisory = `$JS.EVENT.ADVISORY.STREAM.UPDATED.${marker}`
      yield* Effect.promise(() => first.conn.jsm.streams.update(marker, { description: "marker" }))
      yield* Effect.promise(() =>
        waitUntil("the marker's advisory arrives", () => updates.includes(markerAdvisory)),
      )
      advisories.unsubscribe()
      expect(updates).toEqual([markerAdvisory])
    }),
  )

  it.effect(
    "gives streams of an older Holdover live copies where the server can (2.10+); sessions deliver either way",
    () =>
      Effect.gen(function* () {
        const namespace = unique("TOPO").toUpperCase()
        const subjectPrefix = unique("t")
        const { conn } = yield* buildQueue({ namespace: unique("OTHER").toUpperCase() })
        const features = featuresOf(conn.serverVersion())
        const settings = { ...defaultSettings, namespace, subjectPrefix }
        // As an older Holdover created them: no republish.
        for (const priority of priorities) {
          const { republish: _, ...older } = streamConfig(settings, priority, features)
          yield* Effect.promise(() => conn.jsm.streams.add(older))
        }
        const { queue } = yield* buildQueue({ namespace, subjectPrefix })
        const republish = yield* Effect.forEach(priorities, (priority) =>
          Effect.promise(() =>
            conn.jsm.streams.info(streamName(settings, priority)).then((i) => i.config.republish),
          ),
        )
        expect(republish).toEqual(
          priorities.map((priority) =>
            features.republishUpdate ? republishOf(settings, priority) : undefined,
          ),
        )
        // Live messages reach an open session: from copies, or read after a doorbell.
        const recipient = unique("olga")
        yield* Effect.scoped(
          Effect.gen(function* () {
            const session = yield* queue.openSession(recipient)
            for (const priority of [...priorities].reverse())
              yield* queue.enqueue(recipient, priority, { priority })
            const got = yield* take(session, priorities.length)
            expect(new Set(got.map((delivery) => delivery.payload))).toEqual(new Set(priorities))
          }),
        )
      }),
  )

  it.effect("refuses to start on a stream it cannot change in place, naming it", () =>
    Effect.gen(function* () {
      const namespace = unique("TOPO").toUpperCase()
      const { conn } = yield* buildQueue({ namespace: unique("OTHER").toUpperCase() })
      yield* Effect.promise(() =>
        conn.jsm.streams.add({
          name: `${namespace}_CRITICAL`,
          subjects: [`${namespace.toLowerCase()}.critical.*`],
          retention: RetentionPolicy.Limits,
        }),
      )
      const error = yield* Effect.flip(
        reconcile().pipe(
          Effect.provide(QueueConfig.layer({ namespace, subjectPrefix: namespace.toLowerCase() })),
          Effect.provideService(NatsConnection, conn),
        ),
      )
      expect(error.reason).toEqual({ _tag: "TopologyConflict", stream: `${namespace}_CRITICAL` })
      expect(error.message).toContain("cannot be changed in place")
    }),
  )
})

describe("server features", () => {
  it("enables S2 stream compression only on nats-server 2.10 and newer", () => {
    expect([
      atLeast("2.9.10", 2, 10),
      atLeast("2.10.0", 2, 10),
      atLeast("2.11.4", 2, 10),
      atLeast("3.0.0", 2, 10),
    ]).toEqual([false, true, true, true])
    expect(streamConfig(defaultSettings, "high", featuresOf("2.9.10"))).not.toHaveProperty("compression")
    expect(streamConfig(defaultSettings, "high", featuresOf("2.10.7"))).toMatchObject({ compression: "s2" })
  })

  it("counts only nats-server 2.10 and newer as safe for replicated streams across partitions", () => {
    expect(["2.9.10", "2.9.25", "2.10.0", "2.12.15"].map((v) => featuresOf(v).partitionSafe)).toEqual([
      false,
      false,
      true,
      true,
    ])
  })
})
