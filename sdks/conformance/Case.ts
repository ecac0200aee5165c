// The conformance case format (README.md beside this file): types, and the loader that reads
// `cases/*.json`. Shared by the scripted server and the TypeScript SDK's runner.
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

export type Frame = Record<string, unknown>

export type Step =
  | { readonly send: Frame }
  | { readonly sendRaw: string }
  | { readonly expectFrame: Frame; readonly timeoutMs?: number }
  | { readonly expectAcked: ReadonlyArray<string>; readonly timeoutMs?: number }
  | { readonly wait: number }
  | { readonly close: number; readonly reason?: string }
  | { readonly terminate: true }

export interface ConnectionScript {
  readonly auth?: string
  readonly answerPings?: boolean
  readonly minGapMs?: number
  readonly maxGapMs?: number
  readonly steps: ReadonlyArray<Step>
}

export interface CaseSend {
  readonly to: string
  readonly payload: unknown
  readonly priority?: "critical" | "high" | "normal" | "low"
  readonly ttlMs?: number
  readonly id?: string
}

export type SendOutcome =
  { readonly status: "queued" | "dropped"; readonly id: string } | { readonly error: string }

export interface DeliveredExpectation {
  readonly id: string
  readonly priority?: string
  readonly redelivered?: boolean
  readonly payload?: unknown
}

export interface ConformanceCase {
  readonly name: string
  readonly description: string
  readonly client: {
    readonly token?: string
    readonly tokens?: ReadonlyArray<string>
    readonly backoff: { readonly initialMs: number; readonly maxMs: number }
    readonly connectTimeoutMs?: number
    readonly dedupWindow?: number
    readonly sends?: ReadonlyArray<CaseSend>
  }
  readonly connections: ReadonlyArray<ConnectionScript>
  readonly expect: {
    readonly connections?: number
    readonly delivered?: ReadonlyArray<DeliveredExpectation>
    readonly errors?: ReadonlyArray<string>
    readonly final?: {
      readonly state: "open" | "closed"
      readonly code?: number
      readonly takenOver?: boolean
    }
    readonly sends?: ReadonlyArray<SendOutcome>
  }
  readonly settleMs?: number
  readonly timeoutMs?: number
}

export const casesDir = new URL("./cases/", import.meta.url).pathname

/** Every case, sorted by name; the name is the file name without `.json`. */
export const loadCases = (dir: string = casesDir): ReadonlyArray<ConformanceCase> =>
  readdirSync(dir)
    .filter((file) => file.endsWith(".json"))
    .sort()
    .map((file) => ({
      ...(JSON.parse(readFileSync(join(dir, file), "utf8")) as Omit<ConformanceCase, "name">),
      name: file.slice(0, -".json".length),
    }))

/** The Bearer token connection `index` must carry. */
export const expectedToken = (testCase: ConformanceCase, index: number): string | undefined => {
  const explicit = testCase.connections[index]?.auth
  if (explicit !== undefined) return explicit
  const { token, tokens } = testCase.client
  if (tokens !== undefined && tokens.length > 0) return tokens[Math.min(index, tokens.length - 1)]
  return token
}

/** Deep equality of JSON values (key order ignored). */
export const jsonEqual = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  return ka.every((k) => jsonEqual((a as Frame)[k], (b as Frame)[k]))
}

/** Does `frame` contain every key of `pattern` with a deep-equal value? */
export const matches = (frame: Frame, pattern: Frame): boolean =>
  Object.entries(pattern).every(([key, value]) => jsonEqual(frame[key], value))
