import { startNats, type RunningNats } from "@holdover/local-nats"
import { jetstreamManager, StorageType } from "@nats-io/jetstream"
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"

describe("test harness", () => {
  let server: RunningNats
  let nc: NatsConnection

  beforeAll(async () => {
    server = await startNats(inject("natsLauncher"))
    nc = await connect({ servers: server.url, ignoreClusterUpdates: true })
  })
  afterAll(async () => {
    await nc?.close()
    await server?.stop()
  })

  it("serves a real nats-server with JetStream enabled on loopback", async () => {
    expect(server.url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/)
    const jsm = await jetstreamManager(nc)
    expect(nc.info?.jetstream).toBe(true)
    // JetStream with file storage: a file-backed stream is created and counted in the account.
    const name = `HARNESS_${Date.now().toString(36)}`
    await jsm.streams.add({ name, subjects: [`harness.${name}`], storage: StorageType.File })
    expect((await jsm.getAccountInfo()).streams).toBeGreaterThanOrEqual(1)
    expect((await jsm.streams.info(name)).config.storage).toBe(StorageType.File)
  })
})
