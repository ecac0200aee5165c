// The JetStream topology: one WorkQueue stream per priority, and the reconciliation that puts
// it in place at start-up. Missing streams are created; limits that differ (max age, capacity,
// overflow policy, duplicate window, replicas) are updated in place, which keeps the stored
// messages; what JetStream cannot change in place (retention, storage) stops start-up with a
// TopologyConflict naming the stream. Also the translation of nats.js errors, done here once.
import { priorities, type Priority } from "@holdover/protocol"
import {
  DiscardPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  StoreCompression,
  type StreamConfig,
} from "@nats-io/jetstream"
import { nanos } from "@nats-io/transport-node"
import { Effect } from "effect"
import { NatsConnection } from "./NatsConnection.ts"
import { QueueConfig, type QueueSettings } from "./QueueConfig.ts"
import { queueError } from "./QueueError.ts"
import { subjectToken } from "./RecipientKey.ts"

export const ApiCode = {
  StreamNotFound: 10059,
  MaxMessagesPerSubject: 10077,
  NoMessageFound: 10037,
  StreamNameInUse: 10058,
  InvalidStreamConfig: 10052,
  /** "JetStream system temporarily unavailable": no meta leader yet. */
  ClusterUnavailable: 10008,
  /** "no suitable peers for placement": also while a cluster is still forming. */
  NoSuitablePeers: 10005,
} as const

export const apiCode = (error: unknown): number | undefined =>
  error instanceof JetStreamApiError ? error.code : undefined

/** Any failure talking to JetStream that has no more specific meaning is "unavailable". */
export const unavailable = (what: string) => (cause: unknown) =>
  queueError({ _tag: "Unavailable" }, `${what}: ${cause instanceof Error ? cause.message : String(cause)}`)

export const streamName = (settings: QueueSettings, priority: Priority): string =>
  `${settings.namespace}_${priority.toUpperCase()}`

export const subjectFor = (settings: QueueSettings, priority: Priority, recipient: string): string =>
  `${settings.subjectPrefix}.${priority}.${subjectToken(recipient)}`

/** Whether a nats-server version (e.g. "2.10.3") is at least major.minor. */
export const atLeast = (version: string, major: number, minor: number): boolean => {
  const [a = 0, b = 0] = version.split(".").map((part) => Number.parseInt(part, 10))
  return a > major || (a === major && b >= minor)
}

export interface ServerFeatures {
  /** S2 stream compression (nats-server 2.10+). */
  readonly compression: boolean
  /** Direct gets of many messages in one request (nats-server 2.11+). */
  readonly batchedDirectGet: boolean
  /** Per-message TTLs (`allow_msg_ttl`, the Nats-TTL header; nats-server 2.11+). */
  readonly messageTtl: boolean
  /**
   * Replicated WorkQueue streams keep every acknowledged message across a network partition
   * (2.10+; 2.9.10 lost some in test/cluster's partition scenario, docs/guarantees.md).
   */
  readonly partitionSafe: boolean
  /** A stream's republish (live copies) can be added by an update (2.10+; 2.9 only at creation). */
  readonly republishUpdate: boolean
}

export const featuresOf = (serverVersion: string): ServerFeatures => ({
  compression: atLeast(serverVersion, 2, 10),
  batchedDirectGet: atLeast(serverVersion, 2, 11),
  messageTtl: atLeast(serverVersion, 2, 11),
  partitionSafe: atLeast(serverVersion, 2, 10),
  republishUpdate: atLeast(serverVersion, 2, 10),
})

/**
 * Where a priority stream republishes what it stores: the recipient's control subject, so one
 * subscription per session takes its live copies, takeover and presence requests (Session.ts).
 */
export const republishOf = (settings: QueueSettings, priority: Priority) => ({
  src: `${settings.subjectPrefix}.${priority}.*`,
  dest: `${settings.subjectPrefix}.ctl.{{wildcard(1)}}`,
})

export const streamConfig = (
  settings: QueueSettings,
  priority: Priority,
  features: ServerFeatures = featuresOf("2.9.0"),
): Partial<StreamConfig> & { name: string } => {
  const policy = settings.policies[priority]
  const discardNew = policy.overflow !== "drop_oldest"
  return {
    name: streamName(settings, priority),
    subjects: [`${settings.subjectPrefix}.${priority}.*`],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    num_replicas: settings.replicas,
    max_age: nanos(policy.maxAgeMs),
    max_msgs_per_subject: policy.capacity,
    max_msg_size: settings.maxMessageBytes + 4096,
    discard: discardNew ? DiscardPolicy.New : DiscardPolicy.Old,
    discard_new_per_subject: discardNew,
    duplicate_window: nanos(Math.max(settings.duplicateWindowMs, 120_000)),
    allow_direct: true,
    republish: republishOf(settings, priority),
    ...(features.compression ? { compression: StoreCompression.S2 } : {}),
    // A message with a shorter TTL than the stream's max age leaves at its own time.
    ...(features.messageTtl ? { allow_msg_ttl: true } : {}),
  }
}

export const dedupStreamName = (settings: QueueSettings): string => `${settings.namespace}_DEDUP`

/** A dedup claim's subject: one per (producer, recipient, id), see RecipientQueue's enqueue. */
export const dedupSubject = (settings: QueueSettings, key: string): string =>
  `${settings.subjectPrefix}.dedup.${key}`

/**
 * The dedup claims: one message per (producer, recipient, id) key that names the priority the
 * first message went to, kept for the duplicate window. A second claim of a key is refused by
 * the server (one message per subject, discard new), atomically, cluster-wide.
 */
export const dedupStreamConfig = (
  settings: QueueSettings,
  features: ServerFeatures = featuresOf("2.9.0"),
): Partial<StreamConfig> & { name: string } => ({
  name: dedupStreamName(settings),
  subjects: [dedupSubject(settings, "*")],
  retention: RetentionPolicy.Limits,
  storage: StorageType.File,
  num_replicas: settings.replicas,
  max_age: nanos(Math.max(settings.duplicateWindowMs, 120_000)),
  max_msgs_per_subject: 1,
  discard: DiscardPolicy.New,
  discard_new_per_subject: true,
  duplicate_window: nanos(Math.max(settings.duplicateWindowMs, 120_000)),
  allow_direct: true,
  ...(features.compression ? { compression: StoreCompression.S2 } : {}),
})

export const sessionStreamName = (settings: QueueSettings): string => `${settings.namespace}_SESSIONS`

/** A recipient's session record: what its last session may have sent (Session.ts). */
export const sessionSubject = (settings: QueueSettings, recipient: string): string =>
  `${settings.subjectPrefix}.session.${subjectToken(recipient)}`

/** Takeover and presence requests of a recipient's session (core NATS, no stream). */
export const controlSubject = (settings: QueueSettings, recipient: string): string =>
  `${settings.subjectPrefix}.ctl.${subjectToken(recipient)}`

/**
 * The session records: one message per recipient (the newest wins), kept as long as the longest
 * max age — after that every message a record speaks of has expired anyway.
 */
export const sessionStreamConfig = (
  settings: QueueSettings,
  features: ServerFeatures = featuresOf("2.9.0"),
): Partial<StreamConfig> & { name: string } => ({
  name: sessionStreamName(settings),
  subjects: [`${settings.subjectPrefix}.session.*`],
  retention: RetentionPolicy.Limits,
  storage: StorageType.File,
  num_replicas: settings.replicas,
  max_age: nanos(Math.max(...priorities.map((priority) => settings.policies[priority].maxAgeMs))),
  max_msgs_per_subject: 1,
  discard: DiscardPolicy.Old,
  allow_direct: true,
  ...(features.compression ? { compression: StoreCompression.S2 } : {}),
})

const mutableKeys = [
  "subjects",
  "num_replicas",
  "max_age",
  "max_msgs_per_subject",
  "max_msg_size",
  "discard",
  "discard_new_per_subject",
  "duplicate_window",
  "allow_direct",
  "compression",
  "allow_msg_ttl",
  "republish",
] as const

/** What the streams in place offer the sessions, found by `reconcile`. */
export interface TopologyState {
  /** Priorities whose stream republishes what it stores to the control subjects (live copies). */
  readonly copies: ReadonlySet<Priority>
}

/** Warns, once at start, when replicated streams run on a server that is not partition-safe. */
export const warnIfPartitionUnsafe = Effect.fn("Topology.warnIfPartitionUnsafe")(function* () {
  const { serverVersion } = yield* NatsConnection
  const settings = yield* QueueConfig
  if (settings.replicas > 1 && !featuresOf(serverVersion()).partitionSafe)
    yield* Effect.logWarning(
      `nats-server ${serverVersion()} can lose acknowledged messages across a network partition of a ` +
        `replicated stream (2.9 WorkQueue replicas drift apart, see docs/guarantees.md): run nats-server ` +
        `2.10 or later (the manifests use the pinned official image, deploy/nats-server.version)`,
      { serverVersion: serverVersion(), replicas: settings.replicas },
    )
})

/**
 * Creates or updates the four priority streams, the dedup claims and the session records, and
 * tells which priority streams republish live copies: all of them, except streams created by an
 * older Holdover on nats-server 2.9, which cannot add a republish to an existing stream (their
 * sessions read live messages back on a doorbell; a warning says how to move).
 */
export const reconcile = Effect.fn("Topology.reconcile")(function* () {
  const { jsm, serverVersion } = yield* NatsConnection
  const settings = yield* QueueConfig
  const features = featuresOf(serverVersion())
  const wanted = [
    ...priorities.map((priority) => streamConfig(settings, priority, features)),
    dedupStreamConfig(settings, features),
    sessionStreamConfig(settings, features),
  ]
  const copies = new Set<Priority>(priorities)
  for (const desired of wanted) {
    const name = desired.name
    const current = yield* Effect.tryPromise({
      try: () => jsm.streams.info(name).then((info) => info.config),
      catch: (cause) => cause,
    }).pipe(
      Effect.catch((cause) =>
        apiCode(cause) === ApiCode.StreamNotFound
          ? Effect.succeed(undefined)
          : Effect.fail(unavailable(`cannot read stream ${name}`)(cause)),
      ),
    )
    if (current === undefined) {
      yield* Effect.tryPromise({
        try: () => jsm.streams.add(desired),
        // JetStream refusing the stream (e.g. replicas on a server that is not clustered) is a
        // configuration to fix, not an outage to wait out.
        catch: (cause) => {
          const code = apiCode(cause)
          return code === undefined || code === ApiCode.ClusterUnavailable || code === ApiCode.NoSuitablePeers
            ? unavailable(`cannot create ${name}`)(cause)
            : queueError(
                { _tag: "TopologyConflict", stream: name },
                `JetStream refused to create stream ${name}: ${cause instanceof Error ? cause.message : String(cause)}`,
              )
        },
      })
      yield* Effect.logInfo("created stream", { stream: name })
      continue
    }
    if (current.retention !== desired.retention || current.storage !== desired.storage)
      return yield* queueError(
        { _tag: "TopologyConflict", stream: name },
        `stream ${name} exists with retention=${current.retention} storage=${current.storage}; Holdover needs ` +
          `retention=${desired.retention} storage=file, which cannot be changed in place. Move its messages elsewhere and ` +
          `delete the stream, or choose another namespace.`,
      )
    // The server leaves out false flags (omitempty): an absent one is false, not a difference.
    const same = (have: unknown, want: unknown) =>
      JSON.stringify(have ?? (want === false ? false : have)) === JSON.stringify(want)
    const differs = mutableKeys.filter((key) => key in desired && !same(current[key], desired[key]))
    const changed = features.republishUpdate ? differs : differs.filter((key) => key !== "republish")
    const priority = priorities.find((p) => streamName(settings, p) === name)
    if (priority && differs.includes("republish") && !changed.includes("republish")) {
      copies.delete(priority)
      yield* Effect.logWarning(
        `stream ${name} does not republish live copies to the control subjects, and nats-server ${serverVersion()} ` +
          `cannot change that on an existing stream: its sessions read each live message back after a doorbell ` +
          `(slower). Upgrade nats-server to 2.10 or later (the next start adds it), or recreate the stream once it is empty.`,
        { stream: name },
      )
    }
    if (changed.length === 0) continue
    const update: Partial<StreamConfig> = {}
    for (const key of changed) Object.assign(update, { [key]: desired[key] })
    yield* Effect.tryPromise({
      try: () => jsm.streams.update(name, update),
      catch: (cause) =>
        queueError(
          { _tag: "TopologyConflict", stream: name },
          `cannot update stream ${name} (${changed.join(", ")}): ${cause instanceof Error ? cause.message : String(cause)}`,
        ),
    })
    yield* Effect.logInfo("updated stream", { stream: name, changed })
  }
  return { copies } satisfies TopologyState
})
