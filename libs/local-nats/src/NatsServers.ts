// Which nats-server to run, and getting one: the pinned current version (deploy/nats-server.version)
// built from its Go module into the user cache (scripts/install-nats-server.sh), a binary on PATH
// or in a system location, Debian's package (apt, as root), Docker, or the official release
// archive (ReleaseArchive.ts). Three callers, three orders: the tests and benchmarks
// (locateNatsServer: the pinned server first), the compatibility suites (locateFloorNatsServer:
// 2.9) and `npm start` (chooseStartServer: the best server it can get, README "Quick start").
// Plain Errors that say what to install: this runs before any Effect runtime exists.
import { spawnSync } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { homedir } from "node:os"
import { delimiter, dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import type { NatsLauncher } from "./LocalNats.ts"
import { installReleaseArchive } from "./ReleaseArchive.ts"

const INSTALL_HINT = [
  "Holdover needs nats-server (2.9 or newer; 2.10+ for clusters) with JetStream.",
  "Install one of:",
  "  with Go:        scripts/install-nats-server.sh  (the pinned version, into ~/.cache/holdover)",
  "  Debian/Ubuntu:  sudo apt-get install nats-server",
  "  macOS:          brew install nats-server",
  "  any OS:         a release binary from the NATS project, put on PATH as nats-server",
  "  or Docker:      a running Docker engine (the official `nats` image is used)",
].join("\n")

const SYSTEM_LOCATIONS = ["/usr/sbin/nats-server", "/usr/local/bin/nats-server", "/usr/bin/nats-server"]

const repositoryRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..")

/** The nats-server version this project pins for development, CI and the manifests. */
export const pinnedNatsVersion = (): string =>
  readFileSync(join(repositoryRoot, "deploy", "nats-server.version"), "utf8").trim()

/** Where scripts/install-nats-server.sh puts the pinned binary. */
export const pinnedNatsPath = (): string => {
  const cache =
    process.env["HOLDOVER_CACHE_DIR"] ??
    join(process.env["XDG_CACHE_HOME"] ?? join(homedir(), ".cache"), "holdover")
  return join(cache, "nats-server", `v${pinnedNatsVersion()}`, "nats-server")
}

const versionOf = (path: string): string | undefined => {
  const out = spawnSync(path, ["--version"], { encoding: "utf8" })
  if (out.status !== 0) return undefined
  return /v?(\d+\.\d+\.\d+)/.exec(out.stdout)?.[1]
}

/** Compares dotted versions numerically: negative when a < b. */
export const compareVersions = (a: string, b: string): number => {
  const pa = a.split(".").map(Number)
  const pb = b.split(".").map(Number)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

const binaryAt = (path: string): Extract<NatsLauncher, { kind: "binary" }> | undefined => {
  if (!existsSync(path)) return undefined
  const version = versionOf(path)
  return version ? { kind: "binary", path, version } : undefined
}

const candidatePaths = (): Array<string> => [
  ...(process.env["PATH"] ?? "").split(delimiter).map((dir) => join(dir, "nats-server")),
  ...SYSTEM_LOCATIONS,
]

/** Every nats-server on PATH or in a system location, with its version, in that order. */
const installedBinaries = (): Array<Extract<NatsLauncher, { kind: "binary" }>> =>
  [...new Set(candidatePaths())].flatMap((path) => binaryAt(path) ?? [])

const hasGo = (): boolean => spawnSync("go", ["version"], { stdio: "ignore" }).status === 0

/** Builds the pinned nats-server from its Go module (scripts/install-nats-server.sh). */
const installPinned = (log: (line: string) => void): NatsLauncher | undefined => {
  log(`installing the pinned nats-server v${pinnedNatsVersion()} from its Go module…`)
  const script = join(repositoryRoot, "scripts", "install-nats-server.sh")
  const run = spawnSync("bash", [script], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] })
  return run.status === 0 ? binaryAt(run.stdout.trim()) : undefined
}

/**
 * The compatibility-floor server (nats-server 2.9, what Debian 12's package gives) for the
 * compatibility suites: HOLDOVER_NATS_FLOOR_BIN, else a 2.9 binary on PATH or in a system location.
 */
export const locateFloorNatsServer = (): Extract<NatsLauncher, { kind: "binary" }> | undefined => {
  const explicit = process.env["HOLDOVER_NATS_FLOOR_BIN"]
  if (explicit) return binaryAt(explicit)
  return installedBinaries().find((found) => compareVersions(found.version, "2.10.0") < 0)
}

export const dockerWorks = (): boolean => spawnSync("docker", ["info"], { stdio: "ignore" }).status === 0

const canApt = (): boolean =>
  process.platform === "linux" &&
  typeof process.getuid === "function" &&
  process.getuid() === 0 &&
  existsSync("/usr/bin/apt-get")

const aptInstall = (log: (line: string) => void): boolean => {
  log("nats-server not found: installing it with apt-get (Debian/Ubuntu, running as root)…")
  const install = () =>
    spawnSync("apt-get", ["install", "-y", "nats-server"], {
      stdio: "inherit",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    }).status === 0
  if (install()) return true
  spawnSync("apt-get", ["update"], { stdio: "inherit" })
  return install()
}

/**
 * Finds a way to run nats-server: HOLDOVER_NATS_SERVER_BIN; the pinned version in the user cache;
 * else, when `install` is set and Go is there, installs the pinned version; else a binary on PATH
 * or in a system location; else, when `install` is set and this is Debian/Ubuntu as root, apt-get
 * installs Debian's; else Docker. Throws with install instructions when there is none.
 */
export const locateNatsServer = (
  options: { readonly install?: boolean; readonly log?: (line: string) => void } = {},
): NatsLauncher => {
  const log = options.log ?? ((line: string) => console.error(line))
  const explicit = process.env["HOLDOVER_NATS_SERVER_BIN"]
  const pinned = binaryAt(explicit ?? pinnedNatsPath())
  if (pinned) return pinned
  if (!explicit && options.install && hasGo()) {
    const installed = installPinned(log)
    if (installed) return installed
  }
  const found = installedBinaries()[0]
  if (found) return found
  if (options.install && canApt() && aptInstall(log)) {
    const installed = installedBinaries()[0]
    if (installed) return installed
  }
  if (dockerWorks())
    return {
      kind: "docker",
      image: process.env["HOLDOVER_NATS_IMAGE"] ?? `nats:${pinnedNatsVersion()}-alpine`,
    }
  throw new Error(`nats-server was not found on PATH, and Docker is not available.\n${INSTALL_HINT}`)
}

/** What `npm start` runs, how it got it, and whether that server is fit for clusters. */
export interface StartServer {
  readonly launcher: NatsLauncher
  readonly source: string
  readonly clusterReady: boolean
}

const modern = (launcher: NatsLauncher | undefined): launcher is Extract<NatsLauncher, { kind: "binary" }> =>
  launcher?.kind === "binary" && compareVersions(launcher.version, "2.10.0") >= 0

const dockerImageAvailable = (image: string, log: (line: string) => void): boolean => {
  if (spawnSync("docker", ["image", "inspect", image], { stdio: "ignore" }).status === 0) return true
  log(`pulling ${image} …`)
  return spawnSync("docker", ["pull", "-q", image], { stdio: "ignore", timeout: 180_000 }).status === 0
}

/**
 * The best nats-server `npm start` can get, in this order: HOLDOVER_NATS_SERVER_BIN; the pinned
 * version already installed (user cache, or a release archive cached under `dataDir`); a
 * nats-server 2.10+ on PATH; Docker with the pinned official image; the pinned release archive
 * (downloaded, checksum-verified, cached under `dataDir`); the pinned version built with Go; an
 * older nats-server (PATH, or Debian's package installed with apt as root) — fine for one
 * server, and said to be unfit for clusters. HOLDOVER_NATS_DOCKER=off skips Docker.
 */
export const chooseStartServer = async (options: {
  readonly dataDir: string
  readonly log: (line: string) => void
}): Promise<StartServer> => {
  const { log } = options
  const version = pinnedNatsVersion()
  const pick = (launcher: NatsLauncher, source: string): StartServer => ({
    launcher,
    source,
    clusterReady: launcher.kind === "docker" || modern(launcher),
  })
  const explicit = process.env["HOLDOVER_NATS_SERVER_BIN"]
  const fromEnv = explicit ? binaryAt(explicit) : undefined
  if (fromEnv) return pick(fromEnv, "HOLDOVER_NATS_SERVER_BIN")
  const archiveDir = join(options.dataDir, "nats-server", `v${version}`)
  const cached = binaryAt(pinnedNatsPath()) ?? binaryAt(join(archiveDir, "nats-server"))
  if (cached) return pick(cached, "the pinned version, installed")
  const installed = installedBinaries()
  const onPath = installed.find(modern)
  if (onPath) return pick(onPath, "PATH")
  if (!/^(off|false|0)$/i.test(process.env["HOLDOVER_NATS_DOCKER"] ?? "on") && dockerWorks()) {
    const image = `nats:${version}-alpine`
    if (dockerImageAvailable(image, log)) return pick({ kind: "docker", image }, "Docker")
    log(`Docker cannot get ${image}; trying the release archive`)
  }
  try {
    const path = await installReleaseArchive({ version, dir: archiveDir, log })
    const installed = binaryAt(path)
    if (installed) return pick(installed, "the official release archive")
  } catch (error) {
    log(`the release archive is not available: ${error instanceof Error ? error.message : String(error)}`)
  }
  if (hasGo()) {
    const built = installPinned(log)
    if (built) return pick(built, "built from its Go module")
  }
  const older = installed[0] ?? (canApt() && aptInstall(log) ? installedBinaries()[0] : undefined)
  if (older) return pick(older, "an older nats-server")
  throw new Error(`no nats-server could be found or installed.\n${INSTALL_HINT}`)
}
