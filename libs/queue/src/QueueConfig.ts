// Queue policy and topology settings: per-priority max age, capacity and overflow policy,
// message limits, replicas and session flow control. `QueueConfig.layer(options)` for code and
// tests; `QueueConfig.layerConfig` reads the contract's HOLDOVER_* variables, and a bad value
// fails start-up with an InvalidConfig error naming the variable and what it expected.
import { priorities, type Priority } from "@holdover/protocol"
import type { Config } from "effect"
import { Context, Effect, Layer } from "effect"
import {
  oneOf,
  parseDuration,
  positiveInt,
  readVariables,
  variable,
  type InvalidConfig,
  type Variable,
} from "./Variables.ts"

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
  /** …and their payload bytes at most (past the first): the window of large messages. */
  readonly maxInFlightBytes: number
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
  maxInFlight: 1024,
  maxInFlightBytes: 4 * 1024 * 1024,
  requestTimeoutMs: 2_000,
  slowPublishMs: 2_000,
  takeoverTimeoutMs: 5_000,
  maxPendingPublishes: 10_000,
  apiConcurrency: 16,
}

const durationExample = "a duration such as 500ms, 30s, 10m, 24h or 7d"

/** Per-priority variables: `HOLDOVER_<PRIORITY>_MAX_AGE`, `_CAPACITY`, `_OVERFLOW`. */
const priorityVariables = (priority: Priority) => {
  const P = priority.toUpperCase()
  const base = defaultSettings.policies[priority]
  return {
    maxAgeMs: variable({
      name: `HOLDOVER_${P}_MAX_AGE`,
      expected: durationExample,
      parse: parseDuration,
      default: base.maxAgeMs,
      shown: shownPriorityDefaults[priority].maxAge,
      meaning: "TTL ceiling of a priority: `500ms`, `30s`, `10m`, `24h`, `7d`",
    }),
    capacity: variable({
      name: `HOLDOVER_${P}_CAPACITY`,
      expected: "a positive integer",
      parse: positiveInt,
      default: base.capacity,
      shown: String(base.capacity),
      meaning: "messages kept per recipient at that priority",
    }),
    overflow: variable({
      name: `HOLDOVER_${P}_OVERFLOW`,
      expected: "drop_oldest, drop_newest or reject",
      parse: oneOf(overflowPolicies),
      default: base.overflow,
      shown: base.overflow,
      meaning: "`drop_oldest`, `drop_newest` or `reject`",
    }),
  }
}

const shownPriorityDefaults: Record<Priority, { readonly maxAge: string }> = {
  critical: { maxAge: "7d" },
  high: { maxAge: "24h" },
  normal: { maxAge: "1h" },
  low: { maxAge: "10m" },
}

/** Read by NatsConnection.layerConfig. */
export const natsUrlVariable = variable({
  name: "HOLDOVER_NATS_URL",
  expected: "NATS server URLs, comma-separated",
  parse: (raw) => {
    const servers = raw
      .split(",")
      .map((server) => server.trim())
      .filter((server) => server.length > 0)
    return servers.length > 0 ? servers : undefined
  },
  default: ["nats://127.0.0.1:4222"] as ReadonlyArray<string>,
  shown: "nats://127.0.0.1:4222",
  meaning: "NATS servers, comma-separated",
})

/** The queue's settings read from variables, but the per-priority ones (`queuePriorityVariables`). */
export const queueVariables = {
  maxMessageBytes: variable({
    name: "HOLDOVER_MAX_MESSAGE_BYTES",
    expected: "a positive integer (bytes)",
    parse: positiveInt,
    default: defaultSettings.maxMessageBytes,
    shown: String(defaultSettings.maxMessageBytes),
    meaning: "largest payload (its JSON text) a producer may send",
  }),
  maxInFlight: variable({
    name: "HOLDOVER_MAX_IN_FLIGHT",
    expected: "a positive integer",
    parse: positiveInt,
    default: defaultSettings.maxInFlight,
    shown: String(defaultSettings.maxInFlight),
    meaning:
      "unacked deliveries per session: the window a replay runs in (about this many messages per round trip)",
  }),
  maxInFlightBytes: variable({
    name: "HOLDOVER_MAX_IN_FLIGHT_BYTES",
    expected: "a positive integer (bytes)",
    parse: positiveInt,
    default: defaultSettings.maxInFlightBytes,
    shown: String(defaultSettings.maxInFlightBytes),
    meaning:
      "payload bytes of a session's unacked deliveries, past the first: what a gateway holds for a client that reads slowly",
  }),
  replicas: variable({
    name: "HOLDOVER_STREAM_REPLICAS",
    expected: "1 or 3",
    parse: (raw): 1 | 3 | undefined => (raw === "1" ? 1 : raw === "3" ? 3 : undefined),
    default: defaultSettings.replicas,
    shown: String(defaultSettings.replicas),
    meaning: "JetStream replicas of the four streams: `1` or `3`",
  }),
  apiConcurrency: variable({
    name: "HOLDOVER_JS_API_CONCURRENCY",
    expected: "a positive integer",
    parse: positiveInt,
    default: defaultSettings.apiConcurrency,
    shown: String(defaultSettings.apiConcurrency),
    meaning:
      "JetStream calls of sessions (reads, deletes, counts, session records) in flight at once per node; the rest wait in order (`holdover_jetstream_api_queue`)",
  }),
  requestTimeoutMs: variable({
    name: "HOLDOVER_PUBLISH_TIMEOUT",
    expected: "a duration such as 2s",
    parse: parseDuration,
    default: defaultSettings.requestTimeoutMs,
    shown: "2s",
    meaning:
      "how long a publish waits for JetStream's answer (retried twice with the same id, so at most ~6 s before `503`)",
  }),
  slowPublishMs: variable({
    name: "HOLDOVER_SLOW_PUBLISH",
    expected: "a duration such as 2s",
    parse: parseDuration,
    default: defaultSettings.slowPublishMs,
    shown: "2s",
    meaning: "a publish answered slower than this counts as a failure for the publish circuit breaker",
  }),
  maxPendingPublishes: variable({
    name: "HOLDOVER_MAX_PENDING_PUBLISHES",
    expected: "a positive integer",
    parse: positiveInt,
    default: defaultSettings.maxPendingPublishes,
    shown: String(defaultSettings.maxPendingPublishes),
    meaning: "publishes in progress per node; beyond it producers get `503 QUEUE_UNAVAILABLE` at once",
  }),
}

/** The per-priority variables, by priority. */
export const queuePriorityVariables = Object.fromEntries(
  priorities.map((priority) => [priority, priorityVariables(priority)]),
) as Record<Priority, ReturnType<typeof priorityVariables>>

/** Every variable the queue reads, HOLDOVER_NATS_URL included (NatsConnection.layerConfig). */
export const allQueueVariables: ReadonlyArray<Variable<unknown>> = [
  natsUrlVariable,
  ...Object.values(queueVariables),
  ...priorities.flatMap((priority) => Object.values(queuePriorityVariables[priority])),
]

/** Reads the HOLDOVER_* variables of the contract that concern queues. */
export const readSettings: Effect.Effect<QueueSettings, InvalidConfig | Config.ConfigError> = Effect.gen(
  function* () {
    const values = yield* readVariables(queueVariables)
    const policies = {} as Record<Priority, PriorityPolicy>
    for (const priority of priorities)
      policies[priority] = yield* readVariables(queuePriorityVariables[priority])
    return { ...defaultSettings, ...values, policies }
  },
)

export class QueueConfig extends Context.Service<QueueConfig, QueueSettings>()("holdover/QueueConfig") {
  static readonly layer = (overrides: Partial<QueueSettings> = {}) =>
    Layer.succeed(QueueConfig, { ...defaultSettings, ...overrides })

  static readonly layerConfig = Layer.effect(QueueConfig, readSettings)
}
