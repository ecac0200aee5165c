import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { priorities } from "@holdover/protocol"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { against, holdover, secret, startStack, type Stack } from "./support.ts"

let stack: Stack
beforeAll(async () => {
  stack = await startStack({ HOLDOVER_LOW_MAX_AGE: "30m", HOLDOVER_LOW_OVERFLOW: "reject" })
})
afterAll(() => stack?.stop())
const cli = against(() => stack)

describe("holdover status", () => {
  it("shows readiness, the NATS connection and the four streams with their policies", async () => {
    const run = await cli(["status"])
    expect(run.code).toBe(0)
    expect(run.stdout).toContain(`gateway  ${stack.gateway.url}  ready`)
    expect(run.stdout).toMatch(/nats {5}connected {2}\(server \d+\.\d+\.\d+\)/)
    for (const priority of priorities) expect(run.stdout).toContain(`HOLDOVER_${priority.toUpperCase()}`)
    expect(run.stdout).toMatch(/critical\s+7d\s+10000\s+reject/)
    expect(run.stdout).toMatch(/normal\s+1h\s+1000\s+drop_oldest/)
    expect(run.stdout).toMatch(/low\s+30m\s+100\s+reject/)
  })

  it("prints the status document with --json", async () => {
    const run = await cli(["status", "--json"])
    expect(run.code).toBe(0)
    const body = JSON.parse(run.stdout) as {
      gateway: { ready: boolean }
      nats: { connected: boolean }
      streams: Array<{ priority: string; policy: { overflow: string } }>
    }
    expect(body.gateway.ready).toBe(true)
    expect(body.nats.connected).toBe(true)
    expect(body.streams.map((stream) => stream.priority)).toEqual([...priorities])
    expect(body.streams[3]?.policy.overflow).toBe("reject")
  })

  it("finds the gateway and secret `npm start` wrote to <data dir>/dev.env when the environment names none", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "holdover-cli-dev-"))
    try {
      writeFileSync(
        join(dataDir, "dev.env"),
        `HOLDOVER_URL=${stack.gateway.url}\nHOLDOVER_JWT_SECRET=${secret}\n`,
      )
      const run = await holdover(["status"], { env: { HOLDOVER_DATA_DIR: dataDir } })
      expect(run.stderr).toBe("")
      expect(run.code).toBe(0)
      expect(run.stdout).toContain(`gateway  ${stack.gateway.url}  ready`)
      const flagWins = await holdover(["--url", "http://127.0.0.1:1", "status"], {
        env: { HOLDOVER_DATA_DIR: dataDir },
      })
      expect(flagWins.code).toBe(3)
    } finally {
      rmSync(dataDir, { recursive: true, force: true })
    }
  })
})
