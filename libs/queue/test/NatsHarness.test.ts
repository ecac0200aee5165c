import { jetstreamManager, StorageType } from "@nats-io/jetstream"
import { describe, expect, it } from "vitest"
import { suiteNats } from "./support.ts"

describe("test harness", () => {
  const suite = suiteNats({ ignoreClusterUpdates: true })

  it("serves a real nats-server with JetStream enabled on loopback", async () => {
    expect(suite.server.url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/)
    const jsm = await jetstreamManager(suite.nc)
    expect(suite.nc.info?.jetstream).toBe(true)
    // JetStream with file storage: a file-backed stream is created and counted in the account.
    const name = `HARNESS_${Date.now().toString(36)}`
    await jsm.streams.add({ name, subjects: [`harness.${name}`], storage: StorageType.File })
    expect((await jsm.getAccountInfo()).streams).toBeGreaterThanOrEqual(1)
    expect((await jsm.streams.info(name)).config.storage).toBe(StorageType.File)
  })
})
