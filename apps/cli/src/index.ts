// The CLI's command tree, for embedding or tests; the executable entry point is main.ts.
export { holdover, version } from "./Cli.ts"
export { CliFailure, exitCodes, exitCodeTable } from "./Failure.ts"
