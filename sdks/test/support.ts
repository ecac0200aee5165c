// Support for the SDK drivers: the conformance server and its results, the client-side check of
// a case's outcome (for the TypeScript runner; the Python and Go runners check the same in their
// own language), a real nats-server and gateway nodes with tokens for the real-gateway tests, and
// spawning another language's test runner with a deadline.
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import {
  startNats,
  testGateway,
  testSecret,
  testToken,
  type RunningGateway,
  type RunningNats,
  waitUntil as waitFor,
} from "@holdover/local-nats"
import type { TokenOptions } from "@holdover/protocol"
import { inject } from "vitest"
import { type ConformanceCase, type SendOutcome, jsonEqual } from "../conformance/Case.ts"
import type { ConformanceServer, RunResult } from "../conformance/server.ts"

export { loadCases } from "../conformance/Case.ts"
export type { ConformanceCase } from "../conformance/Case.ts"
export { startConformanceServer } from "../conformance/server.ts"

export const repoRoot = new URL("../../", import.meta.url).pathname

/** The HS256 secret of the gateways these tests start; SDK tests mint their tokens with it. */
export const secret = testSecret

export const token = (sub: string, scopes: TokenOptions["scopes"] = ["receive", "publish", "admin"]) =>
  testToken(sub, scopes, { ttlSeconds: 3600 })

/** A nats-server of its own for the calling test file (the launcher comes from the global setup). */
export const nats = (): Promise<RunningNats> => startNats(inject("natsLauncher"))

/** A gateway process on `server`; `env` may fix its port (`HOLDOVER_PORT`) or its limits. */
export const gateway = (server: RunningNats, env: Record<string, string> = {}): Promise<RunningGateway> =>
  testGateway(server, env, { timeoutMs: 60_000 })

/**
 * Whether another language's toolchain is there. Without it the driver's tests are skipped with a
 * message, except under CI=true, where a missing toolchain fails them (.ci/run installs it).
 */
export const requireTool = (present: boolean, what: string, install: string) => {
  const ci = process.env["CI"] === "true"
  if (!present)
    console.error(`[sdks] ${what} is missing: ${ci ? "FAILING under CI=true" : "skipped"}; ${install}`)
  return {
    skip: !present && !ci,
    check: () => {
      if (!present) throw new Error(`${what} is missing (CI=true): ${install}`)
    },
  }
}

/** A run-id no other run against the same server uses. */
export const runId = (prefix: string) => `${prefix}-${randomBytes(6).toString("hex")}`

export const fetchResult = async (
  server: ConformanceServer,
  caseName: string,
  run: string,
): Promise<RunResult> => {
  const response = await fetch(`${server.httpUrl}/result/${caseName}/${run}`, {
    signal: AbortSignal.timeout(5000),
  })
  if (response.status !== 200) throw new Error(`GET /result answered ${response.status}`)
  return (await response.json()) as RunResult
}

/** Polls until `condition` holds; fails with `description` after `timeoutMs`. */
export const waitUntil = (
  description: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
) => waitFor(description, condition, timeoutMs)

/** What the application saw while a case ran. */
export interface Outcome {
  readonly delivered: ReadonlyArray<{
    readonly id: string
    readonly priority: string
    readonly redelivered: boolean
    readonly payload: unknown
  }>
  readonly errors: ReadonlyArray<string>
  readonly final: { readonly state: "open" | "closed"; readonly code?: number; readonly takenOver: boolean }
  readonly sends: ReadonlyArray<SendOutcome | undefined>
}

/** Step 7 of the runner (conformance/README.md): what differs from `expect`, one line each. */
export const outcomeProblems = (testCase: ConformanceCase, outcome: Outcome): Array<string> => {
  const problems: Array<string> = []
  const { delivered, errors, final, sends } = testCase.expect
  if (delivered !== undefined) {
    const got = outcome.delivered
    if (got.length !== delivered.length)
      problems.push(
        `delivered ${JSON.stringify(got.map((m) => m.id))}, expected ${JSON.stringify(delivered.map((m) => m.id))}`,
      )
    delivered.forEach((want, i) => {
      const message = got[i]
      if (message === undefined) return
      for (const [key, value] of Object.entries(want))
        if (!jsonEqual(message[key as keyof typeof message], value))
          problems.push(
            `delivered[${i}].${key} is ${JSON.stringify(message[key as keyof typeof message])}, expected ${JSON.stringify(value)}`,
          )
    })
  }
  if (errors !== undefined) {
    let at = 0
    for (const code of outcome.errors) if (code === errors[at]) at += 1
    if (at < errors.length)
      problems.push(
        `errors ${JSON.stringify(outcome.errors)} do not contain ${JSON.stringify(errors)} in order`,
      )
  }
  if (final !== undefined) {
    if (outcome.final.state !== final.state)
      problems.push(`final state ${outcome.final.state}, expected ${final.state}`)
    if (final.code !== undefined && outcome.final.code !== final.code)
      problems.push(`stopped with code ${outcome.final.code}, expected ${final.code}`)
    if (final.takenOver !== undefined && outcome.final.takenOver !== final.takenOver)
      problems.push(`takenOver ${outcome.final.takenOver}, expected ${final.takenOver}`)
  }
  if (sends !== undefined)
    sends.forEach((want, i) => {
      if (!jsonEqual(outcome.sends[i], want))
        problems.push(`sends[${i}] is ${JSON.stringify(outcome.sends[i])}, expected ${JSON.stringify(want)}`)
    })
  return problems
}

/** A finished child process: exit code (or signal name) and everything it printed. */
export interface ProcessResult {
  readonly code: number | string
  readonly output: string
}

/**
 * Runs a command to completion, output interleaved as printed. The command leads a process group
 * of its own (pytest's and go test's children are in it): after `timeoutMs` the whole group is
 * SIGKILLed, and whatever of the group outlives the command is SIGKILLed when it exits.
 */
export const runProcess = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly cwd?: string; readonly env?: Record<string, string>; readonly timeoutMs: number },
): Promise<ProcessResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? repoRoot,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    })
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL")
      } catch {
        // ESRCH: nothing of the group is left
      }
    }
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
    const timer = setTimeout(() => {
      output += `\n[killed after ${options.timeoutMs} ms]\n`
      killGroup()
    }, options.timeoutMs)
    child.on("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.on("exit", (code, signal) => {
      clearTimeout(timer)
      killGroup()
      resolve({ code: code ?? signal ?? "unknown", output })
    })
  })
