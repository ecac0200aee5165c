// A containerised Holdover cluster for fault tests: three nats-server containers forming one
// JetStream cluster (file storage, R3 streams) on a docker network of their own, plus N gateway
// processes (libs/local-nats) connected to all three through ports published on 127.0.0.1.
//
// Owns: the NATS image (HOLDOVER_NATS_IMAGE, else the pinned official nats:<version>-alpine if present locally, else an
// image imported from the pinned nats-server binary (or the host's) — nothing is ever pulled unless
// HOLDOVER_NATS_IMAGE names an image to pull), the network, the containers and the gateway
// processes. Faults: kill -9 / pause / stop+start / partition (docker network disconnect) of a
// NATS node — its JetStream data stays in the container, and the published ports stay fixed, so
// a returning node is the same server at the same address — and kill -9 / SIGTERM / restart of a
// gateway (on the same port, as behind a load balancer). Everything started here is removed by
// `stop()` and, should a test die first, by a process exit hook.
import "./ryuk.ts"
import { spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import {
  freePort,
  locateNatsServer,
  pinnedNatsVersion,
  startGateway,
  type RunningGateway,
  waitUntil as waitFor,
} from "@holdover/local-nats"
import { mintToken, type Priority, type TokenOptions } from "@holdover/protocol"
import {
  GenericContainer,
  Network,
  PullPolicy,
  Wait,
  getContainerRuntimeClient,
  type ImagePullPolicy,
  type StartedNetwork,
  type StartedTestContainer,
} from "testcontainers"

/** The official image of the pinned version (deploy/nats-server.version), as the manifests use. */
export const DEFAULT_NATS_IMAGE = `nats:${pinnedNatsVersion()}-alpine`
/** The image built from a host binary is named by its version: `holdover-test/nats:2.9.10`. */
const localNatsImage = (version: string) => `holdover-test/nats:${version}`
const CONFIG_PATH = "/holdover/nats.conf"
const log = (line: string) => console.error(`[cluster] ${line}`)

// ---------------------------------------------------------------------------------------------
// Docker and the NATS image

export type DockerStatus = { readonly ok: true } | { readonly ok: false; readonly reason: string }

/** Whether a Docker engine answers; the tests skip (locally) or fail (CI=true) when not. */
export const dockerStatus = (): DockerStatus => {
  const info = spawnSync("docker", ["info", "--format", "{{.ServerVersion}}"], {
    encoding: "utf8",
    timeout: 20_000,
  })
  if (info.error) return { ok: false, reason: `the docker CLI cannot run: ${info.error.message}` }
  if (info.status !== 0)
    return { ok: false, reason: `the Docker engine does not answer: ${info.stderr.trim()}` }
  return { ok: true }
}

const imageExists = (image: string) =>
  spawnSync("docker", ["image", "inspect", image], { stdio: "ignore" }).status === 0

/** HOLDOVER_NATS_SERVER_BIN, else the pinned server (scripts/install-nats-server.sh), else PATH. */
const hostNatsServer = (): string | undefined => {
  try {
    const launcher = locateNatsServer({ log })
    return launcher.kind === "binary" ? launcher.path : undefined
  } catch {
    return undefined
  }
}

/** The shared libraries a binary loads (none for a static Go build). */
const sharedLibraries = (binary: string): Array<string> => {
  const ldd = spawnSync("ldd", [binary], { encoding: "utf8" })
  if (ldd.status !== 0) return []
  return ldd.stdout
    .split("\n")
    .map((line) => /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line)?.[1])
    .filter((path): path is string => path !== undefined)
}

/** `docker import`s a rootfs of the host's nats-server binary and the libraries it needs. */
const importLocalImage = (binary: string, image: string): void => {
  const root = mkdtempSync(join(tmpdir(), "holdover-nats-rootfs-"))
  const archive = `${root}.tar`
  try {
    const place = (from: string, to: string) => {
      mkdirSync(dirname(join(root, to)), { recursive: true })
      // copyFileSync of the resolved path: Node 24's cpSync with `dereference` refuses a symlink
      // under a symlinked directory (/lib64/ld-linux-x86-64.so.2 on usrmerge Debian).
      copyFileSync(realpathSync(from), join(root, to))
      chmodSync(join(root, to), 0o755)
    }
    place(binary, "nats-server")
    for (const library of sharedLibraries(binary)) place(library, library)
    for (const dir of ["tmp", "data", "etc"]) mkdirSync(join(root, dir), { recursive: true })
    chmodSync(join(root, "tmp"), 0o1777)
    const tar = spawnSync("tar", ["-C", root, "-cf", archive, "."], { encoding: "utf8" })
    if (tar.status !== 0) throw new Error(`tar of the nats-server rootfs failed: ${tar.stderr}`)
    const imported = spawnSync(
      "docker",
      ["import", "--change", 'ENTRYPOINT ["/nats-server"]', archive, image],
      { encoding: "utf8" },
    )
    if (imported.status !== 0) throw new Error(`docker import of ${image} failed: ${imported.stderr}`)
  } finally {
    rmSync(root, { recursive: true, force: true })
    rmSync(archive, { force: true })
  }
}

export interface NatsImage {
  readonly name: string
  readonly pullPolicy: ImagePullPolicy
}

let chosenImage: NatsImage | undefined

/**
 * HOLDOVER_NATS_IMAGE if set (pulled if absent: the user asked for it); else an image built from
 * HOLDOVER_NATS_SERVER_BIN if set; else the pinned official image if it is present locally;
 * else an image built from the host's nats-server (no registry needed); else that image,
 * pulled.
 */
export const natsImage = (): NatsImage => {
  if (chosenImage) return chosenImage
  const requested = process.env["HOLDOVER_NATS_IMAGE"]
  if (requested) return (chosenImage = { name: requested, pullPolicy: PullPolicy.defaultPolicy() })
  const explicit = process.env["HOLDOVER_NATS_SERVER_BIN"] !== undefined
  if (!explicit && imageExists(DEFAULT_NATS_IMAGE))
    return (chosenImage = { name: DEFAULT_NATS_IMAGE, pullPolicy: PullPolicy.neverPull() })
  const binary = hostNatsServer()
  if (binary === undefined)
    return (chosenImage = { name: DEFAULT_NATS_IMAGE, pullPolicy: PullPolicy.defaultPolicy() })
  const printed = spawnSync(binary, ["--version"], { encoding: "utf8" }).stdout.trim()
  const version = /v?(\d+\.\d+\.\d+\S*)/.exec(printed)?.[1]
  if (version === undefined) throw new Error(`${binary} --version printed no version: ${printed}`)
  const image = localNatsImage(version)
  if (!imageExists(image)) {
    log("!".repeat(96))
    if (!explicit) log(`HOLDOVER_NATS_IMAGE is unset and ${DEFAULT_NATS_IMAGE} is not present locally:`)
    log(`building ${image} from ${binary} (${printed}) with docker import.`)
    log(`Set HOLDOVER_NATS_IMAGE=${DEFAULT_NATS_IMAGE} (or another image) to test against that instead.`)
    log("!".repeat(96))
    importLocalImage(binary, image)
  }
  return (chosenImage = { name: image, pullPolicy: PullPolicy.neverPull() })
}

// ---------------------------------------------------------------------------------------------
// Cleanup of everything this process started, also when a test dies before its afterAll

const liveContainers = new Set<string>()
const liveNetworks = new Set<string>()
const livePids = new Set<number>()

// What this process started, written down so that a later run can remove it if this process is
// killed before its exit hook runs (vitest tearing a worker down, Ctrl-C).
const ledgerDir = join(tmpdir(), "holdover-cluster-tests")
const ledger = join(ledgerDir, `${process.pid}.json`)
interface Ledger {
  readonly containers: Array<string>
  readonly networks: Array<string>
  readonly pids: Array<number>
}
const removeAll = ({ containers, networks, pids }: Ledger) => {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // already gone
    }
  }
  if (containers.length > 0) spawnSync("docker", ["rm", "-f", "-v", ...containers], { stdio: "ignore" })
  for (const network of networks) spawnSync("docker", ["network", "rm", network], { stdio: "ignore" })
}
const writeLedger = () => {
  mkdirSync(ledgerDir, { recursive: true })
  writeFileSync(
    ledger,
    JSON.stringify({ containers: [...liveContainers], networks: [...liveNetworks], pids: [...livePids] }),
  )
}
const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
/** Removes what earlier test processes that died without cleaning up left behind. */
const sweepStaleRuns = () => {
  if (!existsSync(ledgerDir)) return
  for (const file of readdirSync(ledgerDir)) {
    const owner = Number(file.replace(/\.json$/, ""))
    if (!Number.isInteger(owner) || owner === process.pid || isAlive(owner)) continue
    try {
      removeAll(JSON.parse(readFileSync(join(ledgerDir, file), "utf8")) as Ledger)
      log(`removed what test process ${owner} left behind`)
    } catch {
      // unreadable: nothing we can do
    }
    rmSync(join(ledgerDir, file), { force: true })
  }
}
process.once("exit", () => {
  removeAll({ containers: [...liveContainers], networks: [...liveNetworks], pids: [...livePids] })
  rmSync(ledger, { force: true })
})

/** Publishes every exposed port on 127.0.0.1 only (testcontainers binds all interfaces). */
class LoopbackContainer extends GenericContainer {
  protected override async beforeContainerCreated(): Promise<void> {
    for (const bindings of Object.values(this.hostConfig.PortBindings ?? {}))
      for (const binding of bindings as Array<{ HostIp?: string }>) binding.HostIp = "127.0.0.1"
  }
}

// ---------------------------------------------------------------------------------------------
// NATS nodes

export type NatsNodeState = "running" | "paused" | "stopped" | "partitioned"

export interface NatsNode {
  readonly index: number
  /** The server_name, as /v1/status reports stream leaders. */
  readonly name: string
  /** nats://127.0.0.1:<published port> */
  readonly url: string
  readonly monitorUrl: string
  readonly state: () => NatsNodeState
  /** docker kill (SIGKILL). The container and its JetStream data stay; `start()` brings it back. */
  readonly kill: () => Promise<void>
  /** docker stop (SIGTERM, then SIGKILL after 10 s). */
  readonly stop: () => Promise<void>
  /** docker start of a killed or stopped node; resolves once it serves clients again. */
  readonly start: () => Promise<void>
  readonly restart: () => Promise<void>
  /** docker pause / unpause (SIGSTOP for every process of the container). */
  readonly pause: () => Promise<void>
  readonly unpause: () => Promise<void>
  /** docker network disconnect: the node loses its routes and its clients. */
  readonly partition: () => Promise<void>
  /** docker network connect with the same alias (and IP where Docker allows it). */
  readonly heal: () => Promise<void>
  /** /healthz?js-server-only=true of the node's monitoring port answers 200. */
  readonly healthy: () => Promise<boolean>
}

const natsConfig = (index: number, size: number, clientPort: number) =>
  [
    `server_name: n${index}`,
    `listen: "0.0.0.0:4222"`,
    `http: "0.0.0.0:8222"`,
    // Clients learn the cluster's other members from INFO: give them the published loopback
    // address, not the container's IP on the test network.
    `client_advertise: "127.0.0.1:${clientPort}"`,
    // Notice dead peers (routes and clients) in seconds rather than the default minutes.
    `ping_interval: "2s"`,
    `ping_max: 3`,
    `jetstream {`,
    `  store_dir: "/data"`,
    `  max_memory_store: 64MB`,
    `  max_file_store: 2GB`,
    `}`,
    `cluster {`,
    `  name: holdover`,
    `  listen: "0.0.0.0:6222"`,
    `  routes: [${Array.from({ length: size }, (_, i) => `"nats-route://nats-${i}:6222"`).join(", ")}]`,
    `}`,
  ].join("\n")

const httpOk = async (url: string, timeoutMs = 1_500) => {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
    await response.body?.cancel()
    return response.ok
  } catch {
    return false
  }
}

export const waitUntil = (
  description: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
  intervalMs = 250,
): Promise<void> => waitFor(description, condition, timeoutMs, intervalMs)

const startNatsNode = async (
  network: StartedNetwork,
  index: number,
  size: number,
  image: NatsImage,
  owned: Set<string>,
): Promise<NatsNode> => {
  const clientPort = await freePort()
  const monitorPort = await freePort()
  const alias = `nats-${index}`
  let container: StartedTestContainer
  try {
    container = await new LoopbackContainer(image.name)
      .withPullPolicy(image.pullPolicy)
      .withNetwork(network)
      .withNetworkAliases(alias)
      .withExposedPorts({ container: 4222, host: clientPort }, { container: 8222, host: monitorPort })
      .withCopyContentToContainer([{ content: natsConfig(index, size, clientPort), target: CONFIG_PATH }])
      .withCommand(["-c", CONFIG_PATH])
      .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
      .withStartupTimeout(60_000)
      .start()
  } catch (error) {
    throw new Error(`nats node ${index} (${image.name}) did not start: ${String(error)}`, { cause: error })
  }
  const id = container.getId()
  liveContainers.add(id)
  owned.add(id)
  writeLedger()
  const client = await getContainerRuntimeClient()
  const docker = client.container.getById(id)
  const net = client.network.getById(network.getId())
  const ip = container.getIpAddress(network.getName())
  let state: NatsNodeState = "running"
  const monitorUrl = `http://127.0.0.1:${monitorPort}`
  // js-server-only: the server runs JetStream and has a meta leader. Without it /healthz also
  // waits for every stream and consumer replica on the server to be current, which under load
  // (consumers come and go per session) can take long; catching up is what waitSettled checks.
  const healthy = () => httpOk(`${monitorUrl}/healthz?js-server-only=true`)
  const serving = () => waitUntil(`nats node n${index} serves clients again`, healthy, 60_000)

  const node: NatsNode = {
    index,
    name: `n${index}`,
    url: `nats://127.0.0.1:${clientPort}`,
    monitorUrl,
    state: () => state,
    kill: async () => {
      if (state === "paused") await docker.unpause()
      await docker.kill({ signal: "SIGKILL" })
      state = "stopped"
    },
    stop: async () => {
      if (state === "paused") await docker.unpause()
      await docker.stop({ t: 10 })
      state = "stopped"
    },
    start: async () => {
      await docker.start()
      state = "running"
      await serving()
    },
    restart: async () => {
      await node.stop()
      await node.start()
    },
    pause: async () => {
      await docker.pause()
      state = "paused"
    },
    unpause: async () => {
      await docker.unpause()
      state = "running"
    },
    partition: async () => {
      await net.disconnect({ Container: id, Force: true })
      state = "partitioned"
    },
    heal: async () => {
      try {
        await net.connect({
          Container: id,
          EndpointConfig: { Aliases: [alias], IPAMConfig: { IPv4Address: ip } },
        })
      } catch {
        // Docker pins addresses only on networks with a user-configured subnet.
        await net.connect({ Container: id, EndpointConfig: { Aliases: [alias] } })
      }
      state = "running"
    },
    healthy,
  }
  return node
}

// ---------------------------------------------------------------------------------------------
// Gateways

export interface GatewayNode {
  readonly index: number
  /** http://127.0.0.1:<port>; the same across restarts. */
  readonly url: string
  readonly wsUrl: string
  readonly alive: () => boolean
  /** kill -9; resolves once the process is gone. */
  readonly kill: () => Promise<void>
  /** SIGTERM: the gateway drains (1012 to its sessions) and exits. */
  readonly terminate: () => Promise<void>
  /** Starts the node again on the same port. */
  readonly start: () => Promise<void>
  readonly restart: () => Promise<void>
  readonly logs: () => ReadonlyArray<string>
}

const makeGateway = async (index: number, env: Record<string, string>): Promise<GatewayNode> => {
  let running: RunningGateway | undefined
  let alive = false
  const history: Array<string> = []
  const launch = async (port: number) => {
    const gateway = await startGateway({ ...env, HOLDOVER_PORT: String(port) }, { timeoutMs: 60_000 })
    running = gateway
    alive = true
    if (gateway.pid !== undefined) livePids.add(gateway.pid)
    writeLedger()
    void gateway.exited.then((code) => {
      if (running === gateway) alive = false
      if (gateway.pid !== undefined) livePids.delete(gateway.pid)
      history.push(...gateway.logs(), `--- gateway ${index} exited (${code}) ---`)
    })
    return gateway
  }
  const first = await launch(0)
  const port = first.port
  const node: GatewayNode = {
    index,
    url: first.url,
    wsUrl: first.wsUrl,
    alive: () => alive,
    kill: async () => {
      if (!running || !alive) return
      alive = false
      running.signal("SIGKILL")
      await running.exited
    },
    terminate: async () => {
      if (!running || !alive) return
      alive = false
      await running.stop(15_000)
    },
    start: async () => {
      if (alive) return
      await launch(port)
    },
    restart: async () => {
      await node.terminate()
      await node.start()
    },
    logs: () => [...history, ...(alive && running ? running.logs() : [])],
  }
  return node
}

// ---------------------------------------------------------------------------------------------
// The cluster

export interface StreamStatus {
  readonly priority: Priority
  readonly stream: string
  readonly messages: number
  readonly replicas: number
  readonly cluster?: {
    readonly leader?: string
    readonly replicas: ReadonlyArray<{
      readonly name: string
      readonly current: boolean
      readonly lagging: number
    }>
  }
}

export interface GatewayStatus {
  readonly gateway: { readonly ready: boolean; readonly draining: boolean }
  readonly nats: { readonly connected: boolean; readonly version: string }
  readonly streams: ReadonlyArray<StreamStatus>
}

export interface ClusterOptions {
  /** Gateway processes (default 3). */
  readonly gateways?: number
  /** Extra HOLDOVER_* variables for every gateway. */
  readonly gatewayEnv?: Record<string, string>
}

export interface Cluster {
  readonly secret: string
  readonly image: string
  readonly nats: ReadonlyArray<NatsNode>
  readonly gateways: ReadonlyArray<GatewayNode>
  /** Gateways whose process is up (a load balancer's view, without health checks). */
  readonly liveGateways: () => ReadonlyArray<GatewayNode>
  readonly randomGateway: () => GatewayNode | undefined
  readonly token: (sub: string, scopes: TokenOptions["scopes"]) => Promise<string>
  /** GET /v1/status (admin) through the first live gateway that answers. */
  readonly status: () => Promise<GatewayStatus>
  /** The NATS node that leads a priority's stream (GET /v1/status → streams[].cluster.leader). */
  readonly streamLeader: (priority?: Priority) => Promise<NatsNode>
  /**
   * Every running node healthy, every stream with a leader and its replicas on running nodes
   * current, every live gateway ready.
   */
  readonly waitSettled: (timeoutMs?: number) => Promise<void>
  /** The last lines of every gateway's log, for failure messages. */
  readonly gatewayLogs: (lines?: number) => string
  readonly stop: () => Promise<void>
}

export const startCluster = async (options: ClusterOptions = {}): Promise<Cluster> => {
  sweepStaleRuns()
  const image = natsImage()
  const secret = randomBytes(24).toString("base64url")
  const network = await new Network().start()
  liveNetworks.add(network.getId())
  writeLedger()
  const nats: Array<NatsNode> = []
  const gateways: Array<GatewayNode> = []
  const containers = new Set<string>()
  let adminToken: string | undefined

  const stop = async () => {
    await Promise.allSettled(gateways.map((gateway) => gateway.kill()))
    const client = await getContainerRuntimeClient()
    await Promise.allSettled(
      [...containers].map(async (id) => {
        await client.container.getById(id).remove({ force: true, v: true })
        liveContainers.delete(id)
      }),
    )
    await network.stop().catch(() => undefined)
    liveNetworks.delete(network.getId())
    writeLedger()
  }

  const token = (sub: string, scopes: TokenOptions["scopes"]) =>
    mintToken(secret, { sub, scopes, ttlSeconds: 3_600 })

  const status = async (): Promise<GatewayStatus> => {
    adminToken ??= await token("cluster-admin", ["admin"])
    let last: unknown
    for (const gateway of gateways.filter((g) => g.alive())) {
      try {
        const response = await fetch(`${gateway.url}/v1/status`, {
          headers: { Authorization: `Bearer ${adminToken}` },
          signal: AbortSignal.timeout(5_000),
        })
        if (response.ok) return (await response.json()) as GatewayStatus
        last = `${response.status} ${await response.text()}`
      } catch (error) {
        last = error
      }
    }
    throw new Error(`no gateway answered GET /v1/status: ${String(last)}`)
  }

  const cluster: Cluster = {
    secret,
    image: image.name,
    nats,
    gateways,
    liveGateways: () => gateways.filter((gateway) => gateway.alive()),
    randomGateway: () => {
      const live = gateways.filter((gateway) => gateway.alive())
      return live[Math.floor(Math.random() * live.length)]
    },
    token,
    status,
    streamLeader: async (priority = "critical") => {
      const stream = (await status()).streams.find((s) => s.priority === priority)
      const leader = nats.find((node) => node.name === stream?.cluster?.leader)
      if (!leader) throw new Error(`no leader known for the ${priority} stream: ${JSON.stringify(stream)}`)
      return leader
    },
    waitSettled: async (timeoutMs = 60_000) => {
      let last = ""
      try {
        await waitUntil(
          "the NATS cluster and the gateways are settled",
          async () => {
            const running = nats.filter((node) => node.state() === "running")
            if (!(await Promise.all(running.map((node) => node.healthy()))).every(Boolean)) {
              last = "a NATS node is not healthy"
              return false
            }
            const live = gateways.filter((g) => g.alive())
            const ready = await Promise.all(live.map((g) => httpOk(`${g.url}/readyz`)))
            if (!ready.every(Boolean)) {
              last = "a gateway is not ready"
              return false
            }
            const current = await status().catch(() => undefined)
            const up = new Set(nats.filter((node) => node.state() === "running").map((node) => node.name))
            const settled = current?.streams.every(
              (s) =>
                s.cluster?.leader !== undefined &&
                s.cluster.replicas.every((r) => r.current || !up.has(r.name)),
            )
            last = JSON.stringify(current?.streams.map((s) => s.cluster))
            return settled === true && current?.streams.length === 4
          },
          timeoutMs,
          500,
        )
      } catch (error) {
        const nodes = await Promise.all(
          nats.map(async (node) => {
            const health = await fetch(`${node.monitorUrl}/healthz?js-server-only=true`, {
              signal: AbortSignal.timeout(1_500),
            }).then(
              async (response) => `${response.status} ${await response.text()}`,
              (cause: unknown) => String(cause),
            )
            return `${node.name} (${node.state()}): ${health.trim()}`
          }),
        )
        throw new Error(`${String(error)}; last: ${last}; nodes: ${nodes.join(" | ")}`, { cause: error })
      }
    },
    gatewayLogs: (lines = 15) =>
      gateways
        .map(
          (g) =>
            `gateway ${g.index} (${g.alive() ? "up" : "down"}):\n  ${g.logs().slice(-lines).join("\n  ")}`,
        )
        .join("\n"),
    stop,
  }

  try {
    const size = 3
    nats.push(
      ...(await Promise.all(
        Array.from({ length: size }, (_, i) => startNatsNode(network, i, size, image, containers)),
      )),
    )
    await waitUntil(
      "every NATS node reports JetStream healthy",
      async () => (await Promise.all(nats.map((node) => node.healthy()))).every(Boolean),
      60_000,
    )
    const env: Record<string, string> = {
      HOLDOVER_NATS_URL: nats.map((node) => node.url).join(","),
      HOLDOVER_JWT_SECRET: secret,
      HOLDOVER_STREAM_REPLICAS: "3",
      // Debug traces every message (stored, sent, acked): the checker prints a lost one's trace.
      HOLDOVER_LOG_LEVEL: process.env["HOLDOVER_CLUSTER_LOG_LEVEL"] ?? "Info",
      HOLDOVER_DRAIN_TIMEOUT: "5s",
      // Producers here are a test harness on one machine: no per-producer rate limit, and queues
      // deep enough that no overflow policy evicts what a scenario counts on.
      HOLDOVER_PUBLISH_RATE: "100000",
      HOLDOVER_PUBLISH_BURST: "100000",
      HOLDOVER_HIGH_CAPACITY: "10000",
      HOLDOVER_NORMAL_CAPACITY: "10000",
      HOLDOVER_LOW_CAPACITY: "10000",
      ...options.gatewayEnv,
    }
    // The first node creates the streams; the others only find them.
    gateways.push(await makeGateway(0, env))
    const more = options.gateways ?? 3
    gateways.push(...(await Promise.all(Array.from({ length: more - 1 }, (_, i) => makeGateway(i + 1, env)))))
    await cluster.waitSettled()
  } catch (error) {
    await stop()
    throw error
  }
  log(
    `cluster up: ${image.name}, nats ${nats.map((n) => n.url).join(" ")}, gateways ${gateways.map((g) => g.url).join(" ")}`,
  )
  return cluster
}
