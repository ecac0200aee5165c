// `npm start` as a developer meets it: loopback only, a loud notice and the matching HOLDOVER_URL
// when 8080 (here: a port this test holds) is taken, readable log lines, the URL and secret in
// <data dir>/dev.env where the CLI finds them, and a refusal of a second `npm start` on the same
// data directory. Real processes: scripts/start.ts, its nats-server and gateway, the CLI.
import { spawn, type ChildProcess } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs"
import { createServer, type Server } from "node:net"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { waitUntil } from "@holdover/local-nats"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..")

interface Started {
  readonly child: ChildProcess
  readonly output: () => string
  readonly exited: Promise<number | null>
}

const npmStart = (env: Record<string, string>): Started => {
  const child = spawn(process.execPath, ["--conditions=@holdover/source", join(root, "scripts/start.ts")], {
    cwd: root,
    env: {
      PATH: process.env["PATH"] ?? "",
      HOME: process.env["HOME"] ?? "",
      HOLDOVER_NATS_DOCKER: "off",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  })
  let output = ""
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()))
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()))
  return { child, output: () => output, exited: new Promise((done) => child.once("exit", done)) }
}

/**
 * Stops a started `npm start` unless it has exited: SIGTERM (it stops its gateway and
 * nats-server first), SIGKILL when it is still running after `graceMs` (and then fails).
 */
const stopStarted = async ({ child, exited }: Started, graceMs = 30_000): Promise<number | null> => {
  const running = () => child.exitCode === null && child.signalCode === null
  if (running()) child.kill("SIGTERM")
  try {
    await waitUntil("npm start has stopped after SIGTERM", () => !running(), graceMs)
  } finally {
    if (running()) {
      child.kill("SIGKILL")
      await exited
    }
  }
  return child.exitCode
}

/** Linux: a process's parent pid, command name and state from /proc; undefined once it is gone. */
const processStat = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const [, comm = "", state = "", ppid = ""] = /^\d+ \((.*)\) (\S) (\d+)/.exec(stat) ?? []
    return { comm, state, ppid: Number(ppid) }
  } catch {
    return undefined
  }
}
const natsServerOf = (parent: number) =>
  readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .find((pid) => {
      const stat = processStat(pid)
      return stat?.ppid === parent && stat.comm === "nats-server"
    })
/** Running, as opposed to gone or a zombie nobody has reaped. */
const running = (pid: number) => !["Z", "X", undefined].includes(processStat(pid)?.state)

describe("npm start for a developer", () => {
  let dataDir: string
  let holder: Server
  let held: number
  let first: Started

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "holdover-start-"))
    holder = createServer()
    await new Promise<void>((listening) => holder.listen(0, "127.0.0.1", listening))
    const address = holder.address()
    held = typeof address === "object" && address ? address.port : 0
    first = npmStart({ HOLDOVER_DATA_DIR: dataDir, HOLDOVER_PORT: String(held), HOLDOVER_DEMO: "off" })
    await waitUntil(
      "npm start printed its banner",
      () => first.output().includes("Press Ctrl-C to stop.") || first.child.exitCode !== null,
      90_000,
    )
  }, 120_000)
  afterAll(async () => {
    if (first !== undefined) await stopStarted(first)
    holder?.close()
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true })
  })

  const gatewayUrl = () => /Gateway:\s+(http:\/\/\S+)/.exec(first.output())?.[1] ?? "no gateway URL printed"

  it("says loudly that the port it was asked for is taken and prints the HOLDOVER_URL it uses instead", () => {
    const output = first.output()
    expect(output, output).toContain("Holdover is running.")
    expect(gatewayUrl()).not.toBe(`http://127.0.0.1:${held}`)
    expect(output).toContain(`Port ${held} is taken: this gateway listens on`)
    expect(output).toContain(`export HOLDOVER_URL=${gatewayUrl()}`)
  })

  it("listens on 127.0.0.1 only and serves the landing page there", async () => {
    const url = new URL(gatewayUrl())
    expect(url.hostname).toBe("127.0.0.1")
    expect((await fetch(`${url.origin}/`)).headers.get("content-type")).toContain("text/html")
    await expect(fetch(`http://127.0.0.2:${url.port}/healthz`)).rejects.toThrow()
  })

  it("prints the gateway's logs as readable lines, not JSON", () => {
    const output = first.output()
    expect(output).toMatch(/^\d\d:\d\d:\d\d INFO +Holdover gateway listening on http:\/\/127\.0\.0\.1:\d+/m)
    expect(output).not.toMatch(/^\{"message"/m)
  })

  it("writes the URL and secret to <data dir>/dev.env, where the CLI finds them", async () => {
    expect(readFileSync(join(dataDir, "dev.env"), "utf8")).toContain(`HOLDOVER_URL=${gatewayUrl()}\n`)
    const cli = spawn(process.execPath, [join(root, "apps/cli/bin/holdover.js"), "queue", "demo"], {
      env: { PATH: process.env["PATH"] ?? "", HOLDOVER_DATA_DIR: dataDir },
      stdio: ["ignore", "pipe", "pipe"],
    })
    let output = ""
    cli.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
    cli.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
    const exited = new Promise<number | null>((done) => cli.once("exit", done))
    try {
      await waitUntil("holdover queue demo has exited", () => cli.exitCode !== null, 20_000)
    } finally {
      if (cli.exitCode === null && cli.signalCode === null) cli.kill("SIGKILL")
    }
    const code = await exited
    expect(output).toContain("demo: ")
    expect(code, output).toBe(0)
  })

  it("refuses a second npm start on the same data directory, naming the first and the way out", async () => {
    const second = npmStart({ HOLDOVER_DATA_DIR: dataDir, HOLDOVER_DEMO: "off" })
    try {
      const exited = () => second.child.exitCode !== null || second.child.signalCode !== null
      await waitUntil("the second npm start has exited", exited, 20_000)
    } finally {
      await stopStarted(second) // one that did not refuse would be running a second stack
    }
    expect(second.child.exitCode, second.output()).toBe(1)
    expect(second.output()).toContain(`another npm start (pid ${first.child.pid}) is using ${dataDir}`)
    expect(second.output()).toContain("HOLDOVER_DATA_DIR=")
    expect(first.child.exitCode).toBe(null)
  })

  it("stops on SIGTERM with exit 0 and releases the data directory", async () => {
    expect(await stopStarted(first, 20_000), first.output()).toBe(0)
    expect(existsSync(join(dataDir, "start.lock"))).toBe(false)
  }, 30_000)
})

describe.skipIf(!existsSync("/proc/self/stat"))("npm start stopped while it starts", () => {
  it("leaves no nats-server running when SIGTERM comes while its nats-server is starting", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "holdover-start-early-"))
    const early = npmStart({ HOLDOVER_DATA_DIR: dataDir, HOLDOVER_DEMO: "off" })
    let nats: number | undefined
    try {
      await waitUntil(
        "npm start has spawned its nats-server",
        () => (nats = natsServerOf(early.child.pid ?? -1)) !== undefined || early.child.exitCode !== null,
        90_000,
        5,
      )
      expect(nats, early.output()).toBeDefined()
      early.child.kill("SIGTERM")
      const exited = () => early.child.exitCode !== null || early.child.signalCode !== null
      await waitUntil("npm start has exited", exited, 20_000)
      await waitUntil("its nats-server is gone", () => !running(nats ?? -1), 10_000)
    } finally {
      await stopStarted(early)
      if (nats !== undefined && running(nats)) process.kill(nats, "SIGKILL")
      rmSync(dataDir, { recursive: true, force: true })
    }
  }, 120_000)
})
