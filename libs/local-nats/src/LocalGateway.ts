// Gateway node processes for tests and benchmarks: `node apps/gateway/src/main.ts` (TypeScript
// run directly by Node 24 with the @holdover/source condition), bound to 127.0.0.1 on a free
// port, with the given HOLDOVER_* environment. Resolves once the node logs that it listens;
// its JSON log lines are kept for assertions.
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

export interface RunningGateway {
  readonly url: string
  readonly wsUrl: string
  readonly port: number
  readonly pid: number | undefined
  readonly logs: () => ReadonlyArray<string>
  readonly signal: (signal: NodeJS.Signals) => void
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  readonly exited: Promise<number | string>
  /** SIGTERM (drain), then SIGKILL after `graceMs`. */
  readonly stop: (graceMs?: number) => Promise<number | string>
}

const entry = fileURLToPath(new URL("../../../apps/gateway/src/main.ts", import.meta.url))

export const startGateway = (
  env: Record<string, string>,
  options: {
    timeoutMs?: number
    /** Called with each log line as it arrives, start-up included (to wait for one). */
    onLine?: (line: string) => void
  } = {},
): Promise<RunningGateway> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--conditions=@holdover/source", entry], {
      env: { PATH: process.env["PATH"] ?? "", HOLDOVER_HOST: "127.0.0.1", HOLDOVER_PORT: "0", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    })
    const lines: Array<string> = []
    let started = false
    const exited = new Promise<number | string>((done) =>
      child.once("exit", (code, signal) => done(code ?? signal ?? "unknown")),
    )
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`the gateway did not start in time:\n${lines.join("\n")}`))
    }, options.timeoutMs ?? 20_000)
    const onLine = (line: string) => {
      lines.push(line)
      options.onLine?.(line)
      const port = /"port":(\d+)/.exec(line)?.[1]
      if (!started && port && line.includes("listening")) {
        started = true
        clearTimeout(timer)
        const url = `http://127.0.0.1:${port}`
        resolve({
          url,
          wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
          port: Number(port),
          pid: child.pid,
          logs: () => lines,
          signal: (signal) => {
            child.kill(signal)
          },
          exited,
          stop: async (graceMs = 15_000) => {
            if (child.exitCode !== null || child.signalCode !== null) return exited
            child.kill("SIGTERM")
            const kill = setTimeout(() => child.kill("SIGKILL"), graceMs)
            const code = await exited
            clearTimeout(kill)
            return code
          },
        })
      }
    }
    let buffer = ""
    const feed = (chunk: Buffer) => {
      buffer += chunk.toString("utf8")
      let newline = buffer.indexOf("\n")
      while (newline >= 0) {
        onLine(buffer.slice(0, newline))
        buffer = buffer.slice(newline + 1)
        newline = buffer.indexOf("\n")
      }
    }
    child.stdout.on("data", feed)
    child.stderr.on("data", feed)
    void exited.then((code) => {
      if (!started) {
        clearTimeout(timer)
        reject(new Error(`the gateway exited (${code}) during start-up:\n${lines.join("\n")}`))
      }
    })
  })
