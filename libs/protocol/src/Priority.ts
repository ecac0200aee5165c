// Priorities, highest first. The order of `priorities` is the delivery order.
import { Schema } from "effect"

export const priorities = ["critical", "high", "normal", "low"] as const

export const Priority = Schema.Literals(priorities)
export type Priority = typeof Priority.Type

export const PriorityCounts = Schema.Struct({
  critical: Schema.Number,
  high: Schema.Number,
  normal: Schema.Number,
  low: Schema.Number,
})
export type PriorityCounts = typeof PriorityCounts.Type

export const zeroCounts = (): { -readonly [P in Priority]: number } => ({
  critical: 0,
  high: 0,
  normal: 0,
  low: 0,
})
