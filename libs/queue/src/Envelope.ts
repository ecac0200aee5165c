// How a message is stored in JetStream: the body is the payload's JSON text; the envelope is in
// headers (Nats-Msg-Id gives dedup and carries the id, or Holdover-Id does when the dedup key is
// a producer-scoped hash). Read back into a Delivery.
import type { Priority } from "@holdover/protocol"
import { headers, type MsgHdrs } from "@nats-io/transport-node"

export const Header = {
  /** JetStream's dedup key: the message id, or for a producer's id its scoped hash (then Holdover-Id holds the id). */
  MsgId: "Nats-Msg-Id",
  Id: "Holdover-Id",
  EnqueuedAt: "Holdover-Enqueued-At",
  ExpiresAt: "Holdover-Expires-At",
  Producer: "Holdover-Producer",
  /** nats-server 2.11+: the stream removes the message after this many seconds. */
  Ttl: "Nats-TTL",
} as const

export interface Delivery {
  readonly id: string
  readonly priority: Priority
  readonly payload: unknown
  readonly enqueuedAt: string
  readonly expiresAt: string
  readonly producer: string | undefined
  readonly redelivered: boolean
  readonly seq: number
}

export const envelopeHeaders = (envelope: {
  /** The message id when Nats-Msg-Id holds something else. */
  readonly id: string | undefined
  readonly enqueuedAt: number
  readonly expiresAt: number
  readonly producer: string | undefined
  /** Whole seconds after which the stream removes the message (servers with per-message TTL). */
  readonly ttlSeconds?: number | undefined
}): MsgHdrs => {
  const h = headers()
  if (envelope.ttlSeconds !== undefined) h.set(Header.Ttl, `${envelope.ttlSeconds}s`)
  if (envelope.id !== undefined) h.set(Header.Id, envelope.id)
  h.set(Header.EnqueuedAt, new Date(envelope.enqueuedAt).toISOString())
  h.set(Header.ExpiresAt, new Date(envelope.expiresAt).toISOString())
  if (envelope.producer !== undefined) h.set(Header.Producer, encodeURIComponent(envelope.producer))
  return h
}

const parsePayload = (msg: { string(): string }): unknown => {
  try {
    return JSON.parse(msg.string())
  } catch {
    return msg.string() // stored by something other than Holdover: hand it over as text
  }
}

/** A message as a get by sequence or subject returns it (StoredMsg of nats.js). */
export interface StoredRecord {
  readonly seq: number
  readonly header: MsgHdrs | undefined
  readonly time: Date
  /** The payload as stored (its length counts against a session's window in bytes). */
  readonly data?: Uint8Array
  string(): string
}

export const decodeStored = (priority: Priority, msg: StoredRecord): Omit<Delivery, "redelivered"> => {
  const h = msg.header
  const producer = h?.get(Header.Producer)
  return {
    id: h?.get(Header.Id) || h?.get(Header.MsgId) || `seq_${msg.seq}`,
    priority,
    payload: parsePayload(msg),
    enqueuedAt: h?.get(Header.EnqueuedAt) || msg.time.toISOString(),
    expiresAt: h?.get(Header.ExpiresAt) || new Date(8.64e15).toISOString(),
    producer: producer ? decodeURIComponent(producer) : undefined,
    seq: msg.seq,
  }
}
