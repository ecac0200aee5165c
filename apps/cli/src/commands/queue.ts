// `holdover queue RECIPIENT`: how many messages wait for a recipient at each priority, and
// whether a session of theirs is open on any gateway node (GET /v1/recipients/{id}/queue,
// scope admin).
import { priorities } from "@holdover/protocol"
import { Effect } from "effect"
import { Argument, Command } from "effect/cli"
import { GatewayClient } from "../GatewayClient.ts"
import { emit, formatTable } from "../Output.ts"

export const recipientArgument = Argument.String("recipient").pipe(
  Argument.withDescription("the recipient id"),
)

export const queue = Command.make("queue", { recipient: recipientArgument }, (input) =>
  Effect.gen(function* () {
    const client = yield* GatewayClient
    const info = yield* client.queue(input.recipient)
    const total = priorities.reduce((sum, priority) => sum + info.depth[priority], 0)
    yield* emit(
      () =>
        `${info.recipient}: ${info.online ? "online" : "offline"}, ${total} queued\n\n` +
        formatTable(
          ["priority", "depth"],
          [...priorities.map((priority) => [priority, info.depth[priority]]), ["total", total]],
        ),
      info,
    )
  }),
).pipe(
  Command.withDescription("Show a recipient's queue depth per priority and whether it is online."),
  Command.provide(GatewayClient.layer({ scopes: ["admin"] })),
)
