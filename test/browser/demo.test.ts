// The demo page (apps/gateway/demo) in a real headless Chromium (test/src/browser.ts) against a
// real gateway process serving the page and a real nats-server. The page uses the SDK's browser
// bundle, which is built here with Vite when it is missing or older than the SDK's sources.
import { spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { freePort, type RunningGateway, type RunningNats } from "@holdover/local-nats"
import type { Priority } from "@holdover/protocol"
import type { BrowserContext, Page } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { launchChromium, skipWithoutChromium } from "../src/browser.ts"
import { gateway, nats, token, unique, waitUntil } from "../src/support.ts"

const skip = skipWithoutChromium("the browser test of the demo page")

const root = fileURLToPath(new URL("../../", import.meta.url))
const bundle = join(root, "apps/gateway/demo/dist/holdover-client.js")

const newestMtime = (dir: string): number =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .reduce((newest, entry) => Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs), 0)

/** Builds the SDK's browser bundle unless it is newer than every source file it is made of. */
const ensureBundle = () => {
  const sources = Math.max(
    newestMtime(join(root, "libs/client/src")),
    newestMtime(join(root, "libs/protocol/src")),
  )
  if (existsSync(bundle) && statSync(bundle).mtimeMs > sources) return
  const vite = join(root, "node_modules/vite/bin/vite.js")
  const build = spawnSync(process.execPath, [vite, "build", "--config", "vite.browser.config.ts"], {
    cwd: join(root, "libs/client"),
    encoding: "utf8",
    timeout: 120_000,
  })
  if (build.status !== 0)
    throw new Error(`the browser bundle did not build:\n${build.stdout}\n${build.stderr}`)
}

const text = (page: Page, selector: string) => page.locator(selector).innerText()

/** Full-page screenshots go to HOLDOVER_SCREENSHOT_DIR when it is set (kept), else to the scratch dir. */
let scratch: string
const screenshot = async (page: Page, name: string) => {
  const dir = process.env["HOLDOVER_SCREENSHOT_DIR"] ?? scratch
  await page.screenshot({ path: join(dir, name), fullPage: true })
}

/** Waits until the element's text is `want` (the page updates it asynchronously). */
const waitForText = async (page: Page, selector: string, want: string, timeoutMs = 20_000) =>
  waitUntil(
    `${selector} reads "${want}"`,
    async () => (await text(page, selector)).trim() === want,
    timeoutMs,
  )

describe.skipIf(skip)("the demo page in headless Chromium", () => {
  let server: RunningNats
  let node: RunningGateway
  let context: BrowserContext

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), "holdover-browser-"))
    ensureBundle()
    server = await nats()
    const port = await freePort()
    node = await gateway(server, {
      HOLDOVER_PORT: String(port),
      HOLDOVER_DEMO: "on",
      HOLDOVER_ALLOWED_ORIGINS: `http://127.0.0.1:${port}`,
    })
    context = await launchChromium(scratch)
  }, 180_000)
  afterAll(async () => {
    await context?.close()
    await node?.stop()
    await server?.stop()
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true })
  })

  it("hands the backlog over critical→high→normal→low after going back online, without the expired message, and tells the story", async () => {
    const sub = unique("dee")
    const page = await context.newPage()
    const pageErrors: Array<string> = []
    page.on("pageerror", (error) => pageErrors.push(error.message))
    page.setDefaultTimeout(20_000)
    await page.goto(`${node.url}/demo#token=${await token(sub)}`)
    await waitForText(page, "#state", "open")
    expect(await text(page, "#recipient")).toBe(sub)

    await page.getByRole("button", { name: "Go offline" }).click()
    await waitForText(page, "#state", "offline")

    // Posted from the page's form, deliberately out of priority order; one expires while offline.
    const posts: Array<{ priority: Priority; payload: string; ttlMs: number }> = [
      { priority: "low", payload: "low 1", ttlMs: 300_000 },
      { priority: "normal", payload: "normal 1", ttlMs: 300_000 },
      { priority: "high", payload: "high, gone before you are back", ttlMs: 1_500 },
      { priority: "high", payload: "high 1", ttlMs: 300_000 },
      { priority: "critical", payload: "critical 1", ttlMs: 300_000 },
      { priority: "low", payload: "low 2", ttlMs: 300_000 },
      { priority: "normal", payload: "normal 2", ttlMs: 300_000 },
    ]
    let shortLivedUntil = 0
    for (const post of posts) {
      const before = await text(page, "#sent")
      await page.getByLabel("Priority").selectOption(post.priority)
      await page.getByLabel("TTL in ms").fill(String(post.ttlMs))
      await page.getByLabel("Payload").fill(JSON.stringify(post.payload))
      const posted = Date.now()
      await page.getByRole("button", { name: "Post" }).click()
      await waitUntil("the page shows the post's answer", async () => (await text(page, "#sent")) !== before)
      expect(await text(page, "#sent")).toMatch(
        new RegExp(`^${post.priority} message m_\\S+ for ${sub}: queued`),
      )
      if (post.ttlMs < 10_000) shortLivedUntil = posted + post.ttlMs
    }
    // nats-server 2.9 has no per-message TTL: the expired message still counts until a session meets it.
    await waitForText(page, "#depth-critical", "1")
    await waitForText(page, "#depth-high", "2")
    await waitForText(page, "#depth-normal", "2")
    await waitForText(page, "#depth-low", "2")
    expect(await page.locator("#messages li.message").count()).toBe(0)
    expect(await page.locator("#posted li .payload").allInnerTexts()).toEqual(
      posts.map((post) => JSON.stringify(post.payload)),
    )
    await waitUntil("the short TTL has passed", () => Date.now() > shortLivedUntil + 250, 10_000)
    await screenshot(page, "demo-1-offline-before-reconnect.png")

    await page.getByRole("button", { name: "Go online" }).click()
    await waitForText(page, "#state", "open")
    await waitUntil(
      "six messages are shown",
      async () => (await page.locator("#messages li.message").count()) >= 6,
    )
    for (const priority of ["critical", "high", "normal", "low"])
      await waitForText(page, `#depth-${priority}`, "0")

    const shown = await page.locator("#messages li.message").evaluateAll((items) =>
      items.map((item) => ({
        priority: item.querySelector(".priority")?.textContent,
        payload: item.querySelector(".payload")?.textContent,
        post: item.querySelector(".sent-as")?.textContent,
        redelivered: item.querySelector(".redelivered") !== null,
        first: item.querySelector(".first") !== null,
        meta: item.querySelector(".meta")?.textContent ?? "",
      })),
    )
    const postNumber = (payload: string) => `post #${posts.findIndex((post) => post.payload === payload) + 1}`
    expect(shown.map(({ meta: _, ...rest }) => rest)).toEqual(
      ["critical 1", "high 1", "normal 1", "normal 2", "low 1", "low 2"].map((payload) => ({
        priority: payload.split(" ")[0],
        payload: JSON.stringify(payload),
        post: postNumber(payload),
        redelivered: false,
        first: true,
      })),
    )
    // Times, and the expiry as a full date with its distance (5 minutes here), not a time of day.
    for (const { meta } of shown)
      expect(meta).toMatch(/^queued .+ · received .+ · expires .*\b20\d\d\b.* \(in [45] minutes\)$/)
    // The replay begins right after the marker of the session that brought it.
    const lines = await page
      .locator("#messages li")
      .evaluateAll((items) =>
        items.map(
          (item) => `${item.className}: ${item.querySelector(".payload")?.textContent ?? item.textContent}`,
        ),
      )
    const replay = lines.findIndex((line) =>
      /^marker: .*replay of the \d+ waiting messages begins here/.test(line),
    )
    expect(replay, lines.join("\n")).toBeGreaterThan(0)
    expect(lines[replay + 1]).toBe(`message: ${JSON.stringify("critical 1")}`)
    expect(lines[0]).toMatch(/^marker: Connected at .*: nothing was waiting\.$/)
    const fates = await page.locator("#posted li .fate").allInnerTexts()
    expect(fates).toContain("received as #1")
    // The short-lived post says it expired instead of "waiting" for ever.
    expect(fates[posts.findIndex((post) => post.ttlMs < 10_000)]).toBe("expired before delivery, never sent")
    expect(await page.locator("#problem").isHidden()).toBe(true)
    await screenshot(page, "demo-2-after-reconnect.png")

    // A new token in the fragment switches the page to its recipient, without a reload.
    const other = unique("dee-other")
    const sameDocument = () =>
      page.evaluate(() => (globalThis as unknown as { stillHere?: boolean }).stillHere === true)
    await page.evaluate(() => void ((globalThis as unknown as { stillHere?: boolean }).stillHere = true))
    await page.evaluate(
      (fragment) => void ((globalThis as unknown as { location: { hash: string } }).location.hash = fragment),
      `#token=${await token(other)}`,
    )
    await waitForText(page, "#recipient", other)
    await waitForText(page, "#state", "open")
    expect(await sameDocument()).toBe(true) // no reload
    expect(await page.locator("#messages li.message").count()).toBe(0) // the other recipient's view
    expect(pageErrors).toEqual([])

    // With the gateway gone the page says so in words, and marks the depth it shows as stale.
    await node.stop()
    await waitUntil("the page says the gateway does not answer", async () =>
      /the gateway does not answer/.test(await text(page, "#depth-note")),
    )
    expect(await text(page, "#depth-note")).toMatch(/^Queue depth as of .+: the gateway does not answer/)
    expect(await page.locator("#queue.stale").count()).toBe(1)
    await screenshot(page, "demo-3-gateway-stopped.png")
    expect(pageErrors).toEqual([])
    await page.close()
  }, 120_000)
})
