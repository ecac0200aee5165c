// What the benchmark runs against and how it looks inside: a nats-server of its own (fresh
// temporary data directory, 127.0.0.1 only, monitoring on), gateway processes started against it
// with benchmark-friendly limits, tokens, a keep-alive HTTP client, and the probes the figures
// come from — nats-server's /varz (RSS) and /jsz (consumers, API errors), /proc/<pid>/status
// (VmRSS) and /proc/self/limits (open files).
// Lifecycle: `Harness.start()` … `harness.stop()` (gateways first, then NATS). Everything it
// starts is also killed on process exit by libs/local-nats.
import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import { Agent, request } from "node:http"
import {
  locateNatsServer,
  startGateway,
  startNats,
  type NatsLauncher,
  type RunningGateway,
  type RunningNats,
} from "@holdover/local-nats"
import { mintToken, type TokenScope } from "@holdover/protocol"

/** Per-priority capacity of the benchmark's gateways and queues: big backlogs must not overflow. */
export const benchCapacity = 100_000

/** Gateway settings of the benchmark: the producer and frame rate limits are lifted (we measure
 * throughput, not the limiter) and capacities raised; everything else is the shipped default. */
export const gatewayEnv = (natsUrl: string, secret: string): Record<string, string> => ({
  HOLDOVER_NATS_URL: natsUrl,
  HOLDOVER_JWT_SECRET: secret,
  HOLDOVER_LOG_LEVEL: "Info", // the "listening" line that startGateway waits for is logged at Info
  HOLDOVER_PUBLISH_RATE: "10000000",
  HOLDOVER_PUBLISH_BURST: "10000000",
  HOLDOVER_WS_FRAME_RATE: "10000000",
  HOLDOVER_WS_FRAME_BURST: "10000000",
  HOLDOVER_MAX_PENDING_PUBLISHES: "100000",
  HOLDOVER_CRITICAL_CAPACITY: String(benchCapacity),
  HOLDOVER_HIGH_CAPACITY: String(benchCapacity),
  HOLDOVER_NORMAL_CAPACITY: String(benchCapacity),
  HOLDOVER_LOW_CAPACITY: String(benchCapacity),
})

export interface Jsz {
  readonly consumers: number
  readonly streams: number
  readonly messages: number
  readonly api: { readonly total: number; readonly errors: number }
}

export interface Varz {
  /** Resident set size in bytes. */
  readonly mem: number
  readonly connections: number
  readonly cpu: number
}

const getJson = async <A>(url: string): Promise<A> => {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) })
  if (!response.ok) throw new Error(`GET ${url}: ${response.status}`)
  return (await response.json()) as A
}

/** VmRSS of a process in KiB, from /proc/<pid>/status; 0 when it cannot be read. */
export const rssKb = (pid: number | undefined): number => {
  if (pid === undefined) return 0
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return Number(match?.[1] ?? 0)
  } catch {
    return 0
  }
}

/** CPU time (user + system) a process has used, in ms, from /proc/<pid>/stat; 0 when unreadable. */
export const cpuMs = (pid: number | undefined): number => {
  if (pid === undefined) return 0
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    // Fields 14 and 15 of proc(5), counted after "pid (comm) ": utime and stime in clock ticks (100/s).
    return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) * 10
  } catch {
    return 0
  }
}

/** CPU used by the gateway, nats-server and this process between `start` and `read`: % of one core. */
export const cpuMeter = (gatewayPid: number | undefined, natsPid: number | undefined) => {
  const wall = performance.now()
  const gateway = cpuMs(gatewayPid)
  const nats = cpuMs(natsPid)
  const self = process.cpuUsage()
  return () => {
    const ms = Math.max(1, performance.now() - wall)
    const own = process.cpuUsage(self)
    const pct = (used: number) => Math.round((used / ms) * 100)
    return {
      gateway_cpu_pct: pct(cpuMs(gatewayPid) - gateway),
      nats_cpu_pct: pct(cpuMs(natsPid) - nats),
      bench_cpu_pct: pct((own.user + own.system) / 1000),
    }
  }
}

/** The open-files limit of this process (soft, hard), from /proc/self/limits. */
export const openFilesLimit = (): { soft: number; hard: number } | undefined => {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"))
    const [soft, hard] = (line ?? "").replace("Max open files", "").trim().split(/\s+/)
    const parse = (v: string | undefined) => (v === "unlimited" ? Infinity : Number(v))
    return { soft: parse(soft), hard: parse(hard) }
  } catch {
    return undefined
  }
}

export interface HttpReply {
  readonly status: number
  readonly body: unknown
}

export class Harness {
  readonly launcher: NatsLauncher & { kind: "binary" }
  readonly nats: RunningNats
  readonly secret: string
  readonly gateways: Array<RunningGateway> = []
  /** Keep-alive connections for producers: a real producer does not reconnect per request. */
  readonly agent = new Agent({ keepAlive: true, maxSockets: 256 })

  /** When set, gateways write V8 CPU profiles (--cpu-prof) here when they exit. */
  readonly cpuProfDir: string | undefined

  private constructor(
    launcher: NatsLauncher & { kind: "binary" },
    nats: RunningNats,
    secret: string,
    cpuProfDir: string | undefined,
  ) {
    this.launcher = launcher
    this.nats = nats
    this.secret = secret
    this.cpuProfDir = cpuProfDir
  }

  static async start(
    log: (line: string) => void,
    options: { cpuProfDir?: string | undefined } = {},
  ): Promise<Harness> {
    const launcher = locateNatsServer({ install: true, log })
    if (launcher.kind !== "binary")
      throw new Error(
        "the benchmark needs a nats-server binary (it reads the server's RSS and /jsz); install nats-server",
      )
    const nats = await startNats(launcher, { monitoring: true })
    if (!nats.monitorUrl) throw new Error("nats-server started without its monitoring endpoint")
    const harness = new Harness(launcher, nats, randomBytes(24).toString("base64url"), options.cpuProfDir)
    // Gateways are not reaped by libs/local-nats: never leave one behind if the run dies.
    process.once("exit", () => {
      for (const node of harness.gateways) node.signal("SIGKILL")
    })
    return harness
  }

  get natsVersion(): string {
    return this.launcher.version
  }

  async gateway(extra: Record<string, string> = {}): Promise<RunningGateway> {
    // NODE_OPTIONS from `extra` (e.g. --inspect) is added to the profiler's, not put in its place.
    const nodeOptions = [
      this.cpuProfDir ? `--cpu-prof --cpu-prof-dir=${this.cpuProfDir}` : "",
      extra["NODE_OPTIONS"] ?? "",
    ]
      .filter((option) => option !== "")
      .join(" ")
    const node = await startGateway(
      {
        ...gatewayEnv(this.nats.url, this.secret),
        ...extra,
        ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
      },
      { timeoutMs: 60_000 },
    )
    this.gateways.push(node)
    return node
  }

  async stopGateway(node: RunningGateway): Promise<void> {
    await node.stop(20_000)
    this.gateways.splice(this.gateways.indexOf(node), 1)
  }

  token(sub: string, scopes: ReadonlyArray<TokenScope> = ["receive"]): Promise<string> {
    return mintToken(this.secret, { sub, scopes, ttlSeconds: 4 * 3600 })
  }

  /** Tokens for many recipients, minted a few hundred at a time. */
  async tokens(subs: ReadonlyArray<string>): Promise<Array<string>> {
    const out: Array<string> = []
    for (let i = 0; i < subs.length; i += 500)
      out.push(...(await Promise.all(subs.slice(i, i + 500).map((sub) => this.token(sub)))))
    return out
  }

  /** Starts measuring CPU use of `gateway`, nats-server and this process; call the result to read it. */
  meter(gateway?: RunningGateway, nats: RunningNats = this.nats): () => Record<string, number> {
    return cpuMeter(gateway?.pid, nats.pid)
  }

  /** Another nats-server (fresh data directory, monitoring on), for a step that needs a clean one. */
  freshNats(args: ReadonlyArray<string> = []): Promise<RunningNats> {
    return startNats(this.launcher, { monitoring: true, args })
  }

  jsz(nats: RunningNats = this.nats): Promise<Jsz> {
    return getJson<Jsz>(`${nats.monitorUrl}/jsz`)
  }

  varz(nats: RunningNats = this.nats): Promise<Varz> {
    return getJson<Varz>(`${nats.monitorUrl}/varz`)
  }

  /**
   * A JSON request over the keep-alive agent. Never rejects on HTTP status; rejects on socket
   * errors — but a reused keep-alive socket that the server closed just as it was picked (its
   * idle timeout) is reset before the request was read, and that request is sent once more on a
   * fresh socket (Node's documented `reusedSocket` retry; the soak met it once in 50 000).
   */
  http(base: string, method: string, path: string, token: string, body?: unknown): Promise<HttpReply> {
    return this.httpOnce(base, method, path, token, body).catch(
      (error: { retry?: () => Promise<HttpReply> }) => {
        if (error.retry) return error.retry()
        throw error
      },
    )
  }

  private httpOnce(
    base: string,
    method: string,
    path: string,
    token: string,
    body?: unknown,
  ): Promise<HttpReply> {
    const text = body === undefined ? undefined : JSON.stringify(body)
    return new Promise((resolve, reject) => {
      const req = request(
        `${base}${path}`,
        {
          method,
          agent: this.agent,
          timeout: 60_000,
          headers: {
            Authorization: `Bearer ${token}`,
            "Content-Type": "application/json",
            ...(text === undefined ? {} : { "Content-Length": Buffer.byteLength(text) }),
          },
        },
        (response) => {
          const chunks: Array<Buffer> = []
          response.on("data", (chunk: Buffer) => chunks.push(chunk))
          response.on("error", reject)
          response.on("end", () => {
            const raw = Buffer.concat(chunks).toString("utf8")
            let parsed: unknown = raw
            try {
              parsed = JSON.parse(raw)
            } catch {
              // not JSON: keep the text
            }
            resolve({ status: response.statusCode ?? 0, body: parsed })
          })
        },
      )
      req.on("timeout", () => req.destroy(new Error(`${method} ${path} timed out`)))
      req.on("error", (error: NodeJS.ErrnoException) =>
        reject(
          req.reusedSocket && error.code === "ECONNRESET"
            ? Object.assign(error, { retry: () => this.httpOnce(base, method, path, token, body) })
            : error,
        ),
      )
      req.end(text)
    })
  }

  /**
   * Stores messages through a gateway's batch endpoint (1000 per request, a few requests at once).
   * Fails if any message was not queued: a benchmark on a partial backlog would measure nothing.
   */
  async seed(
    base: string,
    producer: string,
    messages: ReadonlyArray<{ to: string; priority: string; payload: unknown }>,
    deadlineMs = 120_000,
  ): Promise<void> {
    const deadline = Date.now() + deadlineMs
    const chunks: Array<ReadonlyArray<unknown>> = []
    for (let i = 0; i < messages.length; i += 1000) chunks.push(messages.slice(i, i + 1000))
    let next = 0
    const worker = async () => {
      while (next < chunks.length) {
        if (Date.now() > deadline) throw new Error("seeding the backlog took too long")
        const chunk = chunks[next++] ?? []
        const reply = await this.http(base, "POST", "/v1/messages/batch", producer, { messages: chunk })
        const results = (reply.body as { results?: Array<{ status?: string }> }).results ?? []
        const queued = results.filter((r) => r.status === "queued").length
        if (reply.status !== 200 || queued !== chunk.length)
          throw new Error(
            `seeding: ${queued} of ${chunk.length} queued (HTTP ${reply.status}): ${JSON.stringify(reply.body).slice(0, 300)}`,
          )
      }
    }
    await Promise.all([worker(), worker(), worker()])
  }

  async stop(): Promise<void> {
    for (const node of [...this.gateways]) await node.stop(10_000).catch(() => undefined)
    this.gateways.length = 0
    this.agent.destroy()
    await this.nats.stop()
  }
}
