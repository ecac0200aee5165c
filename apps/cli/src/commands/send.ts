// `holdover send`: enqueues messages over HTTP. A payload argument is one message
// (POST /v1/messages); `--file F` or stdin is JSON Lines, one message per line, sent in order
// through POST /v1/messages/batch in chunks of at most 1000, with a progress bar on a
// terminal. With `--to`, each input is a payload; without it, each is a whole message request
// ({"to":…,"payload":…}) and the flags fill in what it leaves out. Anything not queued
// (refused or dropped) makes the exit code non-zero after the summary is printed.
import { readFile } from "node:fs/promises"
import { text as readAll } from "node:stream/consumers"
import type { Priority } from "@holdover/protocol"
import { Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { badArguments, CliFailure, refused } from "../Failure.ts"
import { GatewayClient, type BatchResult, type ContractError } from "../GatewayClient.ts"
import { count, emit, note, progressBar } from "../Output.ts"
import { durationFlag, priorityFlag } from "../Settings.ts"

export const batchSize = 1000

interface Defaults {
  readonly to: Option.Option<string>
  readonly priority: Option.Option<Priority>
  readonly ttlMs: Option.Option<number>
  readonly id: Option.Option<string>
}

interface Line {
  readonly line: number
  readonly value: unknown
}

const toRequest = (defaults: Defaults, input: Line, many: boolean) => {
  const id = Option.map(defaults.id, (id) => (many ? `${id}-${input.line}` : id))
  const fromFlags = {
    ...(Option.isSome(defaults.priority) ? { priority: defaults.priority.value } : {}),
    ...(Option.isSome(defaults.ttlMs) ? { ttlMs: defaults.ttlMs.value } : {}),
    ...(Option.isSome(id) ? { id: id.value } : {}),
  }
  if (Option.isSome(defaults.to))
    return Effect.succeed({ to: defaults.to.value, ...fromFlags, payload: input.value })
  const value = input.value
  if (typeof value !== "object" || value === null || Array.isArray(value) || !("to" in value))
    return Effect.fail(
      badArguments(
        `${many ? `line ${input.line}: ` : ""}no recipient: pass --to, or give each message a "to" field ({"to":"alice","payload":…})`,
      ),
    )
  return Effect.succeed({ ...fromFlags, ...value })
}

const parseLines = (text: string, source: string) =>
  Effect.gen(function* () {
    const lines: Array<Line> = []
    const raw = text.split("\n")
    for (let i = 0; i < raw.length; i++) {
      const line = raw[i]?.trim() ?? ""
      if (line.length === 0) continue
      try {
        lines.push({ line: i + 1, value: JSON.parse(line) as unknown })
      } catch (error) {
        return yield* badArguments(`${source} line ${i + 1} is not valid JSON: ${(error as Error).message}`)
      }
    }
    if (lines.length === 0) return yield* badArguments(`${source} holds no messages`)
    return lines
  })

const readInput = (file: Option.Option<string>) =>
  Effect.gen(function* () {
    const path = Option.getOrElse(file, () => "-")
    if (path === "-" && process.stdin.isTTY)
      return yield* badArguments(
        "nothing to send: give a JSON payload argument, --file FILE, or pipe JSON Lines to stdin",
      )
    const text = yield* Effect.tryPromise({
      try: () => (path === "-" ? readAll(process.stdin) : readFile(path, "utf8")),
      catch: (error) => badArguments(`--file: cannot read ${path}: ${(error as Error).message}`),
    })
    return yield* parseLines(text, path === "-" ? "stdin" : path)
  })

const sendOne = Effect.fn("send.one")(function* (request: unknown) {
  const client = yield* GatewayClient
  const result = yield* client.send(request as Parameters<typeof client.send>[0])
  yield* emit(
    () =>
      result.status === "queued"
        ? `queued ${result.id} (${result.priority}, expires ${result.expiresAt})`
        : `dropped ${result.id}: ${result.reason}`,
    result,
  )
  if (result.status === "dropped")
    return yield* refused(
      "QUEUE_FULL",
      "the queue is full and its overflow policy drops new messages; nothing was queued",
    )
})

interface Failed {
  readonly line: number
  readonly error: ContractError
}

const sendMany = Effect.fn("send.many")(function* (
  requests: ReadonlyArray<{ line: number; request: unknown }>,
) {
  const client = yield* GatewayClient
  const bar = progressBar("sending", requests.length)
  let queued = 0
  let dropped = 0
  const failed: Array<Failed> = []
  for (let start = 0; start < requests.length; start += batchSize) {
    const chunk = requests.slice(start, start + batchSize)
    const results: ReadonlyArray<BatchResult> = yield* client
      .sendBatch(chunk.map((entry) => entry.request))
      .pipe(
        Effect.tapError(() =>
          Effect.andThen(
            bar.finish,
            note(`sent ${start} of ${count(requests.length, "message")} before the failure`),
          ),
        ),
      )
    results.forEach((result, i) => {
      const line = chunk[i]?.line ?? 0
      if ("error" in result) failed.push({ line, error: result.error })
      else if (result.status === "dropped") dropped++
      else queued++
    })
    yield* bar.update(Math.min(start + batchSize, requests.length))
  }
  yield* bar.finish
  for (const { line, error } of failed.slice(0, 10))
    yield* note(
      `line ${line}: ${error.code}: ${error.message}${error.path ? ` (at ${error.path.replace(/^messages\.\d+\.?/, "") || "message"})` : ""}`,
    )
  if (failed.length > 10) yield* note(`… and ${failed.length - 10} more`)
  yield* emit(
    () =>
      `queued ${queued} of ${count(requests.length, "message")}` +
      (dropped || failed.length ? ` (${dropped} dropped, ${failed.length} refused)` : ""),
    {
      total: requests.length,
      queued,
      dropped,
      failed: failed.length,
      errors: failed.map(({ line, error }) => ({ line, ...error })),
    },
  )
  const first = failed[0]
  if (first)
    return yield* new CliFailure({
      reason: { _tag: "Refused", code: first.error.code },
      message: `${failed.length + dropped} of ${count(requests.length, "message")} were not queued; line ${first.line}: ${first.error.code}: ${first.error.message}`,
    })
  if (dropped > 0)
    return yield* refused(
      "QUEUE_FULL",
      `${dropped} of ${count(requests.length, "message")} were dropped: the queue is full`,
    )
})

export const send = Command.make(
  "send",
  {
    to: Flag.String("to").pipe(
      Flag.withDescription('the recipient (else each message names its own "to")'),
      Flag.optional,
    ),
    priority: priorityFlag,
    ttl: durationFlag("ttl", "time to live, e.g. 30s, 10m, 24h (default: the priority's max age)").pipe(
      Flag.optional,
    ),
    id: Flag.String("id").pipe(
      Flag.withDescription("idempotency key; with many messages, line N gets ID-N"),
      Flag.optional,
    ),
    file: Flag.String("file").pipe(
      Flag.withDescription("read JSON Lines from FILE (- for stdin)"),
      Flag.withMetavar("FILE"),
      Flag.optional,
    ),
    payload: Argument.String("payload").pipe(
      Argument.withDescription(
        "the JSON payload of one message; omit to read JSON Lines from --file or stdin",
      ),
      Argument.optional,
    ),
  },
  (input) =>
    Effect.gen(function* () {
      const defaults: Defaults = { to: input.to, priority: input.priority, ttlMs: input.ttl, id: input.id }
      if (Option.isSome(input.payload)) {
        if (Option.isSome(input.file))
          return yield* badArguments("give either a payload argument or --file, not both")
        let value: unknown
        try {
          value = JSON.parse(input.payload.value)
        } catch {
          return yield* badArguments(
            `the payload is not valid JSON (a string needs quotes: '"hello"'): ${input.payload.value.slice(0, 80)}`,
          )
        }
        return yield* sendOne(yield* toRequest(defaults, { line: 1, value }, false))
      }
      const lines = yield* readInput(input.file)
      const requests = yield* Effect.forEach(lines, (line) =>
        Effect.map(toRequest(defaults, line, true), (request) => ({ line: line.line, request })),
      )
      yield* sendMany(requests)
    }),
).pipe(
  Command.withDescription(
    "Queue messages for a recipient: one payload argument, or JSON Lines from --file or stdin.",
  ),
  Command.withExamples([
    {
      command: `holdover send --to alice --priority high --ttl 10m '{"text":"hi"}'`,
      description: "one message",
    },
    {
      command: "holdover send --to alice --file events.jsonl",
      description: "one message per line, in batches of 1000",
    },
    {
      command: `echo '{"to":"bob","payload":1}' | holdover send`,
      description: "whole message requests from stdin",
    },
  ]),
  Command.provide(GatewayClient.layer({ scopes: ["publish"] })),
)
