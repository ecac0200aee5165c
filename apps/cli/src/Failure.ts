// Every way a `holdover` command can fail, and the exit code each one maps to. Commands fail
// with one `CliFailure` whose `reason` says what went wrong; main.ts prints its message on
// stderr and exits with `exitCodeOf(failure)`. Argument errors found by the parser itself
// (unknown flag, bad choice) arrive as effect/cli `CliError`s and map to the same code 2.
import { ErrorCode, type ErrorCode as ErrorCodeType } from "@holdover/protocol"
import { Runtime, Schema } from "effect"

export const exitCodes = {
  ok: 0,
  failed: 1,
  badArguments: 2,
  unreachable: 3,
  auth: 4,
  refused: 5,
  unavailable: 6,
} as const

/** The table printed in `holdover --help` and docs/cli.md. */
export const exitCodeTable = [
  ["0", "success"],
  ["1", "other failure (unexpected answer, aborted, session closed by the gateway)"],
  ["2", "bad arguments: unknown command or flag, bad value, missing credentials"],
  ["3", "the gateway is unreachable"],
  ["4", "authentication or authorisation failed (UNAUTHORIZED, FORBIDDEN, close 4401/4403)"],
  [
    "5",
    "the gateway refused a message (INVALID_MESSAGE, MESSAGE_TOO_LARGE, QUEUE_FULL, RATE_LIMITED, dropped)",
  ],
  ["6", "JetStream is unavailable (QUEUE_UNAVAILABLE) or the gateway is not ready"],
  ["130", "interrupted (Ctrl-C)"],
] as const

export const FailureReason = Schema.Union([
  Schema.TaggedStruct("BadArguments", {}),
  Schema.TaggedStruct("Unreachable", { url: Schema.String }),
  /** The gateway answered with one of the contract's error codes. */
  Schema.TaggedStruct("Refused", { code: ErrorCode }),
  /** The gateway closed a WebSocket session with this close code. */
  Schema.TaggedStruct("Closed", { code: Schema.Number }),
  Schema.TaggedStruct("NotReady", {}),
  Schema.TaggedStruct("Aborted", {}),
  Schema.TaggedStruct("Unexpected", {}),
])
export type FailureReason = typeof FailureReason.Type

const exitCodeOfContractCode = (code: ErrorCodeType): number => {
  switch (code) {
    case "UNAUTHORIZED":
    case "FORBIDDEN":
      return exitCodes.auth
    case "INVALID_MESSAGE":
    case "INVALID_FRAME":
    case "MESSAGE_TOO_LARGE":
    case "QUEUE_FULL":
    case "RATE_LIMITED":
      return exitCodes.refused
    case "QUEUE_UNAVAILABLE":
      return exitCodes.unavailable
    case "NOT_FOUND":
    case "METHOD_NOT_ALLOWED":
    case "INTERNAL":
      return exitCodes.failed
  }
}

export const exitCodeOfReason = (reason: FailureReason): number => {
  switch (reason._tag) {
    case "BadArguments":
      return exitCodes.badArguments
    case "Unreachable":
      return exitCodes.unreachable
    case "Refused":
      return exitCodeOfContractCode(reason.code)
    case "Closed":
      return reason.code === 4401 || reason.code === 4403
        ? exitCodes.auth
        : reason.code === 1012
          ? exitCodes.unavailable
          : exitCodes.failed
    case "NotReady":
      return exitCodes.unavailable
    case "Aborted":
    case "Unexpected":
      return exitCodes.failed
  }
}

export class CliFailure extends Schema.TaggedError<CliFailure>()("CliFailure", {
  reason: FailureReason,
  message: Schema.String,
}) {
  override get [Runtime.errorExitCode](): number {
    return exitCodeOfReason(this.reason)
  }
}

export const badArguments = (message: string) => new CliFailure({ reason: { _tag: "BadArguments" }, message })

export const unexpected = (message: string) => new CliFailure({ reason: { _tag: "Unexpected" }, message })

/** A contract error body, printed as `CODE: message` (e.g. `QUEUE_FULL: …`). */
export const refused = (code: ErrorCodeType, message: string, path?: string) =>
  new CliFailure({
    reason: { _tag: "Refused", code },
    message: `${code}: ${message}${path ? ` (at ${path})` : ""}`,
  })
