import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { against, startStack, unique, type Stack } from "./support.ts"

let stack: Stack
beforeAll(async () => {
  stack = await startStack({ HOLDOVER_NORMAL_CAPACITY: "5000", HOLDOVER_LOW_CAPACITY: "2" })
})
afterAll(() => stack?.stop())
const cli = against(() => stack)

const depth = async (recipient: string) => {
  const run = await cli(["queue", recipient, "--json"])
  expect(run.code).toBe(0)
  return (JSON.parse(run.stdout) as { depth: Record<string, number> }).depth
}

describe("holdover send", () => {
  it("queues one payload argument with its priority and prints the message id", async () => {
    const alice = unique("alice")
    const run = await cli(["send", "--to", alice, "--priority", "high", "--ttl", "10m", '{"text":"hi"}'])
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/^queued m_\S+ \(high, expires \S+\)/)
    expect(await depth(alice)).toEqual({ critical: 0, high: 1, normal: 0, low: 0 })
  })

  it("queues 2500 JSON Lines from stdin in batches and prints the count", async () => {
    const bob = unique("bob")
    const input = Array.from({ length: 2500 }, (_, i) => JSON.stringify({ n: i })).join("\n") + "\n"
    const run = await cli(["send", "--to", bob], { input, timeoutMs: 60_000 })
    expect(run.stderr).toBe("")
    expect(run.code).toBe(0)
    expect(run.stdout.trim()).toBe("queued 2500 of 2500 messages")
    expect(await depth(bob)).toEqual({ critical: 0, high: 0, normal: 2500, low: 0 })
  })

  it("keeps to the producer's rate limit: a batch refused with 429 RATE_LIMITED is sent again after its Retry-After", async () => {
    // A gateway of its own whose producer limit (200/s after a burst of 1000) refuses the second batch.
    const limited = await startStack({
      HOLDOVER_PUBLISH_RATE: "200",
      HOLDOVER_PUBLISH_BURST: "1000",
      HOLDOVER_NORMAL_CAPACITY: "5000",
    })
    try {
      const erin = unique("erin")
      const input = Array.from({ length: 1500 }, (_, i) => JSON.stringify({ n: i })).join("\n") + "\n"
      const started = Date.now()
      const run = await against(() => limited)(["send", "--to", erin], { input, timeoutMs: 60_000 })
      expect(run.stderr).toBe("")
      expect(run.code).toBe(0)
      expect(run.stdout.trim()).toBe("queued 1500 of 1500 messages")
      // 500 more after the burst take 2.5 s of refill at 200/s: the command waited, it did not fail.
      expect(Date.now() - started).toBeGreaterThanOrEqual(2_000)
      const queue = await against(() => limited)(["queue", erin, "--json"])
      expect((JSON.parse(queue.stdout) as { depth: Record<string, number> }).depth.normal).toBe(1500)
    } finally {
      await limited.stop()
    }
  })

  it("reads whole message requests from --file when --to is not given", async () => {
    const [carol, dave] = [unique("carol"), unique("dave")]
    const file = join(mkdtempSync(join(tmpdir(), "holdover-cli-")), "messages.jsonl")
    writeFileSync(
      file,
      [
        { to: carol, priority: "critical", payload: { a: 1 } },
        { to: dave, payload: "plain" },
        { to: carol, payload: [1, 2] },
      ]
        .map((message) => JSON.stringify(message))
        .join("\n"),
    )
    const run = await cli(["send", "--file", file, "--json"])
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout)).toEqual({ total: 3, queued: 3, dropped: 0, failed: 0, errors: [] })
    expect(await depth(carol)).toEqual({ critical: 1, high: 0, normal: 1, low: 0 })
    expect(await depth(dave)).toEqual({ critical: 0, high: 0, normal: 1, low: 0 })
  })

  it("repeating --id queues nothing new", async () => {
    const erin = unique("erin")
    for (let i = 0; i < 2; i++)
      expect((await cli(["send", "--to", erin, "--id", "order-42", '{"n":1}'])).stdout).toContain(
        "queued order-42",
      )
    expect(await depth(erin)).toEqual({ critical: 0, high: 0, normal: 1, low: 0 })
  })

  it("reports refused lines of a batch with their line numbers and exits 5", async () => {
    const frank = unique("frank")
    const input = ['{"n":1}', '{"n":2}', "", '{"n":3}'].join("\n")
    const run = await cli(["send", "--to", frank, "--ttl", "30d"], { input })
    expect(run.code).toBe(5)
    expect(run.stdout).toContain("queued 0 of 3 messages (0 dropped, 3 refused)")
    expect(run.stderr).toContain("line 4: INVALID_MESSAGE:")
  })

  it("exits 5 with the contract code when a message is too large or dropped", async () => {
    const gina = unique("gina")
    const big = await cli(["send", "--to", gina, JSON.stringify({ blob: "x".repeat(70_000) })])
    expect(big.code).toBe(5)
    expect(big.stderr).toContain("MESSAGE_TOO_LARGE:")
    for (let i = 0; i < 2; i++)
      expect((await cli(["send", "--to", gina, "--priority", "low", "1"])).code).toBe(0)
    const dropped = await cli(["send", "--to", gina, "--priority", "low", "3"])
    expect(dropped.code).toBe(5)
    expect(dropped.stderr).toContain("QUEUE_FULL:")
  })

  it("exits 2 on a line that is not JSON, before sending anything", async () => {
    const hal = unique("hal")
    const run = await cli(["send", "--to", hal], { input: '{"n":1}\nnot json\n' })
    expect(run.code).toBe(2)
    expect(run.stderr).toContain("stdin line 2 is not valid JSON")
    expect(await depth(hal)).toEqual({ critical: 0, high: 0, normal: 0, low: 0 })
  })
})
