// `holdover status`: one look at a gateway node and the JetStream behind it (GET /v1/status,
// scope admin): readiness, the NATS connection and server version, and per priority its
// stream's health (messages, bytes, consumers, replicas, cluster leader) and policy (max age,
// capacity per recipient, overflow). Exits 6 when the node is not ready or NATS is down, so
// it doubles as a scriptable health check.
import { Effect } from "effect"
import { Command } from "effect/cli"
import { CliFailure } from "../Failure.ts"
import { GatewayClient, type StatusInfo } from "../GatewayClient.ts"
import { emit, formatBytes, formatMs, formatTable } from "../Output.ts"

const render = (url: string, status: StatusInfo): string => {
  const gateway = status.gateway.draining ? "draining" : status.gateway.ready ? "ready" : "not ready"
  const nats = status.nats.connected ? "connected" : "disconnected"
  const streams = formatTable(
    ["priority", "stream", "messages", "bytes", "consumers", "replicas", "leader"],
    status.streams.map((s) => [
      s.priority,
      s.stream,
      s.messages,
      formatBytes(s.bytes),
      s.consumers,
      s.replicas,
      s.cluster?.leader ?? "-",
    ]),
  )
  const policies = formatTable(
    ["priority", "max age", "capacity", "overflow"],
    status.streams.map((s) => [
      s.priority,
      formatMs(s.policy.maxAgeMs),
      s.policy.capacity,
      s.policy.overflow,
    ]),
  )
  return [
    `gateway  ${url}  ${gateway}  (version ${status.gateway.version})`,
    `nats     ${nats}  (server ${status.nats.version})`,
    "",
    "STREAMS",
    streams,
    "",
    "POLICIES (per recipient)",
    policies,
  ].join("\n")
}

export const status = Command.make("status", {}, () =>
  Effect.gen(function* () {
    const client = yield* GatewayClient
    const info = yield* client.status()
    yield* emit(() => render(client.url, info), { url: client.url, ...info })
    if (!info.gateway.ready || !info.nats.connected)
      return yield* new CliFailure({
        reason: { _tag: "NotReady" },
        message: `the gateway at ${client.url} is ${info.gateway.draining ? "draining" : "not ready"}${info.nats.connected ? "" : " (NATS disconnected)"}`,
      })
  }),
).pipe(
  Command.withDescription(
    "Show gateway readiness, the NATS connection, stream health and the per-priority policies.",
  ),
  Command.provide(GatewayClient.layer({ scopes: ["admin"] })),
)
