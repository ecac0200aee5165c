// The SDK as its users get it: `npm pack` of @holdover/client, installed from the tarball into a
// fresh project outside the monorepo (no workspace, no @holdover/source condition), then the two
// examples of libs/client/README.md, extracted verbatim (only the gateway address and the
// recipient swapped for this test's), run against a real gateway: the Node example under the
// host's Node 20 and under Node 24, the browser example bundled by Vite and run in headless
// Chromium. The package's type declarations are checked by tsc from the same fresh project.
import { execFileSync, spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { createServer, type Server } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { freePort, type RunningGateway, type RunningNats } from "@holdover/local-nats"
import type { BrowserContext } from "playwright-core"
import { build } from "vite"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { launchChromium, skipWithoutChromium } from "../src/browser.ts"
import { gateway, nats, producer, token, unique, waitUntil, type Producer } from "../src/support.ts"

const root = fileURLToPath(new URL("../../", import.meta.url))
const readme = readFileSync(join(root, "libs/client/README.md"), "utf8")
const node24 = join(root, "node_modules/node/bin/node")
const hostNode = "/usr/bin/node"
const skipBrowser = skipWithoutChromium("the SDK package's browser example")

/** The README's example under `heading`: the first ```js block after it. */
const example = (heading: string): string => {
  const section = readme.slice(readme.indexOf(`## ${heading}`))
  const code = /```js\n([\s\S]*?)```/.exec(section)?.[1]
  if (code === undefined) throw new Error(`no js example under "## ${heading}" in libs/client/README.md`)
  return code
}

/** The example pointed at this test's gateway and recipient. */
const localised = (code: string, wsUrl: string, recipient: string) => {
  expect(code).toContain("ws://127.0.0.1:8080/v1/ws")
  return code.replaceAll("ws://127.0.0.1:8080/v1/ws", wsUrl).replaceAll('"demo"', JSON.stringify(recipient))
}

const run = (command: string, args: ReadonlyArray<string>, cwd: string) =>
  execFileSync(command, args, {
    cwd,
    encoding: "utf8",
    timeout: 240_000,
    env: { ...process.env, PATH: `${join(root, "node_modules/.bin")}:${process.env["PATH"] ?? ""}` },
  })

describe("@holdover/client from its npm tarball", () => {
  let scratch: string
  let app: string
  let server: RunningNats
  let node: RunningGateway
  let producerApi: Producer
  let pagePort: number

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), "holdover-sdk-"))
    run("npm", ["pack", "-w", "@holdover/client", "--pack-destination", scratch, "--silent"], root)
    const tarball = readdirSync(scratch).find((name) => name.endsWith(".tgz"))
    if (tarball === undefined) throw new Error("npm pack wrote no tarball")
    app = join(scratch, "app")
    mkdirSync(app)
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }))
    run(
      "npm",
      ["install", join(scratch, tarball), "ws@8.23.0", "--prefer-offline", "--no-audit", "--no-fund"],
      app,
    )
    server = await nats()
    pagePort = await freePort()
    node = await gateway(server, { HOLDOVER_ALLOWED_ORIGINS: `http://127.0.0.1:${pagePort}` })
    producerApi = await producer(() => node.url)
  }, 300_000)
  afterAll(async () => {
    await node?.stop()
    await server?.stop()
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true })
  })

  it("ships a bundle, its declarations and nothing of the workspace", () => {
    const installed = join(app, "node_modules/@holdover/client")
    const manifest = JSON.parse(readFileSync(join(installed, "package.json"), "utf8")) as {
      dependencies: Record<string, string>
    }
    expect(Object.keys(manifest.dependencies)).toEqual(["effect"])
    const shipped = readdirSync(installed, { recursive: true }).map(String)
    expect(shipped).toContain("README.md")
    expect(shipped).toContain(join("dist", "npm", "index.js"))
    expect(shipped).toContain(join("dist", "npm", "index.d.ts"))
    expect(shipped.filter((file) => file.startsWith("src"))).toEqual([])
    const bundle = readFileSync(join(installed, "dist/npm/index.js"), "utf8")
    expect(bundle).not.toContain("@holdover/")
  })

  it("type-checks against its declarations under nodenext resolution", () => {
    writeFileSync(
      join(app, "check.ts"),
      [
        'import { createClient, HoldoverError, type HoldoverMessage } from "@holdover/client"',
        'const client = createClient({ url: "ws://x/v1/ws", token: "t", onMessage: (m: HoldoverMessage) => m.priority })',
        'const state: "connecting" | "open" | "reconnecting" | "closed" = client.state',
        "// @ts-expect-error a url is a string",
        "createClient({ url: 1, token: 't', onMessage: () => {} })",
        'export const checked = [state, client.send("a", 1, { priority: "high" }), HoldoverError]',
      ].join("\n"),
    )
    const tsc = join(root, "node_modules/typescript/bin/tsc")
    run(
      node24,
      [
        tsc,
        "--noEmit",
        "--strict",
        "--module",
        "nodenext",
        "--moduleResolution",
        "nodenext",
        "--lib",
        "es2022,dom",
        "check.ts",
      ],
      app,
    )
  })

  for (const [name, nodeBinary] of [
    ["Node 20 (the host's)", hostNode],
    ["Node 24", node24],
  ] as const)
    it(`runs the README's Node example under ${name}: it connects, receives what was queued, sends and closes on SIGINT`, async () => {
      const version = execFileSync(nodeBinary, ["--version"], { encoding: "utf8" }).trim()
      expect(version).toMatch(name.includes("20") ? /^v20\./ : /^v24\./)
      const recipient = unique("readme-node")
      await producerApi.post({ to: recipient, priority: "critical", payload: { text: "queued before" } })
      writeFileSync(join(app, "node-example.js"), localised(example("In Node.js"), node.wsUrl, recipient))
      const child = spawn(nodeBinary, ["node-example.js"], {
        cwd: app,
        env: { PATH: process.env["PATH"] ?? "", HOLDOVER_TOKEN: await token(recipient) },
        stdio: ["ignore", "pipe", "pipe"],
      })
      let output = ""
      child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
      child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
      const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)))
      try {
        await waitUntil(
          "the example prints what it received and sent",
          () =>
            output.includes(`connected as ${recipient}`) &&
            output.includes("critical { text: 'queued before' }") &&
            /sent \S+: queued/.test(output) &&
            output.includes("high { text: 'hello from Node' }"),
          30_000,
        )
        await waitUntil("the queue is empty (everything acked)", async () => {
          const depth = await producerApi.depth(recipient)
          return Object.values(depth).every((count) => count === 0)
        })
      } catch (error) {
        throw new Error(`${String(error)}\nthe example printed:\n${output}`, { cause: error })
      } finally {
        child.kill("SIGINT")
        // An example that does not stop on SIGINT fails the check below; it is not left running.
        await waitUntil("the example exits on SIGINT", () => child.exitCode !== null, 10_000).catch(() =>
          child.kill("SIGKILL"),
        )
      }
      expect(await exited, output).toBe(0)
    }, 60_000)

  describe.skipIf(skipBrowser)("in a browser", () => {
    let page: Server
    let context: BrowserContext

    beforeAll(async () => {
      writeFileSync(join(app, "index.html"), '<!doctype html><script type="module" src="./main.js"></script>')
      const recipient = "readme-browser"
      writeFileSync(join(app, "main.js"), localised(example("In a browser"), node.wsUrl, recipient))
      await build({ root: app, configFile: false, logLevel: "warn", build: { outDir: "dist" } })
      const dist = join(app, "dist")
      page = createServer((request, response) => {
        const path = request.url === "/" ? "/index.html" : (request.url ?? "/").split("?")[0]!
        try {
          const body = readFileSync(join(dist, path.replaceAll("..", "")))
          response.setHeader("Content-Type", path.endsWith(".js") ? "text/javascript" : "text/html")
          response.end(body)
        } catch {
          response.statusCode = 404
          response.end()
        }
      })
      await new Promise<void>((listening) => page.listen(pagePort, "127.0.0.1", listening))
      context = await launchChromium(scratch)
    }, 120_000)
    afterAll(async () => {
      await context?.close()
      page?.close()
    })

    it("runs the README's browser example from a Vite bundle: it connects, sends, receives and acks", async () => {
      const recipient = "readme-browser"
      await producerApi.post({ to: recipient, priority: "high", payload: { text: "queued before" } })
      const tab = await context.newPage()
      const errors: Array<string> = []
      tab.on("pageerror", (error) => errors.push(error.message))
      await tab.goto(`http://127.0.0.1:${pagePort}/#token=${await token(recipient)}`)
      const lines = () => tab.locator("p").allInnerTexts()
      await waitUntil(
        "the page shows the connection, the queued message, the send and its echo",
        async () => {
          const shown = await lines()
          return (
            shown.includes(`connected as ${recipient}`) &&
            shown.includes('high: {"text":"queued before"}') &&
            shown.some((line) => /^sent \S+: queued$/.test(line)) &&
            shown.includes('normal: {"text":"hello from a browser"}')
          )
        },
        30_000,
      )
      await waitUntil("the queue is empty (everything acked)", async () => {
        const depth = await producerApi.depth(recipient)
        return Object.values(depth).every((count) => count === 0)
      })
      expect(errors).toEqual([])
      await tab.close()
    }, 60_000)
  })
})
