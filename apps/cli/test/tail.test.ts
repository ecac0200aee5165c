import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { against, startStack, unique, type Stack } from "./support.ts"

let stack: Stack
beforeAll(async () => {
  stack = await startStack()
})
afterAll(() => stack?.stop())
const cli = against(() => stack)

const enqueueMixed = async (recipient: string) => {
  const input = ["low", "normal", "high", "critical", "normal"]
    .map((priority) => JSON.stringify({ to: recipient, priority, payload: { priority } }))
    .join("\n")
  expect((await cli(["send"], { input })).code).toBe(0)
}

const depthOf = async (recipient: string) =>
  (JSON.parse((await cli(["queue", recipient, "--json"])).stdout) as { depth: Record<string, number> }).depth

describe("holdover tail", () => {
  it("prints deliveries in priority order and acks them, leaving the queue empty", async () => {
    const alice = unique("alice")
    await enqueueMixed(alice)
    const run = await cli(["tail", alice, "--count", "5", "--json"])
    expect(run.code).toBe(0)
    const frames = run.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { type: string; priority: string; payload: unknown })
    expect(frames.map((frame) => frame.priority)).toEqual(["critical", "high", "normal", "normal", "low"])
    expect(frames.every((frame) => frame.type === "message")).toBe(true)
    expect(run.stderr).toContain(`tailing ${alice}: pending critical 1, high 1, normal 2, low 1`)
    expect(await depthOf(alice)).toEqual({ critical: 0, high: 0, normal: 0, low: 0 })
  })

  it("prints one human line per delivery", async () => {
    const bob = unique("bob")
    expect((await cli(["send", "--to", bob, "--priority", "high", '{"text":"hi"}'])).code).toBe(0)
    const run = await cli(["tail", bob, "--count", "1"])
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/^\S+Z {2}high {6}m_\S+ {2}\{"text":"hi"\}\n$/)
  })

  it("peeks with --no-ack: the messages stay queued", async () => {
    const carol = unique("carol")
    await enqueueMixed(carol)
    const run = await cli(["tail", carol, "--no-ack", "--count", "2", "--json"])
    expect(run.code).toBe(0)
    expect(run.stdout.trim().split("\n")).toHaveLength(2)
    expect(await depthOf(carol)).toEqual({ critical: 1, high: 1, normal: 2, low: 1 })
  })

  it("refuses a token for another recipient with exit 2", async () => {
    const token = (await cli(["token", "--sub", "dave", "--scope", "receive"])).stdout.trim()
    const run = await cli(["tail", unique("erin"), "--token", token, "--count", "1"])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('the token is for sub "dave"')
  })

  it("exits 4 when the gateway closes the session for a token without receive", async () => {
    const frank = unique("frank")
    const token = (await cli(["token", "--sub", frank, "--scope", "publish"])).stdout.trim()
    const run = await cli(["tail", frank, "--token", token])
    expect(run.code).toBe(4)
    expect(run.stderr).toContain("4403")
  })
})
