// Test support for gateway processes: a nats-server per file, gateway nodes as real processes,
// tokens, HTTP calls and a small WebSocket client that records frames and the close code.
import { startNats, testGateway, type RunningGateway, type RunningNats } from "@holdover/local-nats"
import { inject } from "vitest"
import WebSocket from "ws"

export { testSecret as secret, testToken as token, unique, waitUntil } from "@holdover/local-nats"

/** JSON read off the wire in tests: loosely typed on purpose, assertions check its shape. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any

export const nats = (): Promise<RunningNats> => startNats(inject("natsLauncher"))

export const gateway = (
  server: RunningNats,
  env: Record<string, string> = {},
  options: Parameters<typeof testGateway>[2] = {},
): Promise<RunningGateway> =>
  testGateway(
    server,
    { HOLDOVER_ALLOWED_ORIGINS: "http://allowed.example", HOLDOVER_HEARTBEAT: "5s", ...env },
    options,
  )

export const http = async (
  base: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; raw?: string } = {},
) => {
  const headers: Record<string, string> = { "Content-Type": "application/json" }
  if (options.token) headers["Authorization"] = `Bearer ${options.token}`
  const response = await fetch(`${base}${path}`, {
    method,
    headers,
    ...(options.raw !== undefined
      ? { body: options.raw }
      : options.body !== undefined
        ? { body: JSON.stringify(options.body) }
        : {}),
  })
  const text = await response.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {
    // not JSON (metrics)
  }
  return { status: response.status, body: body as Record<string, Json>, headers: response.headers }
}

export interface Frame {
  readonly type: string
  readonly [key: string]: Json
}

export interface TestSocket {
  readonly ws: WebSocket
  readonly frames: Array<Frame>
  readonly closed: Promise<{ code: number; reason: string }>
  /** Waits for the next frame (after those already taken) matching `predicate`. */
  readonly next: (predicate?: (frame: Frame) => boolean, timeoutMs?: number) => Promise<Frame>
  readonly send: (frame: unknown) => void
  /** Takes `count` message frames, acking each unless told not to. */
  readonly messages: (count: number, options?: { ack?: boolean; timeoutMs?: number }) => Promise<Array<Frame>>
}

export const connect = (
  url: string,
  options: {
    token?: string
    authFrame?: string
    origin?: string
    protocols?: Array<string>
    maxPayload?: number
  } = {},
): Promise<TestSocket> =>
  new Promise((resolve, reject) => {
    const headers: Record<string, string> = {}
    if (options.token) headers["Authorization"] = `Bearer ${options.token}`
    const ws = new WebSocket(url, options.protocols ?? ["holdover.v1"], {
      headers,
      ...(options.origin ? { origin: options.origin } : {}),
    })
    const frames: Array<Frame> = []
    let taken = 0
    const waiters: Array<() => void> = []
    ws.on("message", (data) => {
      frames.push(JSON.parse(data.toString()) as Frame)
      for (const wake of waiters.splice(0)) wake()
    })
    const closed = new Promise<{ code: number; reason: string }>((done) =>
      ws.on("close", (code, reason) => {
        done({ code, reason: reason.toString() })
        for (const wake of waiters.splice(0)) wake()
      }),
    )
    ws.on("error", (error) => reject(error))
    const next = async (predicate: (frame: Frame) => boolean = () => true, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        while (taken < frames.length) {
          const frame = frames[taken++]!
          if (predicate(frame)) return frame
        }
        if (ws.readyState === WebSocket.CLOSED)
          throw new Error(`socket closed while waiting (frames: ${JSON.stringify(frames.slice(-3))})`)
        const remaining = deadline - Date.now()
        if (remaining <= 0)
          throw new Error(`no matching frame in time (last: ${JSON.stringify(frames.slice(-3))})`)
        await new Promise<void>((wake) => {
          const timer = setTimeout(wake, remaining)
          waiters.push(() => {
            clearTimeout(timer)
            wake()
          })
        })
      }
    }
    const socket: TestSocket = {
      ws,
      frames,
      closed,
      next,
      send: (frame) => ws.send(typeof frame === "string" ? frame : JSON.stringify(frame)),
      messages: async (count, { ack = true, timeoutMs = 10_000 } = {}) => {
        const got: Array<Frame> = []
        while (got.length < count) {
          const frame = await next((f) => f.type === "message", timeoutMs)
          got.push(frame)
          if (ack) socket.send({ type: "ack", ids: [frame["id"]] })
        }
        return got
      },
    }
    ws.on("open", () => {
      if (options.authFrame) ws.send(JSON.stringify({ type: "auth", token: options.authFrame }))
      resolve(socket)
    })
    ws.on("unexpected-response", (_request, response) =>
      reject(new Error(`upgrade refused: ${response.statusCode}`)),
    )
  })
