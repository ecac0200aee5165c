// `holdover purge RECIPIENT`: deletes every queued message of a recipient
// (DELETE /v1/recipients/{id}/queue, scope admin). Destructive, so it asks first on a
// terminal, and refuses without `--yes` when stdin is not a terminal (scripts, pipes).
import { createInterface } from "node:readline/promises"
import { priorities } from "@holdover/protocol"
import { Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { badArguments, CliFailure } from "../Failure.ts"
import { GatewayClient } from "../GatewayClient.ts"
import { count, emit } from "../Output.ts"
import { recipientArgument } from "./queue.ts"

const confirm = (question: string) =>
  Effect.acquireUseRelease(
    Effect.sync(() => createInterface({ input: process.stdin, output: process.stderr })),
    (rl) => Effect.promise(() => rl.question(question)),
    (rl) => Effect.sync(() => rl.close()),
  ).pipe(Effect.map((answer) => /^y(es)?$/i.test(answer.trim())))

export const purge = Command.make(
  "purge",
  {
    recipient: recipientArgument,
    yes: Flag.Boolean("yes").pipe(
      Flag.withAlias("y"),
      Flag.withDescription("do not ask for confirmation (required when stdin is not a terminal)"),
      Flag.withDefault(false),
    ),
  },
  (input) =>
    Effect.gen(function* () {
      const client = yield* GatewayClient
      if (!input.yes) {
        if (!process.stdin.isTTY)
          return yield* badArguments(
            `refusing to purge ${input.recipient}'s queue without --yes: stdin is not a terminal to confirm on`,
          )
        const info = yield* client.queue(input.recipient)
        const total = priorities.reduce((sum, priority) => sum + info.depth[priority], 0)
        const ok = yield* confirm(
          total === 1
            ? `Delete the 1 queued message of ${input.recipient}? [y/N] `
            : `Delete all ${count(total, "queued message")} of ${input.recipient}? [y/N] `,
        )
        if (!ok)
          return yield* new CliFailure({ reason: { _tag: "Aborted" }, message: "aborted: nothing purged" })
      }
      const purged = yield* client.purge(input.recipient)
      yield* emit(() => `purged ${count(purged, "message")} from ${input.recipient}'s queue`, {
        recipient: input.recipient,
        purged,
      })
    }),
).pipe(
  Command.withDescription("Delete every queued message of a recipient (asks first unless --yes)."),
  Command.provide(GatewayClient.layer({ scopes: ["admin"] })),
)
