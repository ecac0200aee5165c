// The names the documentation tells people to type or to watch exist: every `holdover_*` metric
// (and label) named in docs/ and the READMEs is in the /metrics output of a real gateway that has
// carried some traffic, and every HOLDOVER_* variable named there is one a gateway reads (the
// exported `environmentVariables` list; all of docs/configuration.md's must be), a JetStream
// stream the gateway creates, or a variable the repository's tools and tests read (named in their
// sources, outside the gateway's and queue's src).
import { readFileSync, readdirSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { environmentVariables } from "@holdover/gateway"
import type { RunningGateway, RunningNats } from "@holdover/local-nats"
import WebSocket from "ws"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { gateway, nats, token, unique, waitUntil } from "../src/support.ts"

const root = fileURLToPath(new URL("../../", import.meta.url))
const docFiles = [
  ...readdirSync(join(root, "docs"))
    .filter((name) => name.endsWith(".md"))
    .map((name) => `docs/${name}`),
  "README.md",
  "libs/client/README.md",
]
const docs = docFiles.map((file) => ({ file, text: readFileSync(join(root, file), "utf8") }))

/** Each distinct match of `pattern` in the docs, with the files it is in. */
const named = (pattern: RegExp): Map<string, Array<string>> => {
  const found = new Map<string, Array<string>>()
  for (const { file, text } of docs)
    for (const match of text.matchAll(pattern)) {
      const name = match[0]
      found.set(name, [...new Set([...(found.get(name) ?? []), file])])
    }
  return found
}

/** Source files of the tools, the CLI and the tests: where the non-gateway variables are read. */
const toolSources = (): string => {
  const skip = /(^|\/)(node_modules|dist|\.data|docs)(\/|$)|^apps\/gateway\/src\/|^libs\/queue\/src\//
  const files = readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.(ts|js|sh)$|^run$/.test(entry.name))
    .map((entry) => join(entry.parentPath, entry.name).slice(root.length))
    .filter((path) => !skip.test(path))
  return files.map((path) => readFileSync(join(root, path), "utf8")).join("\n")
}

describe("names in the documentation", () => {
  let server: RunningNats
  let node: RunningGateway
  let exposition: string

  /** POSTs a message as `producerSub`; returns the HTTP status. */
  const post = async (producerSub: string, body: Record<string, unknown>) => {
    const response = await fetch(`${node.url}/v1/messages`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${await token(producerSub, ["publish"])}`,
        "Content-Type": "application/json",
      },
      body: JSON.stringify(body),
    })
    await response.body?.cancel()
    return response.status
  }

  /** A `ws` connection as `sub`, resolving with the first message frame (not acked). */
  const firstMessage = async (sub: string) => {
    const socket = new WebSocket(node.url.replace("http", "ws") + "/v1/ws", "holdover.v1", {
      headers: { Authorization: `Bearer ${await token(sub)}` },
    })
    const frame = await new Promise<{ id: string }>((resolve, reject) => {
      socket.on("error", reject)
      socket.on("message", (data) => {
        const frame = JSON.parse(String(data)) as { type: string; id: string }
        if (frame.type === "message") resolve(frame)
      })
    })
    return { socket, frame }
  }

  beforeAll(async () => {
    server = await nats()
    node = await gateway(server, {
      HOLDOVER_LOW_CAPACITY: "1",
      HOLDOVER_LOW_OVERFLOW: "drop_newest",
      HOLDOVER_NORMAL_CAPACITY: "1",
      HOLDOVER_NORMAL_OVERFLOW: "reject",
      HOLDOVER_PUBLISH_RATE: "1",
      HOLDOVER_PUBLISH_BURST: "2",
    })
    // Traffic, so that every labelled family has series: enqueued, dropped (drop_newest), rejected
    // (QUEUE_FULL), rate-limited, delivered, redelivered after a takeover (a 4409 close), acked.
    const sub = unique("docs")
    expect(await post(unique("p"), { to: sub, priority: "high", payload: 1 })).toBe(202)
    for (const expected of [202, 202])
      expect(await post(unique("p"), { to: sub, priority: "low", payload: 2 })).toBe(expected)
    expect(await post(unique("p"), { to: sub, priority: "normal", payload: 3 })).toBe(202)
    expect(await post(unique("p"), { to: sub, priority: "normal", payload: 4 })).toBe(429)
    // Until one meets the limit: three in a row need not, when a loaded machine takes a second.
    const hasty = unique("p")
    const statuses: Array<number> = []
    while (!statuses.includes(429) && statuses.length < 20)
      statuses.push(await post(hasty, { to: unique("x"), payload: statuses.length }))
    expect(statuses).toContain(429)
    const first = await firstMessage(sub)
    const second = await firstMessage(sub) // takes the session over: the first is closed with 4409
    second.socket.send(JSON.stringify({ type: "ack", ids: [second.frame.id] }))
    const metrics = async () => (await fetch(`${node.url}/metrics`)).text()
    await waitUntil("the ack is counted", async () =>
      /^holdover_messages_acked_total [1-9]/m.test(await metrics()),
    )
    first.socket.close()
    second.socket.close()
    exposition = await metrics()
  }, 60_000)
  afterAll(async () => {
    await node?.stop()
    await server?.stop()
  })

  it("names only metrics and labels a gateway's /metrics exposes", () => {
    const families = new Set([...exposition.matchAll(/^# TYPE (\S+) /gm)].map((match) => match[1] ?? ""))
    const series = (name: string) =>
      exposition.split("\n").filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    // `holdover_to` is the token claim restricting publish (libs/protocol/src/Token.ts), not a metric.
    const claims = ["holdover_to"]
    expect(readFileSync(join(root, "libs/protocol/src/Token.ts"), "utf8")).toContain('"holdover_to"')
    const mentions = named(/\bholdover_[a-z0-9_]+(\{[^}]*\})?\*?/g)
    const wrong: Array<string> = []
    for (const [mention, files] of mentions) {
      const name = /^holdover_[a-z0-9_]+/.exec(mention)?.[0] ?? mention
      if (claims.includes(name)) continue
      if (mention.endsWith("*") || name.endsWith("_")) {
        // A family prefix such as `holdover_process_*`.
        if (![...families].some((family) => family.startsWith(name)))
          wrong.push(`${mention} (no metric starts so) in ${files.join(", ")}`)
        continue
      }
      const family = families.has(name) ? name : name.replace(/_(bucket|sum|count)$/, "")
      if (!families.has(family)) {
        wrong.push(`${name} (no such metric) in ${files.join(", ")}`)
        continue
      }
      const labels = [...(mention.match(/\{([^}]*)\}/)?.[1] ?? "").matchAll(/([a-z_]+)(?:="[^"]*")?/g)].map(
        (match) => match[1] ?? "",
      )
      const lines = series(name)
      for (const label of labels)
        if (!lines.some((line) => line.includes(`${label}="`)))
          wrong.push(`${name}{${label}} (no series of ${name} has a ${label} label) in ${files.join(", ")}`)
    }
    expect(wrong).toEqual([])
    expect(mentions.size).toBeGreaterThan(5) // the monitoring table names the metrics
  })

  it("names only HOLDOVER_* variables something reads, and only gateway ones in configuration.md", () => {
    const gatewayVariables = new Set<string>(environmentVariables)
    const streams = new Set(
      node
        .logs()
        .flatMap((line) => [...line.matchAll(/"stream":"(HOLDOVER_[A-Z_]+)"/g)].map((match) => match[1])),
    )
    expect(streams.has("HOLDOVER_CRITICAL")).toBe(true)
    const tools = toolSources()
    const wrong: Array<string> = []
    for (const [name, files] of named(/\bHOLDOVER_[A-Z0-9_]*[A-Z0-9]\b/g)) {
      if (files.includes("docs/configuration.md") && !gatewayVariables.has(name) && !streams.has(name))
        wrong.push(`${name}: in docs/configuration.md but not in the gateway's environmentVariables`)
      else if (!gatewayVariables.has(name) && !streams.has(name) && !tools.includes(name))
        wrong.push(`${name}: named in ${files.join(", ")}, read by nothing`)
    }
    expect(wrong).toEqual([])
  })
})
