// `npm start`: a local Holdover — a single-node JetStream server plus one gateway on 127.0.0.1
// (HOLDOVER_HOST=0.0.0.0 exposes it to the network).
//
// Picks the best nats-server it can get (chooseStartServer: 2.10+ on PATH, Docker, the official
// release archive, a Go build, Debian's package) and says which, keeps its data in .data/nats so
// queued messages survive a restart, keeps a development JWT secret in .data/dev-secret, starts
// the gateway against them, and prints the URL, a demo token, a link to the demo page and a first
// message to send. One `npm start` per data directory: .data/start.lock holds the owner's pid
// (a second one is refused; a lock whose process is gone is taken over). The gateway's URL and
// secret go to .data/dev.env, where the `holdover` CLI of this clone looks when its environment
// names none. When 8080 is taken it says so and which URL it uses instead. The gateway's JSON
// log lines are printed as readable lines (`node apps/gateway/...` itself keeps logging JSON).
// The demo page's copy of the SDK (a Vite browser bundle), the SDK package this clone's
// `import "@holdover/client"` loads and the CLI's bundle are built first when they are missing or
// older than their sources.
// Ctrl-C (or SIGTERM) stops the gateway (it drains) and then the NATS server.
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { dirname, join } from "node:path"
import { createInterface } from "node:readline"
import { setTimeout as sleep } from "node:timers/promises"
import { fileURLToPath } from "node:url"
import { chooseStartServer, startNats, type RunningNats } from "@holdover/local-nats"
import { SignJWT } from "jose"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const dataDir = process.env["HOLDOVER_DATA_DIR"] ?? join(root, ".data")
const log = (line: string) => console.log(`[holdover] ${line}`)
const host = process.env["HOLDOVER_HOST"] ?? "127.0.0.1"
const preferredPort = Number(process.env["HOLDOVER_PORT"] ?? 8080)

/** Takes .data/start.lock, or exits when a live `npm start` holds it. */
const lockDataDir = (): string => {
  const lock = join(dataDir, "start.lock")
  const holder = existsSync(lock) ? Number(readFileSync(lock, "utf8").trim()) : Number.NaN
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0)
      return true
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === "EPERM"
    }
  }
  if (Number.isSafeInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) {
    console.error(
      `[holdover] another npm start (pid ${holder}) is using ${dataDir}: two nats-servers on one store would ` +
        "corrupt it. Stop that one (Ctrl-C in its terminal), or give this one its own data: " +
        "HOLDOVER_DATA_DIR=/tmp/holdover-2 npm start",
    )
    process.exit(1)
  }
  writeFileSync(lock, String(process.pid))
  return lock
}

/** The gateway's JSON log lines as `time LEVEL message key=value …`; other lines as they are. */
const readableLog = (line: string): string => {
  try {
    const entry = JSON.parse(line) as {
      message: unknown
      level: string
      timestamp: string
      annotations: Record<string, unknown>
    }
    const parts = Array.isArray(entry.message) ? entry.message : [entry.message]
    const fields = Object.entries({
      ...entry.annotations,
      ...parts
        .slice(1)
        .reduce((all, part) => ({ ...all, ...(typeof part === "object" ? part : { detail: part }) }), {}),
    })
      .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
      .join(" ")
    return `${entry.timestamp.slice(11, 19)} ${entry.level.padEnd(5)} ${String(parts[0])}${fields ? `  ${fields}` : ""}`
  } catch {
    return line
  }
}

const portIsFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = createServer()
    server.once("error", () => resolve(false))
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)))
  })

const freePort = async (preferred: number): Promise<number> => {
  if (await portIsFree(preferred)) return preferred
  return new Promise((resolve) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address ? address.port : preferred
      server.close(() => resolve(port))
    })
  })
}

const devSecret = (): string => {
  const file = join(dataDir, "dev-secret")
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString("base64url"), { mode: 0o600 })
  return readFileSync(file, "utf8").trim()
}

const newestMtime = (dir: string): number =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .reduce((newest, entry) => Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs), 0)

/**
 * Builds one of the SDK's outputs with `args` (run in libs/client) unless `output` is newer than
 * every source file it is made of: the demo page's browser bundle, and the package that
 * `import … from "@holdover/client"` loads in this clone (dist/npm).
 */
const buildSdk = (output: string, what: string, args: ReadonlyArray<string>) => {
  const sources = Math.max(
    newestMtime(join(root, "libs/client/src")),
    newestMtime(join(root, "libs/protocol/src")),
  )
  if (existsSync(output) && statSync(output).mtimeMs > sources) return
  log(`building ${what}`)
  const build = spawnSync(process.execPath, args, {
    cwd: join(root, "libs/client"),
    stdio: ["ignore", "ignore", "inherit"],
  })
  if (build.status !== 0) log(`${what} did not build`)
}

mkdirSync(dataDir, { recursive: true })
const lock = lockDataDir()

// Ctrl-C or SIGTERM at any point from here stops what has been started: the gateway (it drains),
// then the NATS server (one still starting is killed by local-nats' exit hook), then the lock.
let nats: RunningNats | undefined
let gateway: ChildProcess | undefined
let stopping = false
const stop = async (code: number) => {
  if (stopping) return
  stopping = true
  log("stopping…")
  const running = gateway
  if (running !== undefined && running.exitCode === null && running.signalCode === null) {
    running.kill("SIGTERM")
    await new Promise((resolve) => running.once("exit", resolve))
  }
  await nats?.stop()
  rmSync(lock, { force: true })
  log("stopped")
  process.exit(code)
}
process.on("SIGINT", () => void stop(0))
process.on("SIGTERM", () => void stop(0))
/** Start-up does not go on once a stop has begun (`stop` ends the process). */
const unlessStopping = () => (stopping ? new Promise<never>(() => {}) : Promise.resolve())
if (!/^(off|false|0)$/i.test(process.env["HOLDOVER_DEMO"] ?? "on"))
  buildSdk(
    join(root, "apps/gateway/demo/dist/holdover-client.js"),
    "the SDK's browser bundle for the demo page (vite)",
    [join(root, "node_modules/vite/bin/vite.js"), "build", "--config", "vite.browser.config.ts"],
  )
buildSdk(join(root, "libs/client/dist/npm/index.js"), "the SDK package (libs/client/dist/npm)", [
  "scripts/package.ts",
])
// Running the command once builds its bundle when it is missing or stale (apps/cli/bin/bundle.js).
spawnSync(process.execPath, [join(root, "apps/cli/bin/holdover.js"), "--version"], {
  stdio: ["ignore", "ignore", "inherit"],
})
const server = await chooseStartServer({ dataDir, log })
const { launcher } = server
log(
  launcher.kind === "binary"
    ? `nats-server ${launcher.version} from ${server.source} (${launcher.path})`
    : `nats-server in Docker (${launcher.image})`,
)
if (!server.clusterReady)
  log(
    "this nats-server is fine for one server; clusters need nats-server 2.10 or later (docs/deploying.md, 'Server versions')",
  )
nats = await startNats(launcher, { dataDir: join(dataDir, "nats"), port: await freePort(4222) })
await unlessStopping()
log(`JetStream ready at ${nats.url} (data in ${nats.dataDir})`)

const secret = devSecret()
const port = await freePort(preferredPort)
await unlessStopping()
const node = spawn(
  process.execPath,
  ["--conditions=@holdover/source", join(root, "apps/gateway/src/main.ts")],
  {
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      HOLDOVER_NATS_URL: nats.url,
      HOLDOVER_HOST: host,
      HOLDOVER_PORT: String(port),
      HOLDOVER_JWT_SECRET: secret,
      HOLDOVER_DEMO: process.env["HOLDOVER_DEMO"] ?? "on",
      HOLDOVER_ALLOWED_ORIGINS:
        process.env["HOLDOVER_ALLOWED_ORIGINS"] ?? `http://localhost:${port},http://127.0.0.1:${port}`,
    },
  },
)

gateway = node
for (const stream of [node.stdout, node.stderr])
  createInterface({ input: stream, crlfDelay: Infinity }).on("line", (line) => console.log(readableLog(line)))

node.once("exit", (code) => {
  if (!stopping) {
    log(`the gateway exited (code ${code}); stopping`)
    void stop(code ?? 1)
  }
})

const local = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host
const base = `http://${local.includes(":") ? `[${local}]` : local}:${port}`
const deadline = Date.now() + 60_000
for (;;) {
  const ready = await fetch(`${base}/readyz`).then(
    (response) => response.ok,
    () => false,
  )
  if (ready) break
  await unlessStopping()
  if (Date.now() > deadline) {
    log("the gateway did not become ready within 60 s")
    await stop(1)
  }
  await sleep(200)
}

const token = await new SignJWT({ scope: "receive publish admin" })
  .setProtectedHeader({ alg: "HS256" })
  .setSubject("demo")
  .setIssuedAt()
  .setExpirationTime("8h")
  .sign(new TextEncoder().encode(secret))

writeFileSync(join(dataDir, "dev.env"), `HOLDOVER_URL=${base}\nHOLDOVER_JWT_SECRET=${secret}\n`, {
  mode: 0o600,
})
const moved =
  port === preferredPort
    ? ""
    : `
!!! Port ${preferredPort} is taken: this gateway listens on ${port} instead. !!!
    Point other tools at it:  export HOLDOVER_URL=${base}
`
const exposure =
  host === "127.0.0.1" || host === "::1" || host === "localhost"
    ? "this machine only; HOLDOVER_HOST=0.0.0.0 npm start serves the network"
    : `listening on ${host}: reachable from the network`

console.log(`${moved}
Holdover is running.
  Gateway:    ${base}   (WebSocket: ${base.replace("http:", "ws:")}/v1/ws; ${exposure})
  NATS:       ${nats.url}

Demo page: ${base}/demo#token=${token}
  Go offline, post a few messages of mixed priorities, go online: they come back critical first.

Demo token (recipient "demo", scopes receive publish admin, valid 8 h):
  ${token}

Send a first message to "demo" (it waits in JetStream until "demo" connects):
  curl -s -X POST ${base}/v1/messages \\
    -H "Authorization: Bearer ${token}" -H "Content-Type: application/json" \\
    -d '{"to":"demo","priority":"high","payload":{"text":"hello"}}'

The holdover CLI of this clone finds this gateway and its secret on its own (${join(dataDir, "dev.env")}):
  npx holdover tail demo                 # watch what arrives for "demo"
  npx holdover send --to demo '{"text":"hi"}'
  npx holdover queue demo
Elsewhere:  export HOLDOVER_URL=${base} HOLDOVER_JWT_SECRET=$(cat ${join(dataDir, "dev-secret")})

SDK: libs/client/README.md (a browser and a Node example for ${base.replace("http:", "ws:")}/v1/ws).

Press Ctrl-C to stop.
`)
