export * from "./Envelope.ts"
export { Gate } from "./Gate.ts"
export { OwnedFibers } from "./OwnedFibers.ts"
export * from "./NatsConnection.ts"
export { Breaker, type Outcome, type Ticket } from "./Breaker.ts"
export { decodeHeaders, fastHeaders } from "./NatsHeaders.ts"
export { NoAnswer, Replies, Status } from "./Replies.ts"
export { coalesceWrites, skipErrorPerAnsweredRequest } from "./NatsRequests.ts"
export * from "./QueueConfig.ts"
export * from "./QueueError.ts"
export * from "./RecipientKey.ts"
export * from "./RecipientQueue.ts"
export * from "./Variables.ts"
export type { RecipientSession, SessionEnd, SessionStats } from "./Session.ts"
export { acceptGets, Drain, retryDelayMs } from "./Drain.ts"
export type { Decision, DrainEvent, Readable } from "./Drain.ts"
export {
  atLeast,
  controlSubject,
  featuresOf,
  reconcile,
  republishOf,
  sessionStreamName,
  sessionSubject,
  streamConfig,
  streamName,
  subjectFor,
  type TopologyState,
} from "./Topology.ts"
