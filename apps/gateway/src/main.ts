// Entry point of a gateway node: configuration from HOLDOVER_* variables, JSON logs, and the
// node's layers launched until SIGTERM/SIGINT, which drain it (NodeRuntime.runMain).
import { NodeRuntime } from "@effect/platform-node"
import { NatsConnection, QueueConfig } from "@holdover/queue"
import { Cause, Effect, Exit, Layer } from "effect"
import { gatewayLayer, jsonLogging } from "./Gateway.ts"
import { GatewayConfig, readGatewaySettings } from "./GatewayConfig.ts"

const main = Effect.gen(function* () {
  const settings = yield* readGatewaySettings
  return Layer.launch(
    gatewayLayer(Layer.succeed(GatewayConfig, settings), QueueConfig.layerConfig, NatsConnection.layerConfig),
  ).pipe(Effect.provide(jsonLogging(settings.logLevel)))
}).pipe(
  Effect.flatten,
  Effect.tapError((error) => Effect.sync(() => console.error(`holdover-gateway: ${error.message}`))),
  Effect.provide(jsonLogging("Info")),
)

// A drain started by SIGTERM/SIGINT is a clean stop: exit 0. Anything else that ends the node is a failure.
NodeRuntime.runMain(main, {
  disableErrorReporting: true,
  teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1),
})
