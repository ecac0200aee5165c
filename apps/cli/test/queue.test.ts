import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { against, startStack, unique, type Stack } from "./support.ts"

let stack: Stack
beforeAll(async () => {
  stack = await startStack()
})
afterAll(() => stack?.stop())
const cli = against(() => stack)

describe("holdover queue", () => {
  it("shows the depth per priority and that the recipient is offline", async () => {
    const alice = unique("alice")
    for (const priority of ["critical", "high", "high", "low"])
      expect((await cli(["send", "--to", alice, "--priority", priority, "{}"])).code).toBe(0)
    const run = await cli(["queue", alice])
    expect(run.code).toBe(0)
    expect(run.stdout).toContain(`${alice}: offline, 4 queued`)
    expect(run.stdout).toMatch(/critical\s+1\n/)
    expect(run.stdout).toMatch(/high\s+2\n/)
    expect(run.stdout).toMatch(/normal\s+0\n/)
    expect(run.stdout).toMatch(/low\s+1\n/)
    expect(run.stdout).toMatch(/total\s+4/)
  })

  it("prints the gateway's answer with --json", async () => {
    const bob = unique("bob")
    const run = await cli(["--json", "queue", bob])
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout)).toEqual({
      recipient: bob,
      depth: { critical: 0, high: 0, normal: 0, low: 0 },
      online: false,
    })
  })

  it("encodes recipient ids with reserved characters", async () => {
    const odd = `${unique("team")}/ops #1`
    expect((await cli(["send", "--to", odd, '"x"'])).code).toBe(0)
    const run = await cli(["queue", odd, "--json"])
    expect(JSON.parse(run.stdout)).toMatchObject({ recipient: odd, depth: { normal: 1 } })
  })
})
