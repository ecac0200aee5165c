// Small numeric helpers of the benchmark: percentiles, rates, rounding, and a deadline-bounded
// poll. Pure functions, no I/O.
import { setTimeout as sleep } from "node:timers/promises"

/** The p-th percentile (0–100) of the samples, nearest rank; 0 for no samples. */
export const percentile = (samples: ReadonlyArray<number>, p: number): number => {
  if (samples.length === 0) return 0
  const sorted = [...samples].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank] ?? 0
}

export const median = (samples: ReadonlyArray<number>): number => percentile(samples, 50)

/** Rounds to a number of significant digits that keeps tables readable. */
export const round = (value: number, digits = 3): number => {
  if (!Number.isFinite(value) || value === 0) return 0
  const magnitude = Math.floor(Math.log10(Math.abs(value)))
  const decimals = Math.max(0, digits - 1 - magnitude)
  return Number(value.toFixed(Math.min(decimals, 6)))
}

export const ratio = (value: number, baseline: number): number => (baseline > 0 ? round(value / baseline) : 0)

export const perSecond = (count: number, ms: number): number => (ms > 0 ? round((count * 1000) / ms) : 0)

export const elapsed = (since: number): number => performance.now() - since

/** Polls `check` every `everyMs` until it returns true or `timeoutMs` passes; returns whether it held. */
export const pollUntil = async (
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  everyMs = 50,
): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return true
    if (Date.now() > deadline) return false
    await sleep(everyMs)
  }
}

/**
 * Runs `task(i)` for i in [0, count) with at most `concurrency` at once, stopping early (without
 * starting more) once `deadline` (a Date.now() value) passes. Returns how many were started.
 */
export const runPool = async (
  count: number,
  concurrency: number,
  deadline: number,
  task: (i: number) => Promise<void>,
): Promise<number> => {
  let next = 0
  const worker = async () => {
    while (next < count && Date.now() < deadline) await task(next++)
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, worker))
  return next
}

/** A payload whose JSON text is exactly `bytes` long (a string of filler), with room for a timestamp. */
export const filler = (bytes: number): string => "x".repeat(Math.max(0, bytes - 2))
