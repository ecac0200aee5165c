// The official nats-server release archive for this OS and architecture: downloaded from the
// NATS project's releases (HOLDOVER_NATS_RELEASE_URL points elsewhere, e.g. a mirror or a test
// server), checked against the release's SHA256SUMS, unpacked into a cache directory. A binary
// whose archive did not match its checksum is never written. Plain Errors, as in LocalNats.ts:
// this runs before any Effect runtime (npm start).
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { chmodSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"

export const defaultReleaseUrl = "https://github.com/nats-io/nats-server/releases/download"

const goOs: Partial<Record<NodeJS.Platform, string>> = {
  linux: "linux",
  darwin: "darwin",
  freebsd: "freebsd",
}
const goArch: Partial<Record<string, string>> = { x64: "amd64", arm64: "arm64", arm: "arm7", ia32: "386" }

/** The release asset's name, e.g. nats-server-v2.14.10-linux-amd64.tar.gz; undefined off the usual platforms. */
export const releaseAsset = (
  version: string,
  platform: NodeJS.Platform = process.platform,
  arch: string = process.arch,
): string | undefined => {
  const os = goOs[platform]
  const cpu = goArch[arch]
  return os && cpu ? `nats-server-v${version}-${os}-${cpu}.tar.gz` : undefined
}

const fetchBytes = async (url: string, timeoutMs: number): Promise<Buffer> => {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: "follow" })
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`)
  return Buffer.from(await response.arrayBuffer())
}

/**
 * Downloads, verifies and unpacks nats-server `version` into `dir` (…/nats-server), unless a
 * binary is already there. Returns the binary's path; throws saying what failed.
 */
export const installReleaseArchive = async (options: {
  readonly version: string
  readonly dir: string
  readonly baseUrl?: string
  readonly timeoutMs?: number
  readonly log?: (line: string) => void
}): Promise<string> => {
  const binary = join(options.dir, "nats-server")
  if (existsSync(binary)) return binary
  const asset = releaseAsset(options.version)
  if (asset === undefined)
    throw new Error(`no nats-server release archive for ${process.platform}/${process.arch}`)
  const base = `${(options.baseUrl ?? process.env["HOLDOVER_NATS_RELEASE_URL"] ?? defaultReleaseUrl).replace(/\/$/, "")}/v${options.version}`
  const timeoutMs = options.timeoutMs ?? 120_000
  options.log?.(`downloading ${base}/${asset} …`)
  const [sums, archive] = await Promise.all([
    fetchBytes(`${base}/SHA256SUMS`, timeoutMs),
    fetchBytes(`${base}/${asset}`, timeoutMs),
  ])
  const expected = sums
    .toString("utf8")
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .find(([, name]) => name?.replace(/^\*/, "") === asset)?.[0]
  if (expected === undefined) throw new Error(`${base}/SHA256SUMS has no line for ${asset}`)
  const actual = createHash("sha256").update(archive).digest("hex")
  if (actual !== expected.toLowerCase())
    throw new Error(`${asset}: SHA-256 ${actual} does not match the release's ${expected}; nothing installed`)

  mkdirSync(options.dir, { recursive: true })
  const work = mkdtempSync(join(options.dir, ".unpack-"))
  try {
    writeFileSync(join(work, asset), archive)
    const untar = spawnSync("tar", ["-xzf", join(work, asset), "-C", work], { encoding: "utf8" })
    if (untar.status !== 0) throw new Error(`tar -xzf ${asset} failed: ${untar.stderr}`)
    const unpacked = join(work, asset.replace(/\.tar\.gz$/, ""), "nats-server")
    if (!existsSync(unpacked))
      throw new Error(`${asset} holds no ${asset.replace(/\.tar\.gz$/, "")}/nats-server`)
    chmodSync(unpacked, 0o755)
    renameSync(unpacked, binary)
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
  options.log?.(
    `nats-server v${options.version} verified (sha256 ${actual.slice(0, 16)}…) and installed at ${binary}`,
  )
  return binary
}
