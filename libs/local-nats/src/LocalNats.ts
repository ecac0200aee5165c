// Local nats-server processes for development, tests and benchmarks.
//
// Owns: starting/stopping single-node JetStream servers (a binary, or a Docker container; which
// one is NatsServers.ts's business) on loopback with a data directory the caller owns. Every
// server started here is bound to 127.0.0.1 and killed when its process handle is stopped (and
// on process exit). Failures are plain Errors: this is tooling that runs before any Effect
// runtime exists (the start script, vitest globalSetup, the benchmark).
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { connect as tcpConnect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"

export type NatsLauncher =
  | { readonly kind: "binary"; readonly path: string; readonly version: string }
  | { readonly kind: "docker"; readonly image: string }

export interface StartOptions {
  /** Where JetStream stores its files. Defaults to a fresh temporary directory removed on stop. */
  readonly dataDir?: string
  /** Client port; 0 (default) picks a free one. */
  readonly port?: number
  /** Also serve the HTTP monitoring endpoint (/varz, /jsz) on a free port. */
  readonly monitoring?: boolean
  /** Extra nats-server arguments. */
  readonly args?: ReadonlyArray<string>
  /** Start-up deadline in milliseconds. */
  readonly timeoutMs?: number
}

export interface RunningNats {
  readonly url: string
  readonly port: number
  readonly monitorUrl: string | undefined
  readonly dataDir: string
  readonly pid: number | undefined
  /** Sends a signal (SIGSTOP/SIGCONT/SIGKILL…) to the server process. */
  readonly signal: (signal: NodeJS.Signals) => void
  /** Stops the server (SIGTERM, then SIGKILL after a grace period) and removes a temporary data dir. */
  readonly stop: () => Promise<void>
}

const readPortsFile = (dir: string): { nats?: string[]; monitoring?: string[] } | undefined => {
  const file = readdirSync(dir).find((name) => name.endsWith(".ports"))
  if (!file) return undefined
  try {
    return JSON.parse(readFileSync(join(dir, file), "utf8")) as { nats?: string[]; monitoring?: string[] }
  } catch {
    return undefined // written but not complete yet
  }
}

const running = new Set<ChildProcess>()
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL")
})

const startBinary = async (
  launcher: Extract<NatsLauncher, { kind: "binary" }>,
  options: StartOptions,
): Promise<RunningNats> => {
  const ownsDataDir = options.dataDir === undefined
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "holdover-nats-"))
  mkdirSync(dataDir, { recursive: true })
  const portsDir = mkdtempSync(join(tmpdir(), "holdover-nats-ports-"))
  const args = [
    "-a",
    "127.0.0.1",
    "-p",
    String(options.port && options.port > 0 ? options.port : -1),
    "-js",
    "-sd",
    dataDir,
    "--ports_file_dir",
    portsDir,
    ...(options.monitoring ? ["-m", "-1"] : []),
    ...(options.args ?? []),
  ]
  const child = spawn(launcher.path, args, { stdio: ["ignore", "ignore", "pipe"] })
  running.add(child)
  let stderr = ""
  child.stderr?.setEncoding("utf8")
  child.stderr?.on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-8_000)
  })
  child.on("error", (error) => {
    stderr += `\n${error.message}`
  })
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  child.once("exit", () => running.delete(child))

  const deadline = Date.now() + (options.timeoutMs ?? 10_000)
  let ports: { nats?: string[]; monitoring?: string[] } | undefined
  while (!ports?.nats?.[0] || (options.monitoring && !ports.monitoring?.[0])) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`nats-server exited during start-up (${launcher.path} ${args.join(" ")}):\n${stderr}`)
    if (Date.now() > deadline) {
      child.kill("SIGKILL")
      throw new Error(`nats-server did not become ready in time:\n${stderr}`)
    }
    await sleep(20)
    ports = readPortsFile(portsDir)
  }
  const url = ports.nats[0]
  const port = Number(new URL(url).port)

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGCONT") // a paused server cannot handle SIGTERM
      child.kill("SIGTERM")
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
      await exited
      clearTimeout(timer)
    }
    rmSync(portsDir, { recursive: true, force: true })
    if (ownsDataDir) rmSync(dataDir, { recursive: true, force: true })
  }
  return {
    url,
    port,
    monitorUrl: ports.monitoring?.[0],
    dataDir,
    pid: child.pid,
    signal: (signal) => {
      child.kill(signal)
      // kill() returns before a multi-threaded server has stopped: without this wait a request
      // sent right after SIGSTOP can still be answered (seen on loaded CI machines).
      if (signal === "SIGSTOP" && child.pid !== undefined) waitForStopped(child.pid, 1_000)
    },
    stop,
  }
}

/** Blocks (bounded) until /proc says the process is stopped ("T"); returns at once off Linux. */
const waitForStopped = (pid: number, timeoutMs: number): void => {
  const deadline = Date.now() + timeoutMs
  const tick = new Int32Array(new SharedArrayBuffer(4))
  while (Date.now() < deadline) {
    let state: string | undefined
    try {
      state = /\)\s+(\S)/.exec(readFileSync(`/proc/${pid}/stat`, "utf8"))?.[1]
    } catch {
      return // no /proc, or the process is gone
    }
    if (state === "T" || state === "t") return
    Atomics.wait(tick, 0, 0, 1)
  }
}

const startDocker = async (
  launcher: Extract<NatsLauncher, { kind: "docker" }>,
  options: StartOptions,
): Promise<RunningNats> => {
  const ownsDataDir = options.dataDir === undefined
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "holdover-nats-"))
  mkdirSync(dataDir, { recursive: true })
  const port = options.port && options.port > 0 ? options.port : 0
  const run = spawnSync(
    "docker",
    [
      "run",
      "-d",
      "--rm",
      "-p",
      `127.0.0.1:${port === 0 ? "" : port}:4222`,
      "-v",
      `${dataDir}:/data`,
      launcher.image,
      "-js",
      "-sd",
      "/data",
      ...(options.args ?? []),
    ],
    { encoding: "utf8" },
  )
  if (run.status !== 0) throw new Error(`docker run ${launcher.image} failed:\n${run.stderr}`)
  const id = run.stdout.trim()
  const mapped = spawnSync("docker", ["port", id, "4222/tcp"], { encoding: "utf8" }).stdout
  const hostPort = Number(/:(\d+)\s*$/m.exec(mapped.trim())?.[1] ?? port)
  await waitForTcp(hostPort, options.timeoutMs ?? 20_000)
  return {
    url: `nats://127.0.0.1:${hostPort}`,
    port: hostPort,
    monitorUrl: undefined,
    dataDir,
    pid: undefined,
    signal: (signal) => {
      spawnSync("docker", ["kill", "--signal", signal, id], { stdio: "ignore" })
    },
    stop: async () => {
      spawnSync("docker", ["stop", "-t", "5", id], { stdio: "ignore" })
      if (ownsDataDir) rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

const waitForTcp = async (port: number, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect({ host: "127.0.0.1", port }, () => {
        socket.destroy()
        resolve(true)
      })
      socket.once("error", () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nothing accepted connections on 127.0.0.1:${port} in time`)
    await sleep(100)
  }
}

/** Starts a single-node JetStream server on 127.0.0.1 and waits until it accepts clients. */
export const startNats = (launcher: NatsLauncher, options: StartOptions = {}): Promise<RunningNats> =>
  launcher.kind === "binary" ? startBinary(launcher, options) : startDocker(launcher, options)
