// Queue policy and topology settings: per-priority max age, capacity and overflow policy,
// message limits, replicas and session flow control. `QueueConfig.layer(options)` for code and
// tests; `QueueConfig.layerConfig` reads the contract's HOLDOVER_* variables, and a bad value
// fails start-up with an InvalidConfig error naming the variable and what it expected.
import { priorities, type Priority } from "@holdover/protocol"
import { Config, Context, Effect, Layer, Schema } from "effect"

export type Overflow = "drop_oldest" | "drop_newest" | "reject"
export const overflowPolicies: ReadonlyArray<Overflow> = ["drop_oldest", "drop_newest", "reject"]

export interface PriorityPolicy {
  readonly maxAgeMs: number
  readonly capacity: number
  readonly overflow: Overflow
}

export interface QueueSettings {
  /** Stream name prefix: streams are `<namespace>_CRITICAL` … (default HOLDOVER). */
  readonly namespace: string
  /** Subject prefix: subjects are `<subjectPrefix>.<priority>.<recipient token>` (default hq). */
  readonly subjectPrefix: string
  readonly replicas: 1 | 3
  readonly policies: Readonly<Record<Priority, PriorityPolicy>>
  readonly maxMessageBytes: number
  readonly duplicateWindowMs: number
  /** Unacked deliveries a session may have out at once. */
  readonly maxInFlight: number
  /** A JetStream call that takes longer fails as Unavailable. */
  readonly requestTimeoutMs: number
  /** How long a new session waits for an older one (on a hung node) to let go. */
  readonly takeoverTimeoutMs: number
  /** A publish answered slower than this counts as a failure for the circuit breaker. */
  readonly slowPublishMs: number
  /** Publishes in progress on one node; beyond it producers get Unavailable at once (load shedding). */
  readonly maxPendingPublishes: number
  /** Session JetStream API calls (reads, deletes, counts, session records) one node has in flight at once. */
  readonly apiConcurrency: number
}

const hour = 3_600_000
export const defaultSettings: QueueSettings = {
  namespace: "HOLDOVER",
  subjectPrefix: "hq",
  replicas: 1,
  policies: {
    critical: { maxAgeMs: 7 * 24 * hour, capacity: 10_000, overflow: "reject" },
    high: { maxAgeMs: 24 * hour, capacity: 1_000, overflow: "drop_oldest" },
    normal: { maxAgeMs: hour, capacity: 1_000, overflow: "drop_oldest" },
    low: { maxAgeMs: 10 * 60_000, capacity: 100, overflow: "drop_newest" },
  },
  maxMessageBytes: 64 * 1024,
  duplicateWindowMs: 2 * 60_000,
  maxInFlight: 256,
  requestTimeoutMs: 2_000,
  slowPublishMs: 2_000,
  takeoverTimeoutMs: 5_000,
  maxPendingPublishes: 10_000,
  apiConcurrency: 16,
}

export class InvalidConfig extends Schema.TaggedError<InvalidConfig>()("InvalidConfig", {
  variable: Schema.String,
  expected: Schema.String,
  got: Schema.String,
}) {
  override get message(): string {
    return `${this.variable}: expected ${this.expected}, got ${JSON.stringify(this.got)}`
  }
}

const units: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: hour, d: 24 * hour }

/** Parses `500ms`, `30s`, `10m`, `24h`, `7d` or a plain number of milliseconds. */
export const parseDuration = (text: string): number | undefined => {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text)
  if (!match) return undefined
  const value = Number(match[1]) * (units[match[2] ?? "ms"] ?? 1)
  return Number.isFinite(value) && value > 0 ? Math.round(value) : undefined
}

const optionalString = (name: string) => Config.option(Config.String(name))

const read = <A>(
  variable: string,
  expected: string,
  parse: (raw: string) => A | undefined,
  fallback: A,
): Effect.Effect<A, InvalidConfig | Config.ConfigError> =>
  Effect.gen(function* () {
    const raw = yield* optionalString(variable)
    if (raw._tag === "None") return fallback
    const value = parse(raw.value)
    if (value === undefined) return yield* new InvalidConfig({ variable, expected, got: raw.value })
    return value
  })

const positiveInt = (raw: string) => (/^\d+$/.test(raw.trim()) && Number(raw) > 0 ? Number(raw) : undefined)

/** Reads the HOLDOVER_* variables of the contract that concern queues. */
export const readSettings: Effect.Effect<QueueSettings, InvalidConfig | Config.ConfigError> = Effect.gen(
  function* () {
    const d = defaultSettings
    const replicas = yield* read(
      "HOLDOVER_STREAM_REPLICAS",
      "1 or 3",
      (raw) => (raw.trim() === "1" ? 1 : raw.trim() === "3" ? 3 : undefined),
      d.replicas,
    )
    const policies = {} as Record<Priority, PriorityPolicy>
    for (const priority of priorities) {
      const P = priority.toUpperCase()
      const base = d.policies[priority]
      policies[priority] = {
        maxAgeMs: yield* read(
          `HOLDOVER_${P}_MAX_AGE`,
          "a duration such as 500ms, 30s, 10m, 24h or 7d",
          parseDuration,
          base.maxAgeMs,
        ),
        capacity: yield* read(`HOLDOVER_${P}_CAPACITY`, "a positive integer", positiveInt, base.capacity),
        overflow: yield* read(
          `HOLDOVER_${P}_OVERFLOW`,
          "drop_oldest, drop_newest or reject",
          (raw) => overflowPolicies.find((policy) => policy === raw.trim()),
          base.overflow,
        ),
      }
    }
    return {
      ...d,
      replicas,
      policies,
      maxMessageBytes: yield* read(
        "HOLDOVER_MAX_MESSAGE_BYTES",
        "a positive integer (bytes)",
        positiveInt,
        d.maxMessageBytes,
      ),
      maxInFlight: yield* read("HOLDOVER_MAX_IN_FLIGHT", "a positive integer", positiveInt, d.maxInFlight),
      requestTimeoutMs: yield* read(
        "HOLDOVER_PUBLISH_TIMEOUT",
        "a duration such as 2s",
        parseDuration,
        d.requestTimeoutMs,
      ),
      slowPublishMs: yield* read(
        "HOLDOVER_SLOW_PUBLISH",
        "a duration such as 2s",
        parseDuration,
        d.slowPublishMs,
      ),
      maxPendingPublishes: yield* read(
        "HOLDOVER_MAX_PENDING_PUBLISHES",
        "a positive integer",
        positiveInt,
        d.maxPendingPublishes,
      ),
      apiConcurrency: yield* read(
        "HOLDOVER_JS_API_CONCURRENCY",
        "a positive integer",
        positiveInt,
        d.apiConcurrency,
      ),
    }
  },
)

export class QueueConfig extends Context.Service<QueueConfig, QueueSettings>()("holdover/QueueConfig") {
  static readonly layer = (overrides: Partial<QueueSettings> = {}) =>
    Layer.succeed(QueueConfig, { ...defaultSettings, ...overrides })

  static readonly layerConfig = Layer.effect(QueueConfig, readSettings)
}
