// The Go SDK (sdks/go) held to the same bar as the others: `go vet`, `go build`, a go.mod that
// `go mod tidy` would leave as it is (the module is the distributable artifact, tagged
// sdks/go/vX.Y.Z), and `go test ./...` with everything its tests need — the conformance server,
// a real nats-server with two gateway nodes, and a control endpoint through which the kill -9
// test has one of them SIGKILLed and started again on the same port. Without Go the tests are
// skipped (locally) or fail (CI=true).
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import type { RunningGateway, RunningNats } from "@holdover/local-nats"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ConformanceServer } from "../conformance/server.ts"
import {
  gateway,
  nats as startNats,
  repoRoot,
  requireTool,
  runProcess,
  secret,
  startConformanceServer,
} from "./support.ts"

const goDir = `${repoRoot}sdks/go`
const tool = requireTool(
  spawnSync("go", ["version"], { stdio: "ignore" }).status === 0,
  "the Go toolchain (go on PATH)",
  "install Go 1.23+ (.ci/run expects it on the machine)",
)

/** POST /kill SIGKILLs the doomed gateway; POST /restart starts a new one on its port. */
const controlServer = (initial: RunningGateway, nats: RunningNats) => {
  let doomed = initial
  const server = createServer((request, response) => {
    const act = async () => {
      if (request.method === "POST" && request.url === "/kill") {
        doomed.signal("SIGKILL")
        const exited = await doomed.exited
        if (exited !== "SIGKILL") throw new Error(`the gateway exited with ${exited}, not by SIGKILL`)
        return `exited: ${exited}`
      }
      if (request.method === "POST" && request.url === "/restart") {
        doomed = await gateway(nats, { HOLDOVER_PORT: String(doomed.port) })
        return `listening on ${doomed.port}`
      }
      throw new Error(`no such control: ${request.method} ${request.url}`)
    }
    act().then(
      (text) => response.writeHead(200).end(text),
      (error: unknown) => response.writeHead(500).end(String(error)),
    )
  })
  return {
    server,
    doomed: () => doomed,
    listen: () =>
      new Promise<string>((resolve) =>
        server.listen(0, "127.0.0.1", () =>
          resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
        ),
      ),
  }
}

/** `--- PASS`/`--- FAIL`/`--- SKIP` lines of `go test -v`, subtests included. */
const counts = (output: string) => {
  const count = (word: string) =>
    output.split("\n").filter((line) => line.trim().startsWith(`--- ${word}:`)).length
  return { passed: count("PASS"), failed: count("FAIL"), skipped: count("SKIP") }
}

const go = (args: ReadonlyArray<string>, env: Record<string, string> = {}, timeoutMs = 240_000) =>
  runProcess("go", args, { cwd: goDir, env, timeoutMs })

describe.skipIf(tool.skip)("the Go SDK", () => {
  let nats: RunningNats
  let stable: RunningGateway
  let control: ReturnType<typeof controlServer>
  let controlUrl: string
  let conformance: ConformanceServer

  beforeAll(async () => {
    tool.check()
    nats = await startNats()
    const [doomed, other] = await Promise.all([gateway(nats), gateway(nats)])
    stable = other
    control = controlServer(doomed, nats)
    controlUrl = await control.listen()
    conformance = await startConformanceServer()
  })
  afterAll(async () => {
    await new Promise<void>((resolve) =>
      (control?.server ?? { close: (f: () => void) => f() }).close(() => resolve()),
    )
    await Promise.all([control?.doomed().stop(), stable?.stop(), conformance?.close()])
    await nats?.stop()
  })

  it("is a tidy module that vets and builds", async () => {
    for (const args of [
      ["mod", "tidy", "-diff"],
      ["vet", "./..."],
      ["build", "./..."],
    ]) {
      const { code, output } = await go(args)
      expect(code, `go ${args.join(" ")}:\n${output}`).toBe(0)
    }
  })

  it("is a module another program can require by its path", async () => {
    const consumer = mkdtempSync(join(tmpdir(), "holdover-go-consumer-"))
    const goMod = [
      "module example.com/consumer",
      "go 1.23",
      "require github.com/holdover/holdover/sdks/go v0.1.0",
      `replace github.com/holdover/holdover/sdks/go => ${goDir}`,
    ]
    const main = [
      "package main",
      'import "fmt"',
      'import holdover "github.com/holdover/holdover/sdks/go"',
      'func main() { _, err := holdover.NewReceiver(holdover.ReceiverOptions{URL: "http://x"}); fmt.Println(holdover.Subprotocol, err != nil) }',
    ]
    try {
      writeFileSync(join(consumer, "go.mod"), goMod.join("\n\n") + "\n")
      writeFileSync(join(consumer, "main.go"), main.join("\n\n") + "\n")
      for (const args of [
        ["mod", "tidy"],
        ["run", "."],
      ]) {
        const { code, output } = await runProcess("go", args, { cwd: consumer, timeoutMs: 120_000 })
        expect(code, `go ${args.join(" ")} in a consumer module:\n${output}`).toBe(0)
        if (args[0] === "run") expect(output.trim()).toBe("holdover.v1 true")
      }
    } finally {
      rmSync(consumer, { recursive: true, force: true })
    }
  })

  it("passes its tests: the conformance cases, a real gateway, and a gateway killed with SIGKILL", async () => {
    const { code, output } = await go(["test", "-v", "-count=1", "-timeout=220s", "./..."], {
      HOLDOVER_URL: stable.url,
      HOLDOVER_JWT_SECRET: secret,
      HOLDOVER_KILL_URL: control.doomed().url,
      HOLDOVER_KILL_CONTROL: controlUrl,
      HOLDOVER_CONFORMANCE_URL: conformance.url,
    })
    const summary = counts(output)
    console.log(
      `go test ./... (sdks/go): ${summary.passed} passed, ${summary.failed} failed, ${summary.skipped} skipped`,
    )
    expect(code, output).toBe(0)
    expect(summary.failed, output).toBe(0)
    expect(summary.skipped, `every test has what it needs here, none may skip:\n${output}`).toBe(0)
  })
})
