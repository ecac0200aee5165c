// The TypeScript SDK (`@holdover/client`) against every conformance case: the runner of
// sdks/conformance/README.md, in-process, with `ws` as the WebSocket and Bearer-header auth.
import { createClient, type HoldoverClient, type SendResult } from "@holdover/client"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import type { SendOutcome } from "../conformance/Case.ts"
import type { ConformanceServer } from "../conformance/server.ts"
import {
  type ConformanceCase,
  type Outcome,
  fetchResult,
  loadCases,
  outcomeProblems,
  runId,
  startConformanceServer,
  waitUntil,
} from "./support.ts"

let server: ConformanceServer
beforeAll(async () => {
  server = await startConformanceServer()
})
afterAll(() => server?.close())

const tokenOptions = (client: ConformanceCase["client"]) => {
  const { tokens, token } = client
  if (tokens === undefined) return { token: token ?? "" }
  let attempt = 0
  return { getToken: () => tokens[Math.min(attempt++, tokens.length - 1)] ?? "" }
}

const run = async (testCase: ConformanceCase) => {
  const id = runId("ts")
  const delivered: Array<Outcome["delivered"][number]> = []
  const errors: Array<string> = []
  let final: Outcome["final"] = { state: "open", takenOver: false }
  let takenOver = false
  const client: HoldoverClient = createClient({
    url: `${server.url}/${testCase.name}/${id}`,
    WebSocket,
    authMode: "header",
    backoff: testCase.client.backoff,
    ...tokenOptions(testCase.client),
    ...(testCase.client.connectTimeoutMs === undefined
      ? {}
      : { connectTimeoutMs: testCase.client.connectTimeoutMs }),
    ...(testCase.client.dedupWindow === undefined ? {} : { dedupWindow: testCase.client.dedupWindow }),
    onMessage: ({ id, priority, redelivered, payload }) => {
      delivered.push({ id, priority, redelivered, payload })
    },
  })
  client.on("error", (error) => errors.push(error.code))
  client.on("taken-over", () => (takenOver = true))
  client.on("closed", ({ code }) => (final = { state: "closed", code, takenOver }))
  const sends: Array<SendOutcome | undefined> = (testCase.client.sends ?? []).map(() => undefined)
  ;(testCase.client.sends ?? []).forEach(({ to, payload, ...options }, i) => {
    client.send(to, payload, options).then(
      ({ status, id }: SendResult) => (sends[i] = { status, id }),
      (error: { code: string }) => (sends[i] = { error: error.code }),
    )
  })

  const want = testCase.expect.delivered?.length ?? 0
  await waitUntil(
    `case ${testCase.name} has played out`,
    async () =>
      client.state === "closed" ||
      (delivered.length >= want &&
        sends.every((s) => s !== undefined) &&
        (await fetchResult(server, testCase.name, id)).done),
    testCase.timeoutMs ?? 10_000,
  ).catch(() => {}) // the checks below say what is missing
  if (testCase.settleMs !== undefined) await new Promise((resolve) => setTimeout(resolve, testCase.settleMs))
  const outcome: Outcome = { delivered, errors, final, sends }
  await client.close()
  const result = await fetchResult(server, testCase.name, id)
  return { result, outcome }
}

describe("the TypeScript SDK passes the conformance cases", () => {
  for (const testCase of loadCases()) {
    it(`${testCase.name}: ${testCase.description}`, async () => {
      const { result, outcome } = await run(testCase)
      expect(result.failures, result.log.join("\n")).toEqual([])
      expect(result.ok, result.log.join("\n")).toBe(true)
      expect(outcomeProblems(testCase, outcome), JSON.stringify(outcome)).toEqual([])
    })
  }
})
