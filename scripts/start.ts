// `npm start`: a local Holdover — a single-node JetStream server plus one gateway on localhost.
//
// Picks the best nats-server it can get (chooseStartServer: 2.10+ on PATH, Docker, the official
// release archive, a Go build, Debian's package) and says which, keeps its data in .data/nats so
// queued messages survive a restart, keeps a development JWT secret in .data/dev-secret, starts
// the gateway against them, and prints the URL, a demo token, a link to the demo page and a first
// message to send. The demo page's copy of the SDK (a Vite browser bundle) is built first when it
// is missing or older than the SDK's sources.
// Ctrl-C (or SIGTERM) stops the gateway (it drains) and then the NATS server.
import { spawn, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { dirname, join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { fileURLToPath } from "node:url"
import { chooseStartServer, startNats } from "@holdover/local-nats"
import { SignJWT } from "jose"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const dataDir = process.env["HOLDOVER_DATA_DIR"] ?? join(root, ".data")
const log = (line: string) => console.log(`[holdover] ${line}`)

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

/** The demo page imports the SDK from this bundle; rebuild it when a source file is newer. */
const buildDemoBundle = () => {
  const bundle = join(root, "apps/gateway/demo/dist/holdover-client.js")
  const sources = Math.max(
    newestMtime(join(root, "libs/client/src")),
    newestMtime(join(root, "libs/protocol/src")),
  )
  if (existsSync(bundle) && statSync(bundle).mtimeMs > sources) return
  log("building the SDK's browser bundle for the demo page (vite)")
  const vite = join(root, "node_modules/vite/bin/vite.js")
  const build = spawnSync(process.execPath, [vite, "build", "--config", "vite.browser.config.ts"], {
    cwd: join(root, "libs/client"),
    stdio: ["ignore", "ignore", "inherit"],
  })
  if (build.status !== 0) log("the browser bundle did not build: the demo page will not work")
}

mkdirSync(dataDir, { recursive: true })
if (!/^(off|false|0)$/i.test(process.env["HOLDOVER_DEMO"] ?? "on")) buildDemoBundle()
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
const nats = await startNats(launcher, { dataDir: join(dataDir, "nats"), port: await freePort(4222) })
log(`JetStream ready at ${nats.url} (data in ${nats.dataDir})`)

const secret = devSecret()
const port = await freePort(Number(process.env["HOLDOVER_PORT"] ?? 8080))
const gateway = spawn(
  process.execPath,
  ["--conditions=@holdover/source", join(root, "apps/gateway/src/main.ts")],
  {
    stdio: ["ignore", "inherit", "inherit"],
    env: {
      ...process.env,
      HOLDOVER_NATS_URL: nats.url,
      HOLDOVER_PORT: String(port),
      HOLDOVER_JWT_SECRET: secret,
      HOLDOVER_DEMO: process.env["HOLDOVER_DEMO"] ?? "on",
      HOLDOVER_ALLOWED_ORIGINS:
        process.env["HOLDOVER_ALLOWED_ORIGINS"] ?? `http://localhost:${port},http://127.0.0.1:${port}`,
    },
  },
)

let stopping = false
const stop = async (code: number) => {
  if (stopping) return
  stopping = true
  log("stopping…")
  if (gateway.exitCode === null && gateway.signalCode === null) {
    gateway.kill("SIGTERM")
    await new Promise((resolve) => gateway.once("exit", resolve))
  }
  await nats.stop()
  log("stopped")
  process.exit(code)
}
process.on("SIGINT", () => void stop(0))
process.on("SIGTERM", () => void stop(0))
gateway.once("exit", (code) => {
  if (!stopping) {
    log(`the gateway exited (code ${code}); stopping`)
    void stop(code ?? 1)
  }
})

const base = `http://127.0.0.1:${port}`
const deadline = Date.now() + 60_000
for (;;) {
  const ready = await fetch(`${base}/readyz`).then(
    (response) => response.ok,
    () => false,
  )
  if (ready) break
  if (stopping) await new Promise(() => {})
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
  .setExpirationTime("24h")
  .sign(new TextEncoder().encode(secret))

console.log(`
Holdover is running.
  Gateway:    ${base}   (WebSocket: ws://127.0.0.1:${port}/v1/ws)
  NATS:       ${nats.url}

Demo page: ${base}/demo#token=${token}

Demo token (recipient "demo", scopes receive publish admin, valid 24 h):
  ${token}

Send a first message to "demo" (it waits in JetStream until "demo" connects):
  curl -s -X POST ${base}/v1/messages \\
    -H "Authorization: Bearer ${token}" -H "Content-Type: application/json" \\
    -d '{"to":"demo","priority":"high","payload":{"text":"hello"}}'

See its queue:
  curl -s ${base}/v1/recipients/demo/queue -H "Authorization: Bearer ${token}"

Press Ctrl-C to stop.
`)
