// Every environment variable a gateway node reads (PROTOCOL.md "Running a node and
// configuration"). Deployment manifests are checked against this list.
import { priorities } from "@holdover/protocol"

const perPriority = priorities.flatMap((priority) => {
  const P = priority.toUpperCase()
  return [`HOLDOVER_${P}_MAX_AGE`, `HOLDOVER_${P}_CAPACITY`, `HOLDOVER_${P}_OVERFLOW`]
})

export const environmentVariables = [
  "HOLDOVER_NATS_URL",
  "HOLDOVER_HOST",
  "HOLDOVER_PORT",
  "HOLDOVER_JWT_SECRET",
  "HOLDOVER_JWKS",
  "HOLDOVER_ALLOWED_ORIGINS",
  "HOLDOVER_MAX_MESSAGE_BYTES",
  "HOLDOVER_MAX_FRAME_BYTES",
  "HOLDOVER_MAX_IN_FLIGHT",
  "HOLDOVER_STREAM_REPLICAS",
  "HOLDOVER_LOG_LEVEL",
  "HOLDOVER_DRAIN_TIMEOUT",
  "HOLDOVER_HEARTBEAT",
  "HOLDOVER_DEMO",
  "HOLDOVER_WS_COMPRESSION",
  "HOLDOVER_WS_COMPRESSION_THRESHOLD",
  "HOLDOVER_PUBLISH_RATE",
  "HOLDOVER_PUBLISH_BURST",
  "HOLDOVER_WS_FRAME_RATE",
  "HOLDOVER_WS_FRAME_BURST",
  "HOLDOVER_SESSION_ADMISSION_RATE",
  "HOLDOVER_SESSION_ADMISSION_QUEUE",
  "HOLDOVER_SESSION_ADMISSION_CONCURRENCY",
  "HOLDOVER_JS_API_CONCURRENCY",
  "HOLDOVER_SHED_EVENT_LOOP_DELAY",
  "HOLDOVER_SLOW_PUBLISH",
  "HOLDOVER_PUBLISH_TIMEOUT",
  "HOLDOVER_MAX_PENDING_PUBLISHES",
  ...perPriority,
] as const

export type EnvironmentVariable = (typeof environmentVariables)[number]

/** A node cannot start without at least one way to verify tokens. */
export const requiredOneOf: ReadonlyArray<EnvironmentVariable> = ["HOLDOVER_JWT_SECRET", "HOLDOVER_JWKS"]
