// The `holdover` command tree: the root with its global flags (--url, --token, --secret,
// --json) and one subcommand per module in commands/. The root has no handler of its own, so
// `holdover` alone prints the help. The exit-code table lives in the root description.
import { Command } from "effect/cli"
import { token } from "./commands/token.ts"
import { send } from "./commands/send.ts"
import { queue } from "./commands/queue.ts"
import { purge } from "./commands/purge.ts"
import { tail } from "./commands/tail.ts"
import { status } from "./commands/status.ts"
import { exitCodeTable } from "./Failure.ts"
import { formatTable } from "./Output.ts"
import { globalFlags } from "./Settings.ts"

export const version = "0.1.0"

const description = [
  "The Holdover command line: mint dev tokens, send messages, inspect, purge and tail queues, check a gateway.",
  "",
  "Environment: HOLDOVER_URL (gateway URL), HOLDOVER_TOKEN (bearer token), HOLDOVER_JWT_SECRET (mint tokens); unset, the URL and secret `npm start` wrote to .data/dev.env (or $HOLDOVER_DATA_DIR/dev.env).",
  "",
  "Exit codes:",
  formatTable(["code", "meaning"], exitCodeTable).replace(/\n/g, "\n  "),
].join("\n  ")

export const holdover = Command.make("holdover").pipe(
  Command.withDescription(description),
  Command.withSubcommands([token, send, queue, purge, tail, status]),
  Command.withGlobalFlags(globalFlags),
)
