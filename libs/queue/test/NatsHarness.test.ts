import { startNats, type RunningNats } from "@holdover/local-nats"
import { jetstreamManager } from "@nats-io/jetstream"
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
    const info = await jsm.getAccountInfo()
    expect(info.limits).toBeDefined()
    expect(nc.info?.jetstream).toBe(true)
  })
})
