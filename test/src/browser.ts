// Headless Chromium for the browser tests: playwright-core over the system's /usr/bin/chromium (no
// browser is ever downloaded). Without it the suites are skipped loudly — except with CI=true,
// where `launchChromium` fails instead.
import { existsSync } from "node:fs"
import { join } from "node:path"
import { chromium, type BrowserContext } from "playwright-core"

const chromiumPath = "/usr/bin/chromium"
const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
]

/** True when the browser suites should be skipped (no Chromium, not in CI); says so loudly. */
export const skipWithoutChromium = (what: string): boolean => {
  const skip = !existsSync(chromiumPath) && process.env["CI"] !== "true"
  if (skip)
    console.warn(
      [
        "",
        "!".repeat(80),
        `!!! SKIPPING ${what}: ${chromiumPath} is missing.`,
        "!!! Install it with `apt-get install chromium` (with CI=true this test fails instead).",
        "!".repeat(80),
        "",
      ].join("\n"),
    )
  return skip
}

/** A fresh Chromium profile in `scratch`; close the context to stop the browser. */
export const launchChromium = (scratch: string): Promise<BrowserContext> => {
  if (!existsSync(chromiumPath))
    throw new Error(
      `CI=true and ${chromiumPath} is missing: the browser test cannot run (apt-get install chromium)`,
    )
  return chromium.launchPersistentContext(join(scratch, "profile"), {
    executablePath: chromiumPath,
    headless: true,
    args: chromiumArgs,
    timeout: 60_000,
  })
}
