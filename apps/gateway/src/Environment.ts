// Every environment variable a gateway node reads (PROTOCOL.md "Running a node and
// configuration"), derived from the two tables they are read from: @holdover/queue's
// (QueueConfig.ts, HOLDOVER_NATS_URL included) and the node's own (GatewayConfig.ts).
// Deployment manifests and docs/configuration.md are checked against this list.
import { allQueueVariables, type Variable } from "@holdover/queue"
import { gatewayVariables } from "./GatewayConfig.ts"

export const variables: ReadonlyArray<Variable<unknown>> = [
  ...allQueueVariables,
  ...Object.values(gatewayVariables),
]

export const environmentVariables: ReadonlyArray<string> = variables.map((variable) => variable.name)

/** A node cannot start without at least one way to verify tokens. */
export const requiredOneOf: ReadonlyArray<string> = [
  gatewayVariables.jwtSecret.name,
  gatewayVariables.jwks.name,
]
