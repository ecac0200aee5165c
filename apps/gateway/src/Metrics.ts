// Prometheus metrics of a gateway node (prom-client, its own registry, served at /metrics).
import { Context, Layer } from "effect"
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client"

const make = () => {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: "holdover_" })
  const byPriority = (name: string, help: string) =>
    new Counter({ name, help, labelNames: ["priority"] as const, registers: [registry] })
  return {
    registry,
    connections: new Gauge({
      name: "holdover_connections",
      help: "Open WebSocket connections",
      registers: [registry],
    }),
    sessions: new Gauge({ name: "holdover_sessions", help: "Open delivery sessions", registers: [registry] }),
    enqueued: byPriority("holdover_messages_enqueued_total", "Messages stored in JetStream"),
    delivered: byPriority("holdover_messages_delivered_total", "Messages sent to clients"),
    acked: new Counter({
      name: "holdover_messages_acked_total",
      help: "Messages acked by clients",
      registers: [registry],
    }),
    redelivered: byPriority(
      "holdover_messages_redelivered_total",
      "Messages sent again after an earlier delivery",
    ),
    expired: new Counter({
      name: "holdover_messages_expired_total",
      help: "Messages removed unsent because their TTL passed",
      registers: [registry],
    }),
    dropped: byPriority("holdover_messages_dropped_total", "Messages dropped by the drop_newest policy"),
    rejected: new Counter({
      name: "holdover_messages_rejected_total",
      help: "Producer requests refused, by error code",
      labelNames: ["code"] as const,
      registers: [registry],
    }),
    replaySeconds: new Histogram({
      name: "holdover_replay_seconds",
      help: "Time from session open until the backlog pending at open was delivered",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    natsConnected: new Gauge({
      name: "holdover_nats_connected",
      help: "1 while connected to NATS",
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: "holdover_rate_limited_total",
      help: "Requests refused by a rate limit, by reason (publish, frames, admission)",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    shed: new Counter({
      name: "holdover_shed_total",
      help: "Producer requests refused at once because JetStream is failing or this node is saturated",
      registers: [registry],
    }),
    breakerOpen: new Gauge({
      name: "holdover_publish_breaker_state",
      help: "Publish circuit breakers: 0 closed, 1 half-open, 2 open (the worst of the four priorities)",
      registers: [registry],
    }),
    pendingPublishes: new Gauge({
      name: "holdover_pending_publishes",
      help: "Publishes in progress",
      registers: [registry],
    }),
    jetStreamApiQueue: new Gauge({
      name: "holdover_jetstream_api_queue",
      help: "Session JetStream API calls waiting for a slot (HOLDOVER_JS_API_CONCURRENCY are in flight at most)",
      registers: [registry],
    }),
    admissionQueue: new Gauge({
      name: "holdover_session_admission_queue",
      help: "Sessions waiting for an admission slot",
      registers: [registry],
    }),
    wsPayloadBytes: new Counter({
      name: "holdover_ws_payload_bytes_total",
      help: "Bytes of frames sent to clients before compression",
      registers: [registry],
    }),
    wsWireBytes: new Counter({
      name: "holdover_ws_wire_bytes_total",
      help: "Bytes written to client sockets (after permessage-deflate); payload/wire = compression ratio",
      registers: [registry],
    }),
    closes: new Counter({
      name: "holdover_ws_closes_total",
      help: "WebSocket closes by close code",
      labelNames: ["code"] as const,
      registers: [registry],
    }),
  }
}

export class Metrics extends Context.Service<Metrics, ReturnType<typeof make>>()("holdover/Metrics") {
  static readonly layer = Layer.sync(Metrics, make)
}
