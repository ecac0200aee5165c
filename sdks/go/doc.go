// Package holdover is the Go SDK for Holdover's wire contract, version 1 (docs/protocol.md).
//
// A [Producer] enqueues messages over HTTP (POST /v1/messages and /v1/messages/batch): every
// message carries an idempotency id (the caller's, or a generated UUID), so the retries it makes
// on 503 and on 429 with Retry-After, and after a transport error, never queue a message twice.
// Failures are [*Error] values carrying the contract's code.
//
// A [Receiver] holds one WebSocket session at a time (Bearer token on the upgrade, subprotocol
// holdover.v1) and hands messages over in the order the gateway sends them, which is strict
// priority order: [Receiver.Next] or the range-over-func [Receiver.Messages]. Each message is
// acked with [Message.Ack]. A lost session is reopened according to the contract's close-code
// table ([ReconnectPolicyOf]) with full-jitter backoff ([BackoffDelay]); redeliveries of
// messages already handed over are dropped by a bounded window of ids ([DedupWindow]);
// heartbeats detect a half-open connection. [Receiver.Close] ends it cleanly.
//
// Nothing here is global: every Producer and Receiver owns its HTTP client, timers and
// goroutines, and every blocking call takes a context.
package holdover
