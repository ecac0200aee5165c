// Settings of one gateway node and the table of the HOLDOVER_* variables they are read from at
// start-up (the queue's own variables are @holdover/queue's, read by QueueConfig.layerConfig;
// Environment.ts lists both). A bad value stops start-up with InvalidConfig naming the variable
// and what it expected.
import {
  intIn,
  InvalidConfig,
  onOff,
  parseDuration,
  rawVariable,
  readVariables,
  variable,
} from "@holdover/queue"
import { Context, Effect, Layer, Redacted } from "effect"

export type LogLevel = "Trace" | "Debug" | "Info" | "Warn" | "Error"

export interface GatewaySettings {
  readonly port: number
  readonly host: string
  readonly jwtSecret: Redacted.Redacted<string> | undefined
  /** A JWKS file path or http(s) URL. */
  readonly jwks: string | undefined
  /** Allowed browser origins; empty = no browser origin is allowed ("*" allows all). */
  readonly allowedOrigins: ReadonlyArray<string>
  readonly maxFrameBytes: number
  readonly heartbeatMs: number
  readonly drainTimeoutMs: number
  readonly authTimeoutMs: number
  readonly logLevel: LogLevel
  /** Serve the demo page at /demo (development). */
  readonly demo: boolean
  /** permessage-deflate for clients that offer it, for frames of at least `compressionThreshold` bytes. */
  readonly compression: boolean
  readonly compressionThreshold: number
  /** Per producer `sub`, across HTTP and `send` frames on this node: messages per second and burst. */
  readonly publishRate: number
  readonly publishBurst: number
  /** Per WebSocket connection: frames per second and burst. */
  readonly frameRate: number
  readonly frameBurst: number
  /**
   * Session openings (each reads the four lanes and the session record) on this node: per second, at once, and how many may
   * wait. The concurrency bound keeps each opening's JetStream calls answered in time when
   * JetStream is slower than the rate: connections wait their turn (cheaply) instead.
   */
  readonly admissionRate: number
  readonly admissionConcurrency: number
  readonly admissionQueue: number
  /** Event-loop delay beyond which new producer work is refused with 503 (0 = never). */
  readonly shedEventLoopDelayMs: number
}

export const defaultGatewaySettings: GatewaySettings = {
  port: 8080,
  host: "0.0.0.0",
  jwtSecret: undefined,
  jwks: undefined,
  allowedOrigins: [],
  maxFrameBytes: 128 * 1024,
  heartbeatMs: 25_000,
  drainTimeoutMs: 10_000,
  authTimeoutMs: 5_000,
  logLevel: "Info",
  demo: false,
  compression: true,
  compressionThreshold: 1024,
  publishRate: 1_000,
  publishBurst: 2_000,
  frameRate: 200,
  frameBurst: 400,
  admissionRate: 2_000,
  admissionConcurrency: 32,
  admissionQueue: 5_000,
  shedEventLoopDelayMs: 200,
}

const logLevels: ReadonlyArray<LogLevel> = ["Trace", "Debug", "Info", "Warn", "Error"]
const d = defaultGatewaySettings

/** The node's variables, in the order they are read; each one's key is its GatewaySettings field. */
export const gatewayVariables = {
  jwtSecret: variable<Redacted.Redacted<string> | undefined>({
    name: "HOLDOVER_JWT_SECRET",
    expected: "at least 16 characters",
    parse: (raw) => (raw.length >= 16 ? Redacted.make(raw) : undefined),
    default: undefined,
    shown: "—",
    meaning: "shared secret (≥ 16 characters) for HS256 tokens",
    secret: true,
    verbatim: true,
  }),
  jwks: variable<string | undefined>({
    name: "HOLDOVER_JWKS",
    expected: "a JWKS file path or http(s) URL",
    parse: (raw) => (raw.length > 0 ? raw : undefined),
    default: undefined,
    shown: "—",
    meaning: "a JWKS file path or `https://` URL for RS256/ES256 tokens. One of the two is required",
    verbatim: true,
  }),
  port: variable({
    name: "HOLDOVER_PORT",
    expected: "a port number 0-65535",
    parse: intIn(0, 65_535),
    default: d.port,
    shown: String(d.port),
    meaning:
      "HTTP and WebSocket port (`0` picks a free one); a port it cannot bind stops start-up with exit 1 and says why (`port 8080 is in use (on 0.0.0.0); set HOLDOVER_PORT …`)",
  }),
  host: variable({
    name: "HOLDOVER_HOST",
    expected: "an IP address or host name to listen on, such as 0.0.0.0, 127.0.0.1 or ::",
    parse: (raw) => (/^[A-Za-z0-9.:[\]-]+$/.test(raw) ? raw.replace(/^\[(.*)\]$/, "$1") : undefined),
    default: d.host,
    shown: d.host,
    meaning:
      "address to listen on (`127.0.0.1` for this machine only, `::` for IPv6 too; `npm start` passes `127.0.0.1` unless it is set)",
  }),
  allowedOrigins: variable<ReadonlyArray<string>>({
    name: "HOLDOVER_ALLOWED_ORIGINS",
    expected: "origins, comma-separated",
    parse: (raw) =>
      raw
        .split(",")
        .map((origin) => origin.trim().replace(/\/$/, ""))
        .filter((origin) => origin.length > 0),
    default: d.allowedOrigins,
    shown: "none",
    meaning:
      "browser origins allowed to open a WebSocket, comma-separated; `*` allows any. Requests without `Origin` (servers, CLIs) are always allowed",
  }),
  maxFrameBytes: variable({
    name: "HOLDOVER_MAX_FRAME_BYTES",
    expected: "a size in bytes (1024 or more)",
    parse: intIn(1024, 64 * 1024 * 1024),
    default: d.maxFrameBytes,
    shown: String(d.maxFrameBytes),
    meaning: "largest WebSocket frame a client may send; larger closes with 1009",
  }),
  heartbeatMs: variable({
    name: "HOLDOVER_HEARTBEAT",
    expected: "a duration such as 25s",
    parse: parseDuration,
    default: d.heartbeatMs,
    shown: "25s",
    meaning:
      "WebSocket ping interval (`heartbeatMs` in the welcome frame); a peer silent for two intervals is dropped",
  }),
  drainTimeoutMs: variable({
    name: "HOLDOVER_DRAIN_TIMEOUT",
    expected: "a duration such as 10s",
    parse: parseDuration,
    default: d.drainTimeoutMs,
    shown: "10s",
    meaning: "how long a SIGTERM drain may take before open sockets are terminated",
  }),
  logLevel: variable({
    name: "HOLDOVER_LOG_LEVEL",
    expected: logLevels.join(", "),
    parse: (raw) => logLevels.find((level) => level.toLowerCase() === raw.toLowerCase()),
    default: d.logLevel,
    shown: d.logLevel,
    meaning:
      "`Trace`, `Debug`, `Info`, `Warn`, `Error`. `Debug` traces every message: `message stored` (id, recipient, priority, stream, seq, duplicate), `message sent` (id, seq, session, redelivered) and `messages acked` (ids, session) — grep a message id across nodes to follow it",
  }),
  demo: variable({
    name: "HOLDOVER_DEMO",
    expected: "on or off",
    parse: onOff,
    default: d.demo,
    shown: "off",
    meaning: "serve the demo page at `/demo` (`npm start` turns it on)",
  }),
  compression: variable({
    name: "HOLDOVER_WS_COMPRESSION",
    expected: "on or off",
    parse: onOff,
    default: d.compression,
    shown: "on",
    meaning:
      "permessage-deflate for clients that offer it (no context takeover, 2 KiB window: little memory per connection)",
  }),
  compressionThreshold: variable({
    name: "HOLDOVER_WS_COMPRESSION_THRESHOLD",
    expected: "a size in bytes",
    parse: intIn(0, 64 * 1024 * 1024),
    default: d.compressionThreshold,
    shown: String(d.compressionThreshold),
    meaning: "frames smaller than this many bytes go uncompressed",
  }),
  publishRate: variable({
    name: "HOLDOVER_PUBLISH_RATE",
    expected: "messages per second (a positive integer)",
    parse: intIn(1, 10_000_000),
    default: d.publishRate,
    shown: String(d.publishRate),
    meaning:
      "messages per second per producer (`sub`), HTTP and `send` frames together, per node; over it: `429 RATE_LIMITED` with `Retry-After`",
  }),
  publishBurst: variable({
    name: "HOLDOVER_PUBLISH_BURST",
    expected: "a positive integer",
    parse: intIn(1, 10_000_000),
    default: d.publishBurst,
    shown: String(d.publishBurst),
    meaning: "messages a producer may send at once; after them, `HOLDOVER_PUBLISH_RATE` a second",
  }),
  frameRate: variable({
    name: "HOLDOVER_WS_FRAME_RATE",
    expected: "frames per second (a positive integer)",
    parse: intIn(1, 10_000_000),
    default: d.frameRate,
    shown: String(d.frameRate),
    meaning:
      "frames per second per connection; over it a frame gets `error RATE_LIMITED`; 50 in a row close the connection with 4429",
  }),
  frameBurst: variable({
    name: "HOLDOVER_WS_FRAME_BURST",
    expected: "a positive integer",
    parse: intIn(1, 10_000_000),
    default: d.frameBurst,
    shown: String(d.frameBurst),
    meaning: "frames a connection may send at once; after them, `HOLDOVER_WS_FRAME_RATE` a second",
  }),
  admissionRate: variable({
    name: "HOLDOVER_SESSION_ADMISSION_RATE",
    expected: "sessions per second (a positive integer)",
    parse: intIn(1, 1_000_000),
    default: d.admissionRate,
    shown: String(d.admissionRate),
    meaning:
      "sessions opened per second per node (each costs a takeover request and one get per priority, plus a session-record read when there is a backlog and, before nats-server 2.11 or on replicated streams, a STREAM.INFO per priority with a backlog — no JetStream consumer); more wait their turn. A session that cannot open (JetStream busy) is closed with 4429 so the client backs off",
  }),
  admissionConcurrency: variable({
    name: "HOLDOVER_SESSION_ADMISSION_CONCURRENCY",
    expected: "a positive integer",
    parse: intIn(1, 100_000),
    default: d.admissionConcurrency,
    shown: String(d.admissionConcurrency),
    meaning:
      "sessions opening at once per node. When JetStream answers more slowly than the rate allows, connections wait here (costing nothing) instead of piling calls onto JetStream until they time out (docs/benchmarks.md, reconnect storms)",
  }),
  admissionQueue: variable({
    name: "HOLDOVER_SESSION_ADMISSION_QUEUE",
    expected: "a positive integer",
    parse: intIn(1, 10_000_000),
    default: d.admissionQueue,
    shown: String(d.admissionQueue),
    meaning:
      "sessions that may wait; beyond it a connection is closed with 4429 and the SDK retries with backoff",
  }),
  shedEventLoopDelayMs: variable({
    name: "HOLDOVER_SHED_EVENT_LOOP_DELAY",
    expected: "a duration such as 200ms (0 turns shedding off)",
    parse: (raw) => (raw === "0" || raw === "off" ? 0 : parseDuration(raw)),
    default: d.shedEventLoopDelayMs,
    shown: "200ms",
    meaning:
      "when the gateway's event loop falls this far behind (CPU saturated), new producer requests get `503 QUEUE_UNAVAILABLE` with `Retry-After: 1` before their body is read or token checked, and `send` frames an `error` frame; deliveries, acks and probes go on. `0` turns it off",
  }),
}

export const readGatewaySettings = Effect.gen(function* () {
  // Checked before any other variable: a node cannot start without a way to verify tokens.
  if (
    (yield* rawVariable("HOLDOVER_JWT_SECRET")) === undefined &&
    (yield* rawVariable("HOLDOVER_JWKS")) === undefined
  )
    return yield* new InvalidConfig({
      variable: "HOLDOVER_JWT_SECRET",
      expected: "a shared secret for HS256 tokens (or HOLDOVER_JWKS: a JWKS file or URL for RS256/ES256)",
      got: "",
    })
  const values = yield* readVariables(gatewayVariables)
  return { ...values, authTimeoutMs: d.authTimeoutMs } satisfies GatewaySettings
})

export class GatewayConfig extends Context.Service<GatewayConfig, GatewaySettings>()(
  "holdover/GatewayConfig",
) {
  static readonly layer = (overrides: Partial<GatewaySettings> = {}) =>
    Layer.succeed(GatewayConfig, { ...defaultGatewaySettings, ...overrides })

  static readonly layerConfig = Layer.effect(GatewayConfig, readGatewaySettings)
}
