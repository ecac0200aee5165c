// What commands print. Results go to stdout — a table or lines for people, or one JSON
// document (or one JSON object per line for streams) with `--json`; notes, prompts and the
// progress bar go to stderr so stdout stays parseable. Writes are synchronous: nothing is lost
// when the process exits right after.
import { Effect } from "effect"
import { JsonOutput } from "./Settings.ts"

export type Row = ReadonlyArray<string | number>

/** Left-aligned columns separated by two spaces; numbers are right-aligned. */
export const formatTable = (header: Row, rows: ReadonlyArray<Row>): string => {
  const all = [header, ...rows]
  const widths = header.map((_, column) => Math.max(...all.map((row) => String(row[column] ?? "").length)))
  return all
    .map((row) =>
      row
        .map((cell, column) => {
          const width = widths[column] ?? 0
          const text = String(cell)
          return typeof cell === "number" ? text.padStart(width) : text.padEnd(width)
        })
        .join("  ")
        .trimEnd(),
    )
    .join("\n")
}

const writeOut = (text: string) =>
  Effect.sync(() => void process.stdout.write(text.endsWith("\n") ? text : `${text}\n`))

/** `1 message`, `2 messages`. */
export const count = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? "" : "s"}`

export const note = (text: string) => Effect.sync(() => void process.stderr.write(`${text}\n`))

export const isJson = Effect.service(JsonOutput)

/** Prints `machine` as JSON with `--json`, else the human text. */
export const emit = (human: () => string, machine: unknown) =>
  Effect.flatMap(isJson, (json) => writeOut(json ? JSON.stringify(machine, null, 2) : human()))

/** One record of a stream: a JSON line with `--json`, else the human line. */
export const emitLine = (human: () => string, machine: unknown) =>
  Effect.flatMap(isJson, (json) => writeOut(json ? JSON.stringify(machine) : human()))

/** A progress bar redrawn in place on stderr; a no-op unless stderr is a terminal. */
export const progressBar = (label: string, total: number) => {
  const enabled = process.stderr.isTTY === true && total > 0
  const width = 30
  return {
    update: (done: number) =>
      Effect.sync(() => {
        if (!enabled) return
        const filled = Math.round((done / total) * width)
        process.stderr.write(
          `\r${label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total}`,
        )
      }),
    finish: Effect.sync(() => {
      if (enabled) process.stderr.write("\r\x1b[2K")
    }),
  }
}

export const formatMs = (ms: number): string => {
  for (const [unit, size] of [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
  ] as const)
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`
  return `${ms}ms`
}

export const formatBytes = (bytes: number): string =>
  bytes < 1024
    ? `${bytes} B`
    : bytes < 1024 ** 2
      ? `${(bytes / 1024).toFixed(1)} KiB`
      : `${(bytes / 1024 ** 2).toFixed(1)} MiB`
