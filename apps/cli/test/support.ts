// Test support for the CLI: a nats-server and a real gateway process per test file, and
// `holdover` itself run as a real process (node bin/holdover.js) with a clean environment,
// its stdout, stderr and exit code captured.
import { spawn } from "node:child_process"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import {
  startNats,
  testGateway,
  testSecret as secret,
  type RunningGateway,
  type RunningNats,
} from "@holdover/local-nats"
import { inject } from "vitest"

export { testSecret as secret, unique } from "@holdover/local-nats"

const bin = fileURLToPath(new URL("../bin/holdover.js", import.meta.url))

export interface Stack {
  readonly nats: RunningNats
  readonly gateway: RunningGateway
  readonly stop: () => Promise<void>
}

export const startStack = async (env: Record<string, string> = {}): Promise<Stack> => {
  const nats = await startNats(inject("natsLauncher"))
  const gateway = await testGateway(nats, env)
  return {
    nats,
    gateway,
    stop: async () => {
      await gateway.stop()
      await nats.stop()
    },
  }
}

export interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** A data directory without the dev.env `npm start` writes: a developer's own setup stays out of the tests. */
export const noDevSetup = join(tmpdir(), "holdover-cli-test-no-data-dir")

/**
 * Runs `holdover args…` with only PATH, `env` and a data directory without a dev setup in its
 * environment; `input` is piped to stdin.
 */
export const holdover = (
  args: ReadonlyArray<string>,
  options: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {},
): Promise<Run> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      env: { PATH: process.env["PATH"] ?? "", HOLDOVER_DATA_DIR: noDevSetup, ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")))
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
    child.stdin.on("error", () => {}) // the command may exit before reading all of stdin
    child.stdin.end(options.input ?? "")
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(
        new Error(`holdover ${args.join(" ")} did not finish in time\nstdout: ${stdout}\nstderr: ${stderr}`),
      )
    }, options.timeoutMs ?? 20_000)
    child.on("error", reject)
    child.on("close", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })

/** `holdover` against `stack`'s gateway, minting tokens from the shared secret. */
export const against =
  (stack: () => Stack) =>
  (
    args: ReadonlyArray<string>,
    options: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {},
  ) =>
    holdover(args, {
      ...options,
      env: { HOLDOVER_URL: stack().gateway.url, HOLDOVER_JWT_SECRET: secret, ...options.env },
    })
