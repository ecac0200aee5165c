// Entry point of `holdover` (bin/holdover.js runs this file): runs the command tree with the
// Node platform services and sets the exit code. Failures are printed here, once, on stderr:
// a CliFailure as its message; a parse error by the presenter below (the errors and a pointer
// to --help, not the whole help page); anything else as a pretty cause (a bug). Ctrl-C
// interrupts the command, closing what it opened, and exits 130.
// Settings come from flags, then the environment, then the file `npm start` writes for the
// gateway it runs (<data dir>/dev.env: HOLDOVER_URL and HOLDOVER_JWT_SECRET), so a CLI in the
// same clone talks to that gateway with no setup; HOLDOVER_DATA_DIR moves it as it moves npm start's.
import { fileURLToPath } from "node:url"
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Config, ConfigProvider, Effect, Exit, Layer } from "effect"
import { CliError, CliOutput, Command } from "effect/cli"
import { holdover, version } from "./Cli.ts"
import { CliFailure, exitCodeOfReason, exitCodes } from "./Failure.ts"

const presenter: CliOutput.Presenter = {
  present: (event) =>
    event._tag === "InvalidInvocation"
      ? Effect.sync(() => {
          for (const error of event.errors) process.stderr.write(`holdover: ${error.message}\n`)
          process.stderr.write(`Run "${event.commandPath.join(" ")} --help" for usage.\n`)
        })
      : CliOutput.defaultPresenter.present(event),
}

const exitCodeOf = (exit: Exit.Exit<unknown, unknown>): number => {
  if (Exit.isSuccess(exit)) return exitCodes.ok
  if (Cause.hasInterruptsOnly(exit.cause)) return 130
  const error = Cause.squash(exit.cause)
  if (error instanceof CliFailure) return exitCodeOfReason(error.reason)
  if (CliError.isCliError(error))
    return error._tag === "ShowHelp" && error.errors.length === 0 ? exitCodes.ok : exitCodes.badArguments
  return exitCodes.failed
}

const repositoryData = fileURLToPath(new URL("../../../.data", import.meta.url))

const devSetup = ConfigProvider.layerAdd(
  Effect.gen(function* () {
    const dataDir = yield* Config.String("HOLDOVER_DATA_DIR").pipe(Config.withDefault(repositoryData))
    return yield* ConfigProvider.fromDotEnv({ path: `${dataDir}/dev.env` })
  }).pipe(Effect.orElseSucceed(() => ConfigProvider.fromUnknown({}))),
)

const program = Command.run(holdover, { version }).pipe(
  Effect.tapCause((cause) =>
    Effect.sync(() => {
      if (Cause.hasInterruptsOnly(cause)) return
      const error = Cause.squash(cause)
      if (error instanceof CliFailure) process.stderr.write(`holdover: ${error.message}\n`)
      else if (!CliError.isCliError(error))
        process.stderr.write(`holdover: unexpected failure\n${Cause.pretty(cause)}\n`)
    }),
  ),
  Effect.provide(
    Layer.mergeAll(
      NodeServices.layer,
      CliOutput.layerPresenter(presenter),
      devSetup.pipe(Layer.provide(NodeServices.layer)),
    ),
  ),
)

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  teardown: (exit, onExit) => onExit(exitCodeOf(exit)),
})
