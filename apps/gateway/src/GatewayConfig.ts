// Settings of one gateway node, read from the contract's HOLDOVER_* variables at start-up.
// A bad value stops start-up with InvalidConfig naming the variable and what it expected
// (the queue's own variables are read by @holdover/queue's QueueConfig.layerConfig).
import { InvalidConfig, parseDuration } from "@holdover/queue"
import { Config, Context, Effect, Layer, Option, Redacted } from "effect"

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

const raw = (name: string) => Config.option(Config.String(name)).pipe(Effect.map(Option.getOrUndefined))

const parsed = <A>(name: string, expected: string, parse: (value: string) => A | undefined, fallback: A) =>
  Effect.gen(function* () {
    const value = yield* raw(name)
    if (value === undefined) return fallback
    const result = parse(value.trim())
    if (result === undefined) return yield* new InvalidConfig({ variable: name, expected, got: value })
    return result
  })

const intIn = (min: number, max: number) => (value: string) =>
  /^\d+$/.test(value) && Number(value) >= min && Number(value) <= max ? Number(value) : undefined

const logLevels: ReadonlyArray<LogLevel> = ["Trace", "Debug", "Info", "Warn", "Error"]

export const readGatewaySettings = Effect.gen(function* () {
  const d = defaultGatewaySettings
  const secret = yield* raw("HOLDOVER_JWT_SECRET")
  const jwks = yield* raw("HOLDOVER_JWKS")
  if (secret === undefined && jwks === undefined)
    return yield* new InvalidConfig({
      variable: "HOLDOVER_JWT_SECRET",
      expected: "a shared secret for HS256 tokens (or HOLDOVER_JWKS: a JWKS file or URL for RS256/ES256)",
      got: "",
    })
  if (secret !== undefined && secret.length < 16)
    return yield* new InvalidConfig({
      variable: "HOLDOVER_JWT_SECRET",
      expected: "at least 16 characters",
      got: "<redacted>",
    })
  const origins = (yield* raw("HOLDOVER_ALLOWED_ORIGINS")) ?? ""
  return {
    port: yield* parsed("HOLDOVER_PORT", "a port number 0-65535", intIn(0, 65_535), d.port),
    host: yield* parsed(
      "HOLDOVER_HOST",
      "an IP address or host name to listen on, such as 0.0.0.0, 127.0.0.1 or ::",
      (raw) => (/^[A-Za-z0-9.:[\]-]+$/.test(raw) ? raw.replace(/^\[(.*)\]$/, "$1") : undefined),
      d.host,
    ),
    jwtSecret: secret === undefined ? undefined : Redacted.make(secret),
    jwks,
    allowedOrigins: origins
      .split(",")
      .map((origin) => origin.trim().replace(/\/$/, ""))
      .filter((origin) => origin.length > 0),
    maxFrameBytes: yield* parsed(
      "HOLDOVER_MAX_FRAME_BYTES",
      "a size in bytes (1024 or more)",
      intIn(1024, 64 * 1024 * 1024),
      d.maxFrameBytes,
    ),
    heartbeatMs: yield* parsed("HOLDOVER_HEARTBEAT", "a duration such as 25s", parseDuration, d.heartbeatMs),
    drainTimeoutMs: yield* parsed(
      "HOLDOVER_DRAIN_TIMEOUT",
      "a duration such as 10s",
      parseDuration,
      d.drainTimeoutMs,
    ),
    authTimeoutMs: d.authTimeoutMs,
    logLevel: yield* parsed(
      "HOLDOVER_LOG_LEVEL",
      logLevels.join(", "),
      (value) => logLevels.find((level) => level.toLowerCase() === value.toLowerCase()),
      d.logLevel,
    ),
    demo: yield* parsed(
      "HOLDOVER_DEMO",
      "on or off",
      (value) => (/^(on|true|1)$/i.test(value) ? true : /^(off|false|0)$/i.test(value) ? false : undefined),
      d.demo,
    ),
    compression: yield* parsed(
      "HOLDOVER_WS_COMPRESSION",
      "on or off",
      (value) => (/^(on|true|1)$/i.test(value) ? true : /^(off|false|0)$/i.test(value) ? false : undefined),
      d.compression,
    ),
    compressionThreshold: yield* parsed(
      "HOLDOVER_WS_COMPRESSION_THRESHOLD",
      "a size in bytes",
      intIn(0, 64 * 1024 * 1024),
      d.compressionThreshold,
    ),
    publishRate: yield* parsed(
      "HOLDOVER_PUBLISH_RATE",
      "messages per second (a positive integer)",
      intIn(1, 10_000_000),
      d.publishRate,
    ),
    publishBurst: yield* parsed(
      "HOLDOVER_PUBLISH_BURST",
      "a positive integer",
      intIn(1, 10_000_000),
      d.publishBurst,
    ),
    frameRate: yield* parsed(
      "HOLDOVER_WS_FRAME_RATE",
      "frames per second (a positive integer)",
      intIn(1, 10_000_000),
      d.frameRate,
    ),
    frameBurst: yield* parsed(
      "HOLDOVER_WS_FRAME_BURST",
      "a positive integer",
      intIn(1, 10_000_000),
      d.frameBurst,
    ),
    admissionRate: yield* parsed(
      "HOLDOVER_SESSION_ADMISSION_RATE",
      "sessions per second (a positive integer)",
      intIn(1, 1_000_000),
      d.admissionRate,
    ),
    admissionConcurrency: yield* parsed(
      "HOLDOVER_SESSION_ADMISSION_CONCURRENCY",
      "a positive integer",
      intIn(1, 100_000),
      d.admissionConcurrency,
    ),
    admissionQueue: yield* parsed(
      "HOLDOVER_SESSION_ADMISSION_QUEUE",
      "a positive integer",
      intIn(1, 10_000_000),
      d.admissionQueue,
    ),
    shedEventLoopDelayMs: yield* parsed(
      "HOLDOVER_SHED_EVENT_LOOP_DELAY",
      "a duration such as 200ms (0 turns shedding off)",
      (raw) => (raw === "0" || raw === "off" ? 0 : parseDuration(raw)),
      d.shedEventLoopDelayMs,
    ),
  } satisfies GatewaySettings
})

export class GatewayConfig extends Context.Service<GatewayConfig, GatewaySettings>()(
  "holdover/GatewayConfig",
) {
  static readonly layer = (overrides: Partial<GatewaySettings> = {}) =>
    Layer.succeed(GatewayConfig, { ...defaultGatewaySettings, ...overrides })

  static readonly layerConfig = Layer.effect(GatewayConfig, readGatewaySettings)
}
