// The Python SDK (sdks/python), driven from vitest: pytest from the virtualenv .data/venv-sdk
// against the conformance server and against real gateways on a real nats-server, a Python
// receiver across a gateway killed with SIGKILL, and the wheel built and installed fresh.
// Without the virtualenv the tests are skipped (locally) or fail (CI=true): .ci/run creates it.
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort, type RunningGateway, type RunningNats } from "@holdover/local-nats"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  gateway,
  nats,
  repoRoot,
  requireTool,
  runId,
  runProcess,
  secret,
  startConformanceServer,
  token,
  waitUntil,
} from "./support.ts"

const python = join(repoRoot, ".data/venv-sdk/bin/python")
const pythonDir = join(repoRoot, "sdks/python")
const tool = requireTool(
  existsSync(python),
  "the Python SDK's virtualenv .data/venv-sdk",
  "python3 -m venv .data/venv-sdk && .data/venv-sdk/bin/pip install -e 'sdks/python[test]' (as .ci/run does)",
)

/** pytest's closing line ("27 passed in 9.21s"), for the log. */
const summary = (output: string) =>
  output
    .trim()
    .split("\n")
    .reverse()
    .find((line) => /\d+ (passed|failed|error)/.test(line)) ?? "(no pytest summary)"

const pytest = async (args: ReadonlyArray<string>, env: Record<string, string>) => {
  const result = await runProcess(python, ["-m", "pytest", "-q", "-p", "no:cacheprovider", ...args], {
    cwd: pythonDir,
    env,
    timeoutMs: 240_000,
  })
  console.log(`[python] pytest ${args.join(" ")}: ${summary(result.output)}`)
  return result
}

const priorities = ["critical", "high", "normal", "low"] as const
type Priority = (typeof priorities)[number]

const post = async (base: string, auth: string, to: string, priority: Priority, payload: unknown) => {
  const response = await fetch(`${base}/v1/messages`, {
    method: "POST",
    headers: { Authorization: `Bearer ${auth}`, "Content-Type": "application/json" },
    body: JSON.stringify({ to, priority, payload }),
    signal: AbortSignal.timeout(15_000),
  })
  const body = (await response.json()) as { id: string; status: string }
  if (response.status !== 202 || body.status !== "queued")
    throw new Error(`POST /v1/messages answered ${response.status} ${JSON.stringify(body)}`)
  return body.id
}

describe.skipIf(tool.skip)("the Python SDK", () => {
  beforeAll(tool.check)

  it("passes the conformance cases", async () => {
    const server = await startConformanceServer()
    try {
      const result = await pytest(["tests/test_conformance.py"], { HOLDOVER_CONFORMANCE_URL: server.url })
      expect(result.code, result.output).toBe(0)
    } finally {
      await server.close()
    }
  })

  describe("against real gateways", () => {
    let server: RunningNats
    let node: RunningGateway
    let limited: RunningGateway
    beforeAll(async () => {
      server = await nats()
      ;[node, limited] = await Promise.all([
        gateway(server),
        gateway(server, { HOLDOVER_PUBLISH_RATE: "1", HOLDOVER_PUBLISH_BURST: "1" }),
      ])
    })
    afterAll(async () => {
      await Promise.all([node?.stop(), limited?.stop()])
      await server?.stop()
    })

    it("passes its unit, producer, receiver and README tests", async () => {
      const result = await pytest(["tests", "--ignore=tests/test_conformance.py"], {
        HOLDOVER_URL: node.url,
        HOLDOVER_WS_URL: node.wsUrl,
        HOLDOVER_SECRET: secret,
        HOLDOVER_RATE_LIMITED_URL: limited.url,
      })
      expect(result.code, result.output).toBe(0)
    })

    it("a receiver gets a mixed-priority backlog in strict priority order after its gateway is killed with SIGKILL", async () => {
      const port = await freePort()
      let doomed: RunningGateway | undefined = await gateway(server, { HOLDOVER_PORT: String(port) })
      let revived: RunningGateway | undefined
      const kim = runId("kim")
      const producer = await token("producer", ["publish", "admin"])
      const live = 3
      const order: ReadonlyArray<Priority> = [
        "low",
        "normal",
        "critical",
        "high",
        "low",
        "critical",
        "normal",
        "high",
      ]
      const backlog = Array.from({ length: 24 }, (_, seq) => ({
        seq,
        priority: order[seq % order.length] as Priority,
      }))
      const events: Array<{ event: string; id?: string; priority?: Priority; payload?: { seq?: number } }> =
        []
      const child = spawn(python, ["tests/kill9_receiver.py"], {
        cwd: pythonDir,
        env: {
          ...process.env,
          HOLDOVER_WS_URL: `ws://127.0.0.1:${port}/v1/ws`,
          HOLDOVER_TOKEN: await token(kim, ["receive"]),
          HOLDOVER_EXPECT: String(live + backlog.length),
        },
        stdio: ["ignore", "pipe", "pipe"],
      })
      let stderr = ""
      let pending = ""
      child.stdout.on("data", (chunk: Buffer) => {
        pending += chunk.toString()
        const lines = pending.split("\n")
        pending = lines.pop() ?? ""
        for (const line of lines) if (line.trim() !== "") events.push(JSON.parse(line))
      })
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
      const exited = new Promise<number | string>((resolve) => {
        child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"))
        child.once("error", (error) => {
          stderr += `\n[not started: ${error.message}]\n`
          resolve("not started")
        })
      })
      const messages = () => events.filter((e) => e.event === "message")
      const opens = () => events.filter((e) => e.event === "open").length
      const context = () => `${JSON.stringify(events)}\n${stderr}`
      try {
        await waitUntil("the Python receiver's first session", () => opens() >= 1, 30_000)
        for (let seq = 0; seq < live; seq++) await post(node.url, producer, kim, "normal", { live: seq })
        await waitUntil(`${live} live messages handed over`, () => messages().length >= live, 30_000)

        doomed.signal("SIGKILL")
        expect(await doomed.exited).toBe("SIGKILL")
        doomed = undefined
        for (const { seq, priority } of backlog) await post(node.url, producer, kim, priority, { seq })
        revived = await gateway(server, { HOLDOVER_PORT: String(port) })

        expect(await exited, context()).toBe(0)
        expect(opens(), context()).toBeGreaterThanOrEqual(2)
        const handed = messages().slice(live)
        const rank = (p: Priority) => priorities.indexOf(p)
        const wanted = [...backlog].sort((a, b) => rank(a.priority) - rank(b.priority) || a.seq - b.seq)
        expect(
          handed.map((m) => `${m.priority}:${m.payload?.seq}`),
          context(),
        ).toEqual(wanted.map((m) => `${m.priority}:${m.seq}`))
        expect(new Set(messages().map((m) => m.id)).size).toBe(live + backlog.length)
        await waitUntil("every ack reached JetStream", async () => {
          const response = await fetch(`${node.url}/v1/recipients/${kim}/queue`, {
            headers: { Authorization: `Bearer ${producer}` },
            signal: AbortSignal.timeout(5_000),
          })
          const { depth } = (await response.json()) as { depth: Record<Priority, number> }
          return priorities.every((p) => depth[p] === 0)
        })
      } finally {
        if (child.exitCode === null) child.kill("SIGKILL")
        await Promise.all([doomed?.stop(), revived?.stop()])
      }
    })
  })

  it("builds a wheel that installs into a fresh virtualenv and imports", async () => {
    const dir = mkdtempSync(join(tmpdir(), "holdover-wheel-"))
    try {
      const build = await runProcess(
        python,
        ["-m", "build", "--wheel", "--outdir", join(dir, "dist"), pythonDir],
        {
          timeoutMs: 240_000,
        },
      )
      expect(build.code, build.output).toBe(0)
      const wheel = readdirSync(join(dir, "dist")).find((f) => f.endsWith(".whl"))
      expect(wheel, build.output).toMatch(/^holdover-0\.1\.0-py3-none-any\.whl$/)
      const venv = join(dir, "venv")
      const create = await runProcess(python, ["-m", "venv", venv], { timeoutMs: 120_000 })
      expect(create.code, create.output).toBe(0)
      const install = await runProcess(
        join(venv, "bin/pip"),
        ["install", "-q", "--disable-pip-version-check", join(dir, "dist", wheel ?? "")],
        { timeoutMs: 240_000 },
      )
      expect(install.code, install.output).toBe(0)
      const check = await runProcess(
        join(venv, "bin/python"),
        [
          "-c",
          "import holdover, importlib.resources as r; print(holdover.Producer.__name__, holdover.Receiver.__name__, r.files('holdover').joinpath('py.typed').is_file())",
        ],
        { cwd: dir, timeoutMs: 60_000 },
      )
      expect(check.code, check.output).toBe(0)
      expect(check.output.trim()).toBe("Producer Receiver True")
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
