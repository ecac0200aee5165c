import type { RunningNats } from "@holdover/local-nats"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { gateway, nats } from "./support.ts"

describe("start-up configuration", () => {
  let server: RunningNats
  beforeAll(async () => {
    server = await nats()
  })
  afterAll(async () => {
    await server?.stop()
  })

  it.each([
    ["HOLDOVER_HIGH_MAX_AGE", "soon", "a duration"],
    ["HOLDOVER_LOW_CAPACITY", "-3", "a positive integer"],
    ["HOLDOVER_NORMAL_OVERFLOW", "drop_random", "drop_oldest, drop_newest or reject"],
    ["HOLDOVER_STREAM_REPLICAS", "2", "1 or 3"],
    ["HOLDOVER_PORT", "http", "a port number"],
    ["HOLDOVER_MAX_FRAME_BYTES", "12", "a size in bytes"],
    ["HOLDOVER_JWT_SECRET", "short", "at least 16 characters"],
    ["HOLDOVER_HOST", "my host", "an IP address or host name"],
  ])(
    "stops start-up on a bad %s, naming the variable and what it expected",
    async (variable, value, expected) => {
      const error = await gateway(server, { [variable]: value }).then(
        (node) => node.stop().then(() => new Error("started")),
        (error: Error) => error,
      )
      expect(error.message).toContain("exited (1)")
      expect(error.message).toContain(`${variable}: expected ${expected}`)
    },
  )

  it("stops start-up when JetStream refuses the streams (replicas on a server that is not clustered)", async () => {
    const fresh = await nats()
    try {
      const error = await gateway(fresh, { HOLDOVER_STREAM_REPLICAS: "3" }).then(
        (node) => node.stop().then(() => new Error("started")),
        (error: Error) => error,
      )
      expect(error.message).toContain("exited (1)")
      expect(error.message).toMatch(/JetStream refused to create stream HOLDOVER_\w+: .*replicas/)
    } finally {
      await fresh.stop()
    }
  })

  it("listens on HOLDOVER_HOST", async () => {
    // The test launcher binds loopback by default (HOLDOVER_HOST=127.0.0.1): ask for another one.
    const node = await gateway(server, { HOLDOVER_HOST: "127.0.0.2" })
    try {
      expect((await fetch(`http://127.0.0.2:${node.port}/healthz`)).status).toBe(200)
      expect(node.logs().join("\n")).toContain(`listening on http://127.0.0.2:${node.port}`)
      await expect(fetch(`${node.url}/healthz`)).rejects.toThrow() // not on 127.0.0.1
    } finally {
      await node.stop()
    }
  })

  it("refuses to start without any way to verify tokens", async () => {
    const error = await gateway(server, { HOLDOVER_JWT_SECRET: "" }).then(
      () => new Error("started"),
      (error: Error) => error,
    )
    expect(error.message).toContain("HOLDOVER_JWT_SECRET")
    expect(error.message).toContain("HOLDOVER_JWKS")
  })

  it("exits 1 when its port is taken, saying so and which variable to set", async () => {
    const holder = await gateway(server)
    try {
      const error = await gateway(server, { HOLDOVER_PORT: String(holder.port) }).then(
        (node) => node.stop().then(() => new Error("started")),
        (error: Error) => error,
      )
      expect(error.message).toContain("exited (1)")
      expect(error.message).toContain(
        `holdover-gateway: port ${holder.port} is in use (on 127.0.0.1); set HOLDOVER_PORT`,
      )
    } finally {
      await holder.stop()
    }
  })
})
