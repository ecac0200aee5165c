// The scripted gateway of the SDK conformance cases (README.md beside this file). One HTTP server
// on a free loopback port: WebSocket upgrades on `/<case>/<run-id>` run the case's script for the
// n-th connection of that run, and `GET /result/<case>/<run-id>` reports what the server saw.
// Each run keeps its own state, so every SDK (and every repeat) uses a fresh run-id on the same
// server. Nothing here throws at the SDK under test: every violation is a failure in the result.
// `close()` terminates open sockets and stops listening.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { WebSocketServer, type WebSocket } from "ws"
import {
  type ConformanceCase,
  type ConnectionScript,
  type Frame,
  type Step,
  expectedToken,
  loadCases,
  matches,
} from "./Case.ts"

export interface ConformanceServer {
  /** `ws://127.0.0.1:PORT`; the SDK connects to `${url}/<case>/<run-id>`. */
  readonly url: string
  /** `http://127.0.0.1:PORT`, for `GET /result/<case>/<run-id>`. */
  readonly httpUrl: string
  readonly close: () => Promise<void>
}

export interface RunResult {
  readonly ok: boolean
  readonly done: boolean
  readonly connections: number
  readonly failures: ReadonlyArray<string>
  readonly log: ReadonlyArray<string>
}

const subprotocol = "holdover.v1"
const clientFrameTypes = new Set(["auth", "ack", "send", "ping"])
const defaultStepTimeoutMs = 3000

interface Run {
  readonly testCase: ConformanceCase
  readonly startedAt: number
  connections: number
  finished: number
  readonly closedAt: Array<number | undefined>
  readonly failures: Array<string>
  readonly log: Array<string>
}

/** One connection's view: frames received, acks, what changed (for waiting steps). */
class Connection {
  readonly frames: Array<Frame> = []
  readonly acked = new Set<string>()
  readonly sentIds = new Set<string>()
  closedWith: number | undefined
  #wake: Array<() => void> = []

  changed(): void {
    const wake = this.#wake
    this.#wake = []
    for (const resolve of wake) resolve()
  }

  /** Resolves true once `condition` holds, false on timeout or when the socket has closed. */
  async until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (!condition()) {
      const left = deadline - Date.now()
      if (left <= 0 || this.closedWith !== undefined) return false
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#wake.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    return true
  }
}

const substitute = (frame: Frame, from: Frame | undefined): Frame =>
  Object.fromEntries(
    Object.entries(frame).map(([key, value]) => {
      const field = typeof value === "string" ? /^\$\{(\w+)\}$/.exec(value)?.[1] : undefined
      return [key, field === undefined ? value : from?.[field]]
    }),
  )

const describeStep = (step: Step): string => JSON.stringify(step).slice(0, 160)

export const startConformanceServer = async (
  cases: ReadonlyArray<ConformanceCase> = loadCases(),
): Promise<ConformanceServer> => {
  const byName = new Map(cases.map((c) => [c.name, c]))
  const runs = new Map<string, Run>()
  const sockets = new Set<WebSocket>()

  const runOf = (caseName: string, runId: string): Run | undefined => {
    const testCase = byName.get(caseName)
    if (testCase === undefined) return undefined
    const key = `${caseName}/${runId}`
    let run = runs.get(key)
    if (run === undefined) {
      run = {
        testCase,
        startedAt: Date.now(),
        connections: 0,
        finished: 0,
        closedAt: [],
        failures: [],
        log: [],
      }
      runs.set(key, run)
    }
    return run
  }

  const resultOf = (run: Run): RunResult => {
    const expected = run.testCase.connections.length
    const done = run.connections >= expected && run.finished >= expected
    const wanted = run.testCase.expect.connections
    const failures = [...run.failures]
    if (done && wanted !== undefined && run.connections !== wanted)
      failures.push(`expected ${wanted} connections, saw ${run.connections}`)
    return { ok: done && failures.length === 0, done, connections: run.connections, failures, log: run.log }
  }

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: 1 << 20,
    handleProtocols: (protocols) => (protocols.has(subprotocol) ? subprotocol : false),
  })
  wss.on("error", () => {}) // errors of single sockets are handled per socket

  const runScript = async (run: Run, index: number, socket: WebSocket, conn: Connection) => {
    const note = (line: string) => run.log.push(`+${Date.now() - run.startedAt}ms #${index} ${line}`)
    const fail = (line: string) => {
      run.failures.push(`connection #${index}: ${line}`)
      note(`FAILURE ${line}`)
    }
    const script = run.testCase.connections[index] as ConnectionScript
    let cursor = 0 // the next frame an expectFrame step may match
    let matched: Frame | undefined
    const write = (text: string) => {
      if (socket.readyState === socket.OPEN) socket.send(text)
      else
        fail(
          `the SDK closed the connection (${conn.closedWith}) before the server could send ${text.slice(0, 80)}`,
        )
    }
    for (const step of script.steps) {
      if ("send" in step) {
        const frame = substitute(step.send, matched)
        if (frame["type"] === "message" && typeof frame["id"] === "string") conn.sentIds.add(frame["id"])
        note(`server → ${JSON.stringify(frame).slice(0, 200)}`)
        write(JSON.stringify(frame))
      } else if ("sendRaw" in step) {
        note(`server → raw ${step.sendRaw.slice(0, 80)}`)
        write(step.sendRaw)
      } else if ("expectFrame" in step) {
        const pattern = step.expectFrame
        const passOver = pattern["type"] !== "ping" && pattern["type"] !== "ack"
        const find = () => {
          for (let i = cursor; i < conn.frames.length; i++) {
            const frame = conn.frames[i] as Frame
            if (passOver && (frame["type"] === "ping" || frame["type"] === "ack")) continue
            if (matches(frame, pattern)) {
              cursor = i + 1
              matched = frame
              return true
            }
          }
          return false
        }
        if (!(await conn.until(find, step.timeoutMs ?? defaultStepTimeoutMs)))
          return fail(`no client frame matching ${JSON.stringify(pattern)} (step ${describeStep(step)})`)
      } else if ("expectAcked" in step) {
        const all = () => step.expectAcked.every((id) => conn.acked.has(id))
        if (!(await conn.until(all, step.timeoutMs ?? defaultStepTimeoutMs))) {
          const missing = step.expectAcked.filter((id) => !conn.acked.has(id))
          return fail(`ids never acked: ${missing.join(", ")}`)
        }
      } else if ("wait" in step) {
        await new Promise((resolve) => setTimeout(resolve, step.wait))
      } else if ("close" in step) {
        note(`server closes with ${step.close}`)
        if (socket.readyState === socket.OPEN) socket.close(step.close, step.reason ?? "")
        else
          fail(`the SDK closed the connection (${conn.closedWith}) before the scripted close ${step.close}`)
        return
      } else {
        note("server terminates the TCP connection")
        socket.terminate()
        return
      }
    }
  }

  const accept = (run: Run, socket: WebSocket, request: IncomingMessage) => {
    const index = run.connections++
    const note = (line: string) => run.log.push(`+${Date.now() - run.startedAt}ms #${index} ${line}`)
    const fail = (line: string) => {
      run.failures.push(`connection #${index}: ${line}`)
      note(`FAILURE ${line}`)
    }
    sockets.add(socket)
    socket.on("error", (error) => note(`socket error: ${error.message}`))
    note("connected")
    const script = run.testCase.connections[index]
    if (script === undefined) {
      fail(
        `a connection beyond the ${run.testCase.connections.length} scripted (the SDK should not have reconnected)`,
      )
      socket.close(1000, "unexpected connection")
      return
    }
    if (socket.protocol !== subprotocol) fail(`the upgrade did not offer the subprotocol ${subprotocol}`)
    const token = expectedToken(run.testCase, index)
    const authorization = request.headers.authorization
    if (authorization !== `Bearer ${token}`)
      fail(`Authorization was ${JSON.stringify(authorization)}, expected "Bearer ${token}"`)
    const previousClosedAt = index > 0 ? run.closedAt[index - 1] : undefined
    if (previousClosedAt !== undefined) {
      const gap = Date.now() - previousClosedAt
      note(`${gap} ms after the previous connection closed`)
      if (script.maxGapMs !== undefined && gap > script.maxGapMs)
        fail(`came ${gap} ms after the previous connection closed; at most ${script.maxGapMs} ms expected`)
      if (script.minGapMs !== undefined && gap < script.minGapMs)
        fail(`came ${gap} ms after the previous connection closed; at least ${script.minGapMs} ms expected`)
    }
    const conn = new Connection()
    socket.on("message", (data, isBinary) => {
      const text = data.toString()
      let frame: unknown
      try {
        if (isBinary) throw new TypeError("a binary frame")
        frame = JSON.parse(text)
      } catch {
        return fail(`client frame is not JSON text: ${text.slice(0, 80)}`)
      }
      if (typeof frame !== "object" || frame === null || Array.isArray(frame))
        return fail(`client frame is not a JSON object: ${text.slice(0, 80)}`)
      const f = frame as Frame
      if (typeof f["type"] !== "string" || !clientFrameTypes.has(f["type"]))
        return fail(`client frame of unknown type: ${text.slice(0, 80)}`)
      if (f["type"] !== "ping") note(`client → ${text.slice(0, 200)}`)
      if (f["type"] === "ack") {
        const ids = f["ids"]
        if (!Array.isArray(ids) || ids.length === 0) fail(`ack without ids: ${text.slice(0, 80)}`)
        else
          for (const id of ids) {
            if (typeof id !== "string" || !conn.sentIds.has(id))
              fail(`acked ${JSON.stringify(id)}, which was not sent as a message on this connection`)
            else conn.acked.add(id)
          }
      }
      if (f["type"] === "ping" && script.answerPings !== false && socket.readyState === socket.OPEN)
        socket.send(JSON.stringify({ type: "pong" }))
      conn.frames.push(f)
      conn.changed()
    })
    socket.on("close", (code) => {
      sockets.delete(socket)
      run.closedAt[index] = Date.now()
      conn.closedWith = code
      note(`closed (${code})`)
      conn.changed()
    })
    void runScript(run, index, socket, conn).finally(() => {
      run.finished += 1
      note("script done")
    })
  }

  const answer = (response: ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { "content-type": "application/json" })
    response.end(JSON.stringify(body))
  }

  const server = createServer((request, response) => {
    const match = /^\/result\/([^/]+)\/([A-Za-z0-9_-]+)$/.exec(request.url ?? "")
    if (request.method !== "GET" || match === null) return answer(response, 404, { error: "not found" })
    const [, caseName = "", runId = ""] = match
    if (!byName.has(caseName)) return answer(response, 404, { error: `no case ${caseName}` })
    const run = runs.get(`${caseName}/${runId}`)
    if (run === undefined)
      return answer(response, 200, { ok: false, done: false, connections: 0, failures: [], log: [] })
    answer(response, 200, resultOf(run))
  })
  server.on("upgrade", (request, socket, head) => {
    socket.on("error", () => {})
    const match = /^\/([^/]+)\/([A-Za-z0-9_-]+)$/.exec(request.url ?? "")
    const run = match === null ? undefined : runOf(match[1] ?? "", match[2] ?? "")
    if (run === undefined) {
      socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
      return
    }
    wss.handleUpgrade(request, socket, head, (ws) => accept(run, ws, request))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `ws://127.0.0.1:${port}`,
    httpUrl: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const socket of sockets) socket.terminate()
      wss.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
