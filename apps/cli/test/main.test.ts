import { describe, expect, it } from "vitest"
import { holdover } from "./support.ts"

describe("holdover (arguments, help, exit codes)", () => {
  it("prints the help with every command and the exit codes when run without arguments", async () => {
    const run = await holdover([])
    expect(run.code).toBe(0)
    for (const command of ["token", "send", "queue", "purge", "tail", "status"])
      expect(run.stdout).toContain(command)
    expect(run.stdout).toContain("Exit codes")
    expect(run.stdout).toMatch(/3\s+the gateway is unreachable/)
  })

  it("prints help for every subcommand with --help", async () => {
    for (const command of ["token", "send", "queue", "purge", "tail", "status"]) {
      const run = await holdover([command, "--help"])
      expect(run.code, command).toBe(0)
      expect(run.stdout, command).toContain(`holdover ${command}`)
      expect(run.stdout, command).toContain("--json")
    }
  })

  it("exits 2 on an unknown command, naming it", async () => {
    const run = await holdover(["frobnicate"])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('Unknown subcommand "frobnicate"')
    expect(run.stderr).toContain("--help")
  })

  it("exits 2 on an unknown option, naming it", async () => {
    const run = await holdover(["queue", "alice", "--frob"])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain("--frob")
  })

  it("exits 2 on a bad priority, naming the option and the choices", async () => {
    const run = await holdover(["send", "--to", "alice", "--priority", "urgent", "{}"])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain("--priority")
    expect(run.stderr).toContain('"critical" | "high" | "normal" | "low"')
  })

  it("exits 2 when a payload argument is not JSON", async () => {
    const run = await holdover(["send", "--to", "alice", "hello"], {
      env: { HOLDOVER_JWT_SECRET: "a-secret-of-enough-length" },
    })
    expect(run.code).toBe(2)
    expect(run.stderr).toContain("not valid JSON")
  })

  it("exits 2 without any credentials, saying how to provide them", async () => {
    const run = await holdover(["queue", "alice"])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain("HOLDOVER_JWT_SECRET")
  })

  it("exits 3 with a clear message when the gateway is down", async () => {
    const env = { HOLDOVER_JWT_SECRET: "a-secret-of-enough-length" }
    for (const url of ["http://127.0.0.1:1", "http://127.0.0.1:45"]) {
      const run = await holdover(["--url", url, "queue", "alice"], { env })
      expect(run.code, url).toBe(3)
      expect(run.stderr, url).toContain(`cannot reach the gateway at ${url}:`)
    }
    const tail = await holdover(["tail", "alice", "--url", "http://127.0.0.1:45"], { env })
    expect(tail.code).toBe(3)
    expect(tail.stderr).toContain("cannot reach the gateway at ws://127.0.0.1:45/v1/ws")
  })
})
