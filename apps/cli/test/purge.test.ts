import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { against, startStack, unique, type Stack } from "./support.ts"

let stack: Stack
beforeAll(async () => {
  stack = await startStack()
})
afterAll(() => stack?.stop())
const cli = against(() => stack)

const fill = async (recipient: string, count: number) => {
  const input = Array.from({ length: count }, (_, i) => JSON.stringify({ n: i })).join("\n")
  expect((await cli(["send", "--to", recipient], { input })).code).toBe(0)
}

describe("holdover purge", () => {
  it("deletes every queued message with --yes and prints how many", async () => {
    const alice = unique("alice")
    await fill(alice, 7)
    const run = await cli(["purge", alice, "--yes"])
    expect(run.code).toBe(0)
    expect(run.stdout.trim()).toBe(`purged 7 messages from ${alice}'s queue`)
    expect(JSON.parse((await cli(["queue", alice, "--json"])).stdout)).toMatchObject({
      depth: { critical: 0, high: 0, normal: 0, low: 0 },
    })
  })

  it("says 1 message, not 1 messages", async () => {
    const dave = unique("dave")
    await fill(dave, 1)
    const run = await cli(["purge", dave, "--yes"])
    expect(run.stdout.trim()).toBe(`purged 1 message from ${dave}'s queue`)
  })

  it("refuses without --yes when stdin is not a terminal, and purges nothing", async () => {
    const bob = unique("bob")
    await fill(bob, 3)
    const run = await cli(["purge", bob], { input: "y\n" })
    expect(run.code).toBe(2)
    expect(run.stderr).toContain("without --yes")
    expect(JSON.parse((await cli(["queue", bob, "--json"])).stdout)).toMatchObject({ depth: { normal: 3 } })
  })

  it("prints the count as JSON with --json", async () => {
    const carol = unique("carol")
    await fill(carol, 2)
    const run = await cli(["purge", carol, "-y", "--json"])
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout)).toEqual({ recipient: carol, purged: 2 })
  })
})
