// An independent check of the HTTP API from outside the project's own code: schemathesis (PyPI;
// .ci/run installs it into .data/venv) generates requests from the gateway's own
// /v1/openapi.json and checks every answer against it — no 5xx, documented status codes, content
// types, response schemas, 405 + Allow for undeclared methods, schema-invalid data rejected.
// `positive_data_acceptance` is left out: `ttlMs` may not exceed its priority's max age, which
// depends on the priority and the configuration and cannot be stated in the static schema, so
// schema-valid bodies with a large `ttlMs` are rightly refused (docs/protocol.md).
// Without schemathesis the test is skipped with a message (it fails under CI=true).
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { startGateway, startNats, type RunningGateway, type RunningNats } from "@holdover/local-nats"
import { mintToken } from "@holdover/protocol"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..")
const binary = process.env["HOLDOVER_SCHEMATHESIS"] ?? join(root, ".data", "venv", "bin", "schemathesis")
const available = existsSync(binary)
if (!available) {
  console.error(
    `!!! schemathesis not found at ${binary}: the OpenAPI conformance test is SKIPPED (python3 -m venv .data/venv && .data/venv/bin/pip install schemathesis)`,
  )
  if (process.env["CI"] === "true") throw new Error(`schemathesis is needed under CI=true (${binary})`)
}
const seed = Number(process.env["HOLDOVER_SCHEMATHESIS_SEED"] ?? Math.floor(Math.random() * 2 ** 31))

describe.skipIf(!available)("the HTTP API against its own OpenAPI document (schemathesis)", () => {
  let server: RunningNats
  let node: RunningGateway
  const workDir = mkdtempSync(join(tmpdir(), "holdover-schemathesis-"))
  const secret = "schemathesis-secret-0123456789"

  beforeAll(async () => {
    server = await startNats(inject("natsLauncher"))
    node = await startGateway({
      HOLDOVER_NATS_URL: server.url,
      HOLDOVER_JWT_SECRET: secret,
    })
  })
  afterAll(async () => {
    await node?.stop()
    await server?.stop()
    rmSync(workDir, { recursive: true, force: true })
  })

  it("answers every generated request as its OpenAPI document says", async () => {
    const token = await mintToken(secret, { sub: "schemathesis", scopes: ["publish", "admin", "receive"] })
    console.log(`[schemathesis] seed ${seed} (HOLDOVER_SCHEMATHESIS_SEED=${seed} replays this run)`)
    const output = await new Promise<{ code: number | null; text: string }>((resolve) => {
      const child = spawn(
        binary,
        [
          "run",
          `${node.url}/v1/openapi.json`,
          "--header",
          `Authorization: Bearer ${token}`,
          "--checks",
          "all",
          "--exclude-checks",
          "positive_data_acceptance",
          "--max-examples",
          "50",
          "--seed",
          String(seed),
          "--no-color",
        ],
        // Its cache and reports go to a directory of their own, not into the checkout.
        {
          cwd: workDir,
          env: { ...process.env, SCHEMATHESIS_TELEMETRY: "false" },
          stdio: ["ignore", "pipe", "pipe"],
        },
      )
      let text = ""
      child.stdout.on("data", (chunk: Buffer) => (text += chunk.toString()))
      child.stderr.on("data", (chunk: Buffer) => (text += chunk.toString()))
      const timer = setTimeout(() => child.kill("SIGKILL"), 240_000)
      child.on("exit", (code) => {
        clearTimeout(timer)
        resolve({ code, text })
      })
    })
    const summary = output.text.slice(output.text.lastIndexOf("SUMMARY"))
    console.log(
      `[schemathesis] ${summary
        .split("\n")
        .filter((line) => /generated|failure|passed/i.test(line))
        .join(" | ")}`,
    )
    expect(output.code, output.text.slice(-4_000)).toBe(0)
  }, 300_000)
})
