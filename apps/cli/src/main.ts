// Entry point of `holdover` (bin/holdover.js runs this file): runs the command tree with the
// Node platform services and sets the exit code. Failures are printed here, once, on stderr:
// a CliFailure as its message; a parse error by the presenter below (the errors and a pointer
// to --help, not the whole help page); anything else as a pretty cause (a bug). Ctrl-C
// interrupts the command, closing what it opened, and exits 130.
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Effect, Exit, Layer } from "effect"
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
  Effect.provide(Layer.mergeAll(NodeServices.layer, CliOutput.layerPresenter(presenter))),
)

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  teardown: (exit, onExit) => onExit(exitCodeOf(exit)),
})
