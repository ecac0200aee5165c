// `npm start` getting its nats-server from the official release archive, as on a user's machine
// with internet and neither a current nats-server nor Docker: a local HTTP server stands in for the
// NATS project's release downloads, serving an archive (and SHA256SUMS) made from the installed
// pinned binary, laid out as the real releases are.
import { spawn, spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs"
import { createServer, type Server } from "node:http"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import {
  freePort,
  installReleaseArchive,
  pinnedNatsVersion,
  releaseAsset,
  waitUntil,
} from "@holdover/local-nats"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..")
const launcher = inject("natsLauncher")
const version = pinnedNatsVersion()
const asset = releaseAsset(version)
const runnable = launcher.kind === "binary" && launcher.version === version && asset !== undefined

describe.skipIf(!runnable)("npm start with the official release archive", () => {
  let work: string
  let server: Server
  let base: string
  const files = new Map<string, Buffer>()

  beforeAll(async () => {
    if (launcher.kind !== "binary" || asset === undefined) return
    work = mkdtempSync(join(tmpdir(), "holdover-release-"))
    const folder = asset.replace(/\.tar\.gz$/, "")
    mkdirSync(join(work, folder))
    copyFileSync(launcher.path, join(work, folder, "nats-server"))
    writeFileSync(join(work, folder, "README.md"), "nats-server\n")
    const tar = spawnSync("tar", ["-czf", join(work, asset), "-C", work, folder], { encoding: "utf8" })
    expect(tar.status, tar.stderr).toBe(0)
    const archive = readFileSync(join(work, asset))
    const sum = createHash("sha256").update(archive).digest("hex")
    files.set(`/v${version}/${asset}`, archive)
    files.set(`/v${version}/SHA256SUMS`, Buffer.from(`${"0".repeat(64)}  other.zip\n${sum}  ${asset}\n`))
    // The same archive under a release whose checksum file disagrees.
    files.set(`/v0.0.0-bad/${asset.replace(version, "0.0.0-bad")}`, archive)
    files.set(
      `/v0.0.0-bad/SHA256SUMS`,
      Buffer.from(`${"1".repeat(64)}  ${asset.replace(version, "0.0.0-bad")}\n`),
    )
    server = createServer((request, response) => {
      const body = files.get(request.url ?? "")
      response.writeHead(body ? 200 : 404).end(body ?? "not found")
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const address = server.address()
    base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`
  })
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve))
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it("installs the archive only when it matches the release's SHA-256, and reuses it", async () => {
    const dir = join(work, "install")
    const binary = await installReleaseArchive({ version, dir, baseUrl: base })
    expect(spawnSync(binary, ["--version"], { encoding: "utf8" }).stdout).toContain(`v${version}`)
    files.delete(`/v${version}/${asset}`) // a second call must not download again
    expect(await installReleaseArchive({ version, dir, baseUrl: base })).toBe(binary)

    const badDir = join(work, "bad")
    await expect(installReleaseArchive({ version: "0.0.0-bad", dir: badDir, baseUrl: base })).rejects.toThrow(
      /does not match/,
    )
    expect(existsSync(join(badDir, "nats-server"))).toBe(false)
  })

  it("starts Holdover on the release archive when nothing better is installed, and says so", async () => {
    const folder = asset!.replace(/\.tar\.gz$/, "")
    const archive = readFileSync(join(work, asset!))
    files.set(`/v${version}/${asset}`, archive)
    expect(existsSync(join(work, folder, "nats-server"))).toBe(true)
    const home = join(work, "home")
    mkdirSync(home)
    const env: Record<string, string> = {
      PATH: [dirname(process.execPath), "/usr/bin", "/bin"].join(":"),
      HOME: home,
      HOLDOVER_DATA_DIR: join(work, "data"),
      HOLDOVER_NATS_RELEASE_URL: base,
      HOLDOVER_NATS_DOCKER: "off",
      HOLDOVER_DEMO: "off",
      HOLDOVER_PORT: String(await freePort()),
    }
    const child = spawn(process.execPath, ["--conditions=@holdover/source", join(root, "scripts/start.ts")], {
      cwd: root,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve))
    try {
      await waitUntil(
        "npm start printed its banner",
        () => output.includes("Holdover is running.") || child.exitCode !== null,
        60_000,
      )
      expect(output, output).toContain("Holdover is running.")
      expect(output).toContain(`nats-server ${version} from the official release archive`)
      expect(output).toMatch(/SHA-256|sha256/)
      expect(existsSync(join(work, "data", "nats-server", `v${version}`, "nats-server"))).toBe(true)
      const gateway = /Gateway:\s+(http:\/\/\S+)/.exec(output)?.[1]
      expect((await fetch(`${gateway}/readyz`)).status).toBe(200)
    } finally {
      child.kill("SIGTERM")
      await exited
    }
  }, 90_000)
})
