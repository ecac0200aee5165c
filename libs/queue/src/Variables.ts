// Environment variables as data: one entry per HOLDOVER_* variable (name, the type its parser
// reads, default, meaning) from which the readers, the list deployments are checked against
// and the docs check (docs/configuration.md) are all derived. The queue's table is in
// QueueConfig.ts, the gateway's in apps/gateway's GatewayConfig.ts. A value that does not
// parse fails with InvalidConfig naming the variable and what it expected; nothing else throws.
import { Config, Effect, Option, Schema } from "effect"

export class InvalidConfig extends Schema.TaggedError<InvalidConfig>()("InvalidConfig", {
  variable: Schema.String,
  expected: Schema.String,
  got: Schema.String,
}) {
  override get message(): string {
    return `${this.variable}: expected ${this.expected}, got ${JSON.stringify(this.got)}`
  }
}

export interface Variable<A> {
  readonly name: string
  /** What a bad value's error says was expected. */
  readonly expected: string
  /** The value read (trimmed unless `verbatim`), or undefined when it does not parse. */
  readonly parse: (raw: string) => A | undefined
  readonly default: A
  /** The default as docs/configuration.md shows it (tests check it reads back as `default`). */
  readonly shown: string
  /** The docs' "meaning" column (Markdown). */
  readonly meaning: string
  /** A secret: a bad value is not repeated in the error. */
  readonly secret?: boolean
  /** Taken as it is, not trimmed (a secret's spaces are part of it). */
  readonly verbatim?: boolean
}

export const variable = <A>(spec: Variable<A>): Variable<A> => spec

/** The raw text of a variable, untrimmed; undefined when unset. */
export const rawVariable = (name: string): Effect.Effect<string | undefined, Config.ConfigError> =>
  Config.option(Config.String(name)).pipe(Effect.map(Option.getOrUndefined))

export const readVariable = <A>(spec: Variable<A>): Effect.Effect<A, InvalidConfig | Config.ConfigError> =>
  Effect.gen(function* () {
    const raw = yield* rawVariable(spec.name)
    if (raw === undefined) return spec.default
    const value = spec.parse(spec.verbatim === true ? raw : raw.trim())
    if (value === undefined)
      return yield* new InvalidConfig({
        variable: spec.name,
        expected: spec.expected,
        got: spec.secret === true ? "<redacted>" : raw,
      })
    return value
  })

/** Reads every variable of a table, in its order: a record of values with the table's keys. */
export const readVariables = <T extends Record<string, Variable<unknown>>>(
  table: T,
): Effect.Effect<{ -readonly [K in keyof T]: T[K]["default"] }, InvalidConfig | Config.ConfigError> =>
  Effect.gen(function* () {
    const values: Record<string, unknown> = {}
    for (const [key, spec] of Object.entries(table)) values[key] = yield* readVariable(spec)
    return values as { -readonly [K in keyof T]: T[K]["default"] }
  })

// The value types the tables use.

const hour = 3_600_000
const units: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: hour, d: 24 * hour }

/** Parses `500ms`, `30s`, `10m`, `24h`, `7d` or a plain number of milliseconds. */
export const parseDuration = (text: string): number | undefined => {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text)
  if (!match) return undefined
  const value = Number(match[1]) * (units[match[2] ?? "ms"] ?? 1)
  return Number.isFinite(value) && value > 0 ? Math.round(value) : undefined
}

export const positiveInt = (raw: string) => (/^\d+$/.test(raw) && Number(raw) > 0 ? Number(raw) : undefined)

export const intIn = (min: number, max: number) => (raw: string) =>
  /^\d+$/.test(raw) && Number(raw) >= min && Number(raw) <= max ? Number(raw) : undefined

export const onOff = (raw: string) =>
  /^(on|true|1)$/i.test(raw) ? true : /^(off|false|0)$/i.test(raw) ? false : undefined

export const oneOf =
  <A extends string>(values: ReadonlyArray<A>) =>
  (raw: string) =>
    values.find((value) => value === raw)
