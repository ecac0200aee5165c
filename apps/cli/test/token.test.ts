import { createHmac } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { against, holdover, secret, startStack, type Stack } from "./support.ts"

let stack: Stack
beforeAll(async () => {
  stack = await startStack()
})
afterAll(() => stack?.stop())
const cli = against(() => stack)

describe("holdover token", () => {
  it("mints a token the gateway accepts for the scopes asked for", async () => {
    const minted = await holdover([
      "token",
      "--sub",
      "ops",
      "--scope",
      "admin",
      "--ttl",
      "1h",
      // `--secret=…`: a random secret may start with "-", which `--secret <value>` reads as a flag.
      `--secret=${secret}`,
    ])
    expect(minted.code).toBe(0)
    const token = minted.stdout.trim()
    expect(token.split(".")).toHaveLength(3)
    const queue = await holdover(["queue", "alice", "--token", token, "--url", stack.gateway.url])
    expect(queue.code).toBe(0)
    expect(queue.stdout).toContain("alice")
  })

  it("mints from HOLDOVER_JWT_SECRET and describes the token with --json", async () => {
    const minted = await cli([
      "token",
      "--sub",
      "svc",
      "--scope",
      "publish,receive",
      "--to",
      "bob,carol",
      "--json",
    ])
    expect(minted.code).toBe(0)
    const body = JSON.parse(minted.stdout) as Record<string, unknown>
    expect(body).toMatchObject({ sub: "svc", scopes: ["publish", "receive"], to: ["bob", "carol"] })
    const claims = JSON.parse(
      Buffer.from(String(body["token"]).split(".")[1]!, "base64url").toString(),
    ) as Record<string, unknown>
    expect(claims).toMatchObject({ sub: "svc", scope: "publish receive", holdover_to: ["bob", "carol"] })
  })

  it("a token restricted with --to cannot publish to anyone else (exit 4)", async () => {
    const token = (await cli(["token", "--sub", "svc", "--scope", "publish", "--to", "bob"])).stdout.trim()
    const ok = await cli(["send", "--to", "bob", "--token", token, '{"n":1}'])
    expect(ok.code).toBe(0)
    const refused = await cli(["send", "--to", "mallory", "--token", token, '{"n":1}'])
    expect(refused.code).toBe(4)
    expect(refused.stderr).toContain("FORBIDDEN:")
  })

  it("a token without the needed scope is refused with exit 4", async () => {
    const token = (await cli(["token", "--sub", "svc", "--scope", "publish"])).stdout.trim()
    const run = await cli(["status", "--token", token])
    expect(run.code).toBe(4)
    expect(run.stderr).toContain("FORBIDDEN:")
  })

  it("exits 2 on a bad --ttl, naming the flag and the expected form", async () => {
    const run = await cli(["token", "--sub", "alice", "--scope", "receive", "--ttl", "soon"])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain("--ttl")
    expect(run.stderr).toContain("a duration such as 500ms, 30s, 10m, 24h or 7d")
    expect(run.stdout).toBe("")
  })

  it("takes a secret that starts with a dash as --secret=…", async () => {
    const dashed = `-${secret}`
    const minted = await holdover(["token", "--sub", "ops", "--scope", "admin", `--secret=${dashed}`])
    expect(minted.code).toBe(0)
    const [header, claims, signature] = minted.stdout.trim().split(".")
    const expected = createHmac("sha256", dashed).update(`${header}.${claims}`).digest("base64url")
    expect(signature).toBe(expected)
  })

  it("exits 2 on an unknown scope and without a secret", async () => {
    const scope = await cli(["token", "--sub", "alice", "--scope", "receive,root"])
    expect(scope.code).toBe(2)
    expect(scope.stderr).toContain("--scope")
    const noSecret = await holdover(["token", "--sub", "alice", "--scope", "receive"])
    expect(noSecret.code).toBe(2)
    expect(noSecret.stderr).toContain("HOLDOVER_JWT_SECRET")
  })
})
