// Publishing, the one producer use case behind `POST /v1/messages`, `POST /v1/messages/batch`
// and the WebSocket `send` frame (PROTOCOL.md: `send` "behaves exactly like the HTTP producer
// call"). It owns the order of the checks — shedding, the `publish` scope, the producer's rate
// limit, the message schema, `holdover_to`, the enqueue — the result body, and the metrics of
// every message it is handed: enqueued (not for a duplicate), dropped, rejected by code, shed
// (this node saturated, or the queue refusing with Overloaded). The transports only read their
// input and write the answer; what fails before a message reaches it (no or a bad token, an
// unreadable body, a malformed frame) is theirs and not counted here. Stateless: a layer over
// the queue, limits, state and metrics.
import { BatchRequest, MessageRequest, type ErrorBody, type SendResult } from "@holdover/protocol"
import { PublishOrder, RecipientQueue, type EnqueueResult, type PublishTurn } from "@holdover/queue"
import { Context, Effect, Layer, Schema } from "effect"
import {
  apiError,
  fromSchemaError,
  nodeOverloaded,
  toErrorBody,
  type AnyError,
  type ApiError,
} from "./ApiError.ts"
import { mayPublishTo, requireScope, type AuthError, type Principal } from "./Auth.ts"
import { GatewayState } from "./GatewayState.ts"
import { Limits } from "./Limits.ts"
import { Metrics } from "./Metrics.ts"

/** One message's outcome in a batch: its result, or its own error. */
export type BatchItem = SendResult | { readonly error: ErrorBody }

export interface PublisherShape {
  /** Refuses producer work at once while this node's event loop is behind (before any other cost). */
  readonly shed: Effect.Effect<void, ApiError>
  /** The token may publish at all (the `publish` scope), checked before a body is read. */
  readonly authorize: (principal: Principal) => Effect.Effect<void, AuthError>
  /** One message, not yet decoded. */
  readonly publish: (principal: Principal, input: unknown) => Effect.Effect<SendResult, AnyError>
  /** A batch body `{"messages":[…]}`: its rate is taken at once, each message gets its own outcome. */
  readonly publishBatch: (
    principal: Principal,
    input: unknown,
  ) => Effect.Effect<ReadonlyArray<BatchItem>, AnyError>
}

const decodeMessage = Schema.decodeUnknownExit(MessageRequest)
const decodeBatch = Schema.decodeUnknownExit(BatchRequest)

/**
 * Messages of one batch in flight at once. Each recipient's go out in batch order, pipelined
 * (PublishOrder): a batch for one recipient costs no round trip per message. 32 made a cold
 * gateway's event loop lag past the shedding threshold in the delivery bench (3 of 8 runs).
 */
const batchConcurrency = 16

const resultBody = (result: EnqueueResult): SendResult =>
  result._tag === "Queued"
    ? { id: result.id, status: "queued", priority: result.priority, expiresAt: result.expiresAt }
    : { id: result.id, status: "dropped", reason: "QUEUE_FULL" }

/** Each batch position's place in its recipient's publish order (an unreadable `to` has none). */
const turnsByRecipient = (messages: ReadonlyArray<unknown>): Array<PublishTurn | undefined> => {
  const orders = new Map<string, PublishOrder>()
  return messages.map((message) => {
    const to = typeof message === "object" && message !== null && "to" in message ? message.to : undefined
    if (typeof to !== "string") return undefined
    let order = orders.get(to)
    if (!order) orders.set(to, (order = new PublishOrder()))
    return order.take()
  })
}

export class Publisher extends Context.Service<Publisher, PublisherShape>()("holdover/Publisher") {
  static readonly layer = Layer.effect(
    Publisher,
    Effect.gen(function* () {
      const queue = yield* RecipientQueue
      const limits = yield* Limits
      const state = yield* GatewayState
      const metrics = yield* Metrics

      const refused = (error: AnyError) =>
        Effect.sync(() => {
          metrics.rejected.inc({ code: toErrorBody(error).code })
          if (error === nodeOverloaded || (error._tag === "QueueError" && error.reason._tag === "Overloaded"))
            metrics.shed.inc()
        })
      const counted = <A, E extends AnyError>(effect: Effect.Effect<A, E>) =>
        effect.pipe(Effect.tapError(refused))

      const shed = counted(
        Effect.suspend(() => (state.isOverloaded() ? Effect.fail(nodeOverloaded) : Effect.void)),
      )

      const authorize = (principal: Principal) => counted(requireScope(principal, "publish"))

      /** Schema, holdover_to, enqueue and its counts: one message whose rate is already taken. */
      const enqueue = (principal: Principal, input: unknown, path: string, turn?: PublishTurn) =>
        counted(
          Effect.gen(function* () {
            const decoded = decodeMessage(input)
            if (decoded._tag === "Failure") {
              const failure = decoded.cause.reasons.find((reason) => reason._tag === "Fail")
              return yield* failure?._tag === "Fail"
                ? Effect.fail(fromSchemaError("INVALID_MESSAGE", failure.error, path))
                : Effect.fail(apiError("INVALID_MESSAGE", "invalid message", path || undefined))
            }
            const message = decoded.value
            yield* mayPublishTo(principal, message.to)
            const result = yield* queue
              .enqueue(message.to, message.payload, {
                priority: message.priority,
                ttlMs: message.ttlMs,
                id: message.id,
                producer: principal.sub,
                turn,
              })
              .pipe(
                // The queue names the field (`ttlMs`); in a batch it is `messages.<i>.ttlMs`.
                Effect.mapError((error): AnyError =>
                  error.reason._tag === "InvalidMessage" && path !== ""
                    ? apiError("INVALID_MESSAGE", error.message, `${path}.${error.reason.path}`)
                    : error,
                ),
              )
            if (result._tag === "Queued" && !result.duplicate)
              metrics.enqueued.inc({ priority: result.priority })
            if (result._tag === "Dropped") metrics.dropped.inc({ priority: result.priority })
            return resultBody(result)
          }),
        ).pipe(Effect.ensuring(Effect.sync(() => turn?.release())))

      const publish = (principal: Principal, input: unknown) =>
        Effect.gen(function* () {
          yield* authorize(principal)
          yield* counted(limits.publish(principal.sub, 1))
          return yield* enqueue(principal, input, "")
        })

      const publishBatch = (principal: Principal, input: unknown) =>
        Effect.gen(function* () {
          yield* authorize(principal)
          const decoded = decodeBatch(input)
          if (decoded._tag === "Failure")
            return yield* counted(
              Effect.fail(
                apiError("INVALID_MESSAGE", 'the body must be {"messages":[…up to 1000…]}', "messages"),
              ),
            )
          const messages = decoded.value.messages
          yield* counted(limits.publish(principal.sub, messages.length))
          // One recipient's messages go out in batch order (FIFO), each without waiting for the
          // answer to the one before; different recipients' are independent.
          const turns = turnsByRecipient(messages)
          const results: Array<BatchItem> = []
          yield* Effect.forEach(
            messages,
            (message, i) =>
              enqueue(principal, message, `messages.${i}`, turns[i]).pipe(
                Effect.catch((error: AnyError) => Effect.succeed({ error: toErrorBody(error) })),
                Effect.map((result) => void (results[i] = result)),
              ),
            { concurrency: batchConcurrency, discard: true },
          )
          return results
        })

      return Publisher.of({ shed, authorize, publish, publishBatch })
    }),
  )
}
