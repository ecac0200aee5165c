// `holdover tail RECIPIENT`: opens a WebSocket session *as* the recipient (subprotocol
// holdover.v1, Bearer token with the `receive` scope and sub = RECIPIENT) and prints each
// delivery as it arrives — strict priority order, as the gateway hands them over — acking
// it unless `--no-ack` (peek: the messages stay queued and come back to the next session).
// Stops on Ctrl-C or after `--count N`; before closing it pings and waits for the pong, so
// the gateway has applied every ack. The socket is closed (1000) by the scope in every case.
import { ServerFrame, subprotocol, type MessageFrame } from "@holdover/protocol"
import { Effect, Option, Queue, Schema } from "effect"
import { Command, Flag } from "effect/cli"
import WebSocket from "ws"
import { subjectOf } from "../Credentials.ts"
import { badArguments, CliFailure } from "../Failure.ts"
import { GatewayClient } from "../GatewayClient.ts"
import { emitLine, note } from "../Output.ts"
import { recipientArgument } from "./queue.ts"

type Event =
  | { readonly _tag: "Frame"; readonly frame: ServerFrame }
  | { readonly _tag: "Closed"; readonly code: number; readonly reason: string }

const decodeFrame = Schema.decodeUnknownOption(Schema.fromJsonString(ServerFrame))

const closeMessages: Record<number, string> = {
  4401: "not authenticated, or the token expired",
  4403: 'forbidden: the token lacks the "receive" scope',
  4409: "the session was taken over by a newer connection of the same recipient",
  1012: "the gateway is restarting or draining",
}

/** Opens the socket; its events land in `events`. Closed with 1000 when the scope closes. */
const connect = (url: string, token: string, events: Queue.Queue<Event>) =>
  Effect.acquireRelease(
    Effect.callback<WebSocket, CliFailure>((resume) => {
      const ws = new WebSocket(url, [subprotocol], { headers: { Authorization: `Bearer ${token}` } })
      let opened = false
      ws.on("open", () => {
        opened = true
        resume(Effect.succeed(ws))
      })
      ws.on("error", (error) => {
        if (!opened)
          resume(
            Effect.fail(
              new CliFailure({
                reason: { _tag: "Unreachable", url },
                message: `cannot reach the gateway at ${url}: ${error.message}`,
              }),
            ),
          )
      })
      ws.on("message", (data) => {
        const frame = decodeFrame(data.toString())
        if (Option.isSome(frame)) Queue.offerUnsafe(events, { _tag: "Frame", frame: frame.value })
      })
      ws.on("close", (code, reason) =>
        Queue.offerUnsafe(events, { _tag: "Closed", code, reason: reason.toString() }),
      )
      return Effect.sync(() => ws.terminate())
    }),
    (ws) =>
      Effect.sync(() => {
        if (ws.readyState === WebSocket.OPEN) ws.close(1000, "holdover tail done")
      }),
  )

const render = (message: MessageFrame) =>
  `${message.enqueuedAt}  ${message.priority.padEnd(8)}  ${message.id}  ${JSON.stringify(message.payload)}` +
  (message.redelivered ? "  (redelivered)" : "")

export const tail = Command.make(
  "tail",
  {
    recipient: recipientArgument,
    ack: Flag.Boolean("ack").pipe(
      Flag.withDescription("ack each delivery (default); --no-ack only peeks and leaves messages queued"),
      Flag.withDefault(true),
    ),
    count: Flag.Int("count").pipe(
      Flag.withDescription("stop after N deliveries"),
      Flag.withMetavar("N"),
      Flag.mapTryCatch(
        (n) => {
          if (n < 1) throw new Error("not positive")
          return n
        },
        () => "a whole number of at least 1",
      ),
      Flag.optional,
    ),
  },
  (input) =>
    Effect.gen(function* () {
      const client = yield* GatewayClient
      const sub = subjectOf(client.token)
      if (sub !== undefined && sub !== input.recipient)
        return yield* badArguments(
          `the token is for sub "${sub}", not "${input.recipient}": tail connects as the recipient`,
        )
      const events = yield* Queue.unbounded<Event>()
      const ws = yield* connect(client.webSocketUrl, client.token, events)
      const limit = Option.getOrElse(input.count, () => Number.POSITIVE_INFINITY)
      let delivered = 0
      let stopping = false
      while (!stopping || input.ack) {
        const event = yield* Queue.take(events)
        if (event._tag === "Closed") {
          if (event.code === 1000) break
          return yield* new CliFailure({
            reason: { _tag: "Closed", code: event.code },
            message: `the gateway closed the session (${event.code}): ${closeMessages[event.code] ?? (event.reason || "no reason given")}`,
          })
        }
        const frame = event.frame
        switch (frame.type) {
          case "welcome": {
            const p = frame.pending
            yield* note(
              `tailing ${frame.recipient}: pending critical ${p.critical}, high ${p.high}, normal ${p.normal}, low ${p.low}` +
                (input.ack ? "" : " (peeking: nothing is acked)"),
            )
            break
          }
          case "message":
            if (stopping) break // beyond --count: left unacked, redelivered to the next session
            yield* emitLine(() => render(frame), frame)
            if (input.ack) ws.send(JSON.stringify({ type: "ack", ids: [frame.id] }))
            if (++delivered >= limit) {
              stopping = true
              if (input.ack) ws.send(JSON.stringify({ type: "ping" }))
            }
            break
          case "error":
            yield* note(`error frame: ${frame.code}: ${frame.message}`)
            break
          case "pong":
            if (stopping) return
            break
          case "sent":
            break
        }
      }
    }).pipe(Effect.scoped),
).pipe(
  Command.withDescription(
    "Connect as a recipient and print deliveries as they arrive, acking them (or peek with --no-ack).",
  ),
  Command.withExamples([
    { command: "holdover tail alice", description: "print and ack alice's messages until Ctrl-C" },
    {
      command: "holdover tail alice --no-ack --count 10",
      description: "peek at the next 10 without consuming them",
    },
  ]),
  Command.provide((input) => GatewayClient.layer({ scopes: ["receive"], as: input.recipient })),
)
