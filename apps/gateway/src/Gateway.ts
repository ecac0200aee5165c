// The whole gateway node as one layer: server, HTTP API, publisher, auth, metrics, state and the queue,
// over a NATS connection and configuration supplied by the caller (environment in main.ts,
// explicit settings in tests).
import type { NatsConnection, QueueConfig } from "@holdover/queue"
import { RecipientQueue } from "@holdover/queue"
import { Layer, Logger, References } from "effect"
import { Auth } from "./Auth.ts"
import { DemoPage } from "./DemoPage.ts"
import type { GatewayConfig } from "./GatewayConfig.ts"
import { GatewayServer } from "./GatewayServer.ts"
import { GatewayState } from "./GatewayState.ts"
import { Limits } from "./Limits.ts"
import { Metrics } from "./Metrics.ts"
import { Publisher } from "./Publisher.ts"

export const gatewayLayer = <E1, E2, E3>(
  gatewayConfig: Layer.Layer<GatewayConfig, E1>,
  queueConfig: Layer.Layer<QueueConfig, E2>,
  nats: Layer.Layer<NatsConnection, E3>,
) =>
  GatewayServer.layer.pipe(
    Layer.provide(
      Publisher.layer.pipe(
        Layer.provideMerge(Layer.mergeAll(Auth.layer, DemoPage.layer, Limits.layer, GatewayState.layer)),
      ),
    ),
    Layer.provideMerge(Metrics.layer),
    Layer.provideMerge(RecipientQueue.layer),
    Layer.provideMerge(Layer.mergeAll(gatewayConfig, queueConfig)),
    Layer.provideMerge(nats),
  )

/** Structured JSON logs on stdout, one object per line. */
export const jsonLogging = (level: "Trace" | "Debug" | "Info" | "Warn" | "Error") =>
  Layer.mergeAll(Logger.layer([Logger.consoleJson]), Layer.succeed(References.MinimumLogLevel, level))
