// Step "compression" — bytes on the wire per delivered message, with and without permessage-deflate,
// for realistic JSON payloads of about 1 KiB and 32 KiB (chat-history / notification objects
// generated deterministically: repeated keys, ids, timestamps, URLs and English-like text, so they
// compress the way real ones do — not a run of "xxxx"). For each size, one connected recipient
// per client kind — one whose `ws` client offers permessage-deflate, one whose client does not —
// receives the same messages live, published through the gateway's batch endpoint; the bytes read
// from its TCP socket (`net.Socket.bytesRead`, after the welcome, until the last message) divided
// by the messages are the figure. The gateway runs its shipped compression settings. Every payload
// is compared with what was sent (`mismatches`, `missing`: must be 0), and the gateway's own
// counters (holdover_ws_wire_bytes_total) are read as a cross-check. Reference figures, computed
// in the same run on the same payloads: the JSON text of the payload, and zlib's deflateRaw of the
// payload alone (level 6, 32 KiB window) — the best a compressor of that kind does without framing
// or the gateway's small window.
import type { Socket } from "node:net"
import { setTimeout as sleep } from "node:timers/promises"
import { isDeepStrictEqual } from "node:util"
import { deflateRawSync } from "node:zlib"
import { prng, type RunningGateway } from "@holdover/local-nats"
import { subprotocol } from "@holdover/protocol"
import WebSocket from "ws"
import type { Figure, Figures, StepContext } from "./Figures.ts"
import type { Harness } from "./Harness.ts"
import { pollUntil, ratio, round } from "./Stats.ts"

const words = (
  "the a to and of in for on with is that this we you it be at by from as are have not was can will " +
  "just deploy build release review merge branch issue fix test failing passing server client queue " +
  "message latency retry timeout looks good thanks please could should would today tomorrow meeting " +
  "notes draft update customer ticket priority high low urgent followup ping later sure okay agreed " +
  "design proposal dashboard metrics alert incident resolved rollback config staging production team"
).split(" ")
const names = [
  "Ada Lovelace",
  "Grace Hopper",
  "Alan Turing",
  "Edsger Dijkstra",
  "Barbara Liskov",
  "Ken Thompson",
  "Margaret Hamilton",
  "Donald Knuth",
  "Frances Allen",
  "John McCarthy",
  "Radia Perlman",
  "Leslie Lamport",
]
const reactions = ["👍", "🎉", "👀", "❤️", "🚀"]

/**
 * A chat-update object (conversation header, participants, a page of messages with authors,
 * timestamps, reactions and now and then a link or attachment) grown message by message until its
 * JSON text reaches `target` bytes.
 */
export const chatPayload = (seed: number, target: number): unknown => {
  const random = prng(seed)
  const int = (n: number) => Math.floor(random() * n)
  const pick = <A>(list: ReadonlyArray<A>): A => list[int(list.length)] as A
  const sentence = (n: number) => Array.from({ length: n }, () => pick(words)).join(" ")
  const userId = (name: string) => `usr_${name.toLowerCase().replace(/[^a-z]/g, "")}`
  const participants = Array.from({ length: 3 + int(4) }, () => pick(names))
  const conversation = `cnv_${(seed * 7919).toString(36)}`
  let clock = Date.UTC(2025, 0, 1) + seed * 60_000
  const payload = {
    type: "chat.update",
    conversation: {
      id: conversation,
      title: sentence(3 + int(4)),
      url: `https://app.example.com/c/${conversation}`,
      participants: [...new Set(participants)].map((name) => ({
        id: userId(name),
        name,
        avatar: `https://cdn.example.com/avatars/${userId(name)}.png`,
        online: random() < 0.5,
      })),
    },
    unread: 0,
    messages: [] as Array<Record<string, unknown>>,
  }
  for (let i = 0; Buffer.byteLength(JSON.stringify(payload)) < target && i < 10_000; i++) {
    clock += 1_000 + int(120_000)
    const author = pick(participants)
    const message: Record<string, unknown> = {
      id: `msg_${seed.toString(36)}_${i}`,
      author: { id: userId(author), name: author },
      sentAt: new Date(clock).toISOString(),
      text: sentence(4 + int(24)),
      edited: random() < 0.1,
      reactions: random() < 0.3 ? [{ emoji: pick(reactions), count: 1 + int(5) }] : [],
    }
    if (random() < 0.1)
      message["attachment"] = {
        kind: "file",
        name: `${pick(words)}-${int(1000)}.pdf`,
        size: 10_000 + int(2_000_000),
        url: `https://files.example.com/${conversation}/${int(1e9).toString(36)}`,
      }
    payload.messages.push(message)
    payload.unread++
  }
  // Trim the last message's text, word by word, to land on the target size.
  const last = payload.messages.at(-1)
  while (last && Buffer.byteLength(JSON.stringify(payload)) > target && String(last["text"]).includes(" "))
    last["text"] = String(last["text"]).replace(/ \S+$/, "")
  return payload
}

interface Frame {
  readonly type: string
  readonly id?: string
  readonly payload?: unknown
}

/** What the gateway counts as written to client sockets (holdover_ws_wire_bytes_total), from /metrics. */
const gatewayWireBytes = async (base: string): Promise<number> => {
  const text = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text())
  return Number(/^holdover_ws_wire_bytes_total\s+(\S+)/m.exec(text)?.[1] ?? 0)
}

interface WireRun {
  /** Bytes read from the socket per message, between the welcome and the last message. */
  readonly wirePerMsg: number
  /** The message frames' JSON text (after inflating), per message. */
  readonly framePerMsg: number
  /** What the gateway counted as written over the whole connection (holdover_ws_wire_bytes_total)
   * / what the client read over it: 1 when the gateway's metric is right. */
  readonly gatewayCountedVsRead: number
  readonly received: number
  readonly mismatches: number
  /** zlib deflateRaw of each received frame's text with the gateway's settings (2 KiB window), per message. */
  readonly frameDeflatePerMsg: number
}

/**
 * Connects one recipient (offering permessage-deflate or not), publishes `payloads` to it through
 * the batch endpoint and counts what arrives: bounded by `timeoutMs`.
 */
const deliverOnce = async (
  harness: Harness,
  gateway: RunningGateway,
  producer: string,
  recipient: string,
  payloads: ReadonlyArray<unknown>,
  deflate: boolean,
  timeoutMs: number,
): Promise<WireRun> => {
  const gatewayBefore = await gatewayWireBytes(gateway.url)
  const ws = new WebSocket(gateway.wsUrl, [subprotocol], {
    headers: { Authorization: `Bearer ${await harness.token(recipient)}` },
    perMessageDeflate: deflate,
    handshakeTimeout: 30_000,
  })
  let socket: Socket | undefined
  ws.on("upgrade", (response) => (socket = response.socket))
  const expected = new Map<string, unknown>()
  const ids = payloads.map((_, i) => `${recipient}-${i}`)
  payloads.forEach((payload, i) => expected.set(ids[i] ?? "", payload))
  let received = 0
  let mismatches = 0
  let frameBytes = 0
  let frameDeflateBytes = 0
  let acks: Array<string> = []
  let welcome!: () => void
  let failed!: (error: Error) => void
  const welcomed = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no welcome within 30 s")), 30_000)
    welcome = () => (clearTimeout(timer), resolve())
    failed = (error) => (clearTimeout(timer), reject(error))
  })
  ws.on("error", (error) => failed(error))
  ws.on("close", (code) => failed(new Error(`the socket closed with ${code} before the welcome`)))
  ws.on("message", (data) => {
    const buffer = data as Buffer
    const frame = JSON.parse(buffer.toString("utf8")) as Frame
    if (frame.type === "welcome") return welcome()
    if (frame.type !== "message" || frame.id === undefined) return
    if (acks.length === 0)
      setImmediate(() => {
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "ack", ids: acks }))
        acks = []
      })
    acks.push(frame.id)
    if (!expected.has(frame.id)) return
    received++
    frameBytes += buffer.length
    frameDeflateBytes += deflateRawSync(buffer, { windowBits: 11, memLevel: 7 }).length
    if (!isDeepStrictEqual(frame.payload, expected.get(frame.id))) mismatches++
    expected.delete(frame.id)
  })
  try {
    await welcomed
    if (ws.extensions.includes("permessage-deflate") !== deflate)
      throw new Error(
        `permessage-deflate ${deflate ? "offered but not negotiated" : "negotiated though not offered"}`,
      )
    if (!socket) throw new Error("no upgrade socket")
    const before = socket.bytesRead
    const perRequest = Math.max(1, Math.floor((512 * 1024) / Buffer.byteLength(JSON.stringify(payloads[0]))))
    for (let i = 0; i < payloads.length; i += perRequest) {
      const messages = payloads
        .slice(i, i + perRequest)
        .map((payload, j) => ({ to: recipient, id: ids[i + j], priority: "normal", payload }))
      const reply = await harness.http(gateway.url, "POST", "/v1/messages/batch", producer, { messages })
      const queued = ((reply.body as { results?: Array<{ status?: string }> }).results ?? []).filter(
        (r) => r.status === "queued",
      ).length
      if (reply.status !== 200 || queued !== messages.length)
        throw new Error(`publishing: ${queued} of ${messages.length} queued (HTTP ${reply.status})`)
    }
    const deadline = Date.now() + timeoutMs
    while (received < payloads.length && Date.now() < deadline) await sleep(5)
    const wire = socket.bytesRead - before
    // The gateway adds a connection's bytes to its counter on heartbeats and when it ends: close,
    // then compare its count with everything this client read (handshake and close included).
    ws.removeAllListeners("close")
    const closed = new Promise<void>((resolve) => ws.once("close", () => resolve()))
    ws.close(1000, "bench done")
    await Promise.race([closed, sleep(5_000)])
    const read = socket.bytesRead
    let counted = 0
    await pollUntil(
      async () => (counted = (await gatewayWireBytes(gateway.url)) - gatewayBefore) >= read,
      5_000,
    )
    const n = Math.max(1, received)
    return {
      wirePerMsg: wire / n,
      framePerMsg: frameBytes / n,
      gatewayCountedVsRead: read > 0 ? counted / read : 0,
      received,
      mismatches,
      frameDeflatePerMsg: frameDeflateBytes / n,
    }
  } finally {
    ws.removeAllListeners("close")
    ws.on("error", () => undefined)
    ws.terminate()
  }
}

export const compression = async (
  harness: Harness,
  gateway: RunningGateway,
  ctx: StepContext,
): Promise<Figures> => {
  const plan = ctx.quick
    ? [
        { name: "1k", target: 1024, count: 50 },
        { name: "32k", target: 32 * 1024, count: 20 },
      ]
    : [
        { name: "1k", target: 1024, count: 200 },
        { name: "32k", target: 32 * 1024, count: 50 },
      ]
  const producer = await harness.token("bench-producer", ["publish"])
  const runId = Date.now().toString(36)
  const figures: Figures = {}
  for (const size of plan) {
    const payloads = Array.from({ length: size.count }, (_, i) => chatPayload(i + 1, size.target))
    const texts = payloads.map((p) => Buffer.from(JSON.stringify(p)))
    const mean = (values: ReadonlyArray<number>) => values.reduce((a, b) => a + b, 0) / values.length
    const payloadBytes = mean(texts.map((t) => t.length))
    const zlibPayload = mean(texts.map((t) => deflateRawSync(t).length))
    const run = (deflate: boolean) =>
      deliverOnce(
        harness,
        gateway,
        producer,
        `cmp-${size.name}-${deflate ? "deflate" : "plain"}-${runId}`,
        payloads,
        deflate,
        30_000,
      )
    const plain = await run(false)
    const deflated = await run(true)
    const missing = 2 * size.count - plain.received - deflated.received
    const mismatches = plain.mismatches + deflated.mismatches
    ctx.log(
      `${size.name} (${size.count} messages, payload ${round(payloadBytes)} B): on the wire ` +
        `${round(deflated.wirePerMsg)} B/msg with permessage-deflate, ${round(plain.wirePerMsg)} B/msg without ` +
        `(× ${ratio(deflated.wirePerMsg, plain.wirePerMsg)}); zlib deflateRaw of the payload alone ${round(zlibPayload)} B; ` +
        `mismatches ${mismatches}, missing ${missing}`,
    )
    if (mismatches + missing > 0)
      ctx.note(
        `compression ${size.name}: ${mismatches} payloads differed from what was sent, ${missing} missing`,
      )
    const figure: Figure = {
      value: round(deflated.wirePerMsg),
      unit: "B/msg",
      baseline: round(plain.wirePerMsg),
      ratio: ratio(deflated.wirePerMsg, plain.wirePerMsg),
      messages: size.count,
      payload_bytes: round(payloadBytes),
      frame_bytes: round(deflated.framePerMsg),
      zlib_payload_bytes: round(zlibPayload),
      vs_zlib_payload: ratio(deflated.wirePerMsg, zlibPayload),
      zlib_frame_w11_bytes: round(deflated.frameDeflatePerMsg),
      gateway_metric_vs_socket_deflate: round(deflated.gatewayCountedVsRead),
      gateway_metric_vs_socket_plain: round(plain.gatewayCountedVsRead),
      mismatches,
      missing,
    }
    figures[`compression_${size.name}`] = figure
  }
  return figures
}
