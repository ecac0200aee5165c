// The global flags every `holdover` command accepts (before or after the subcommand), read by
// commands as services, and the parsers for flag values shared by several commands. Defaults
// come from the environment through Config (HOLDOVER_URL, HOLDOVER_JWT_SECRET); a value that
// does not parse is an argument error (exit 2) naming the flag.
import { priorities, type TokenScope } from "@holdover/protocol"
import { Config } from "effect"
import { Flag, GlobalFlag } from "effect/cli"

export const defaultUrl = "http://127.0.0.1:8080"

const parseUrl = (text: string): string => {
  const url = new URL(text)
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("not http")
  return url.toString().replace(/\/+$/, "")
}

export const GatewayUrl = GlobalFlag.Setting("url")({
  flag: Flag.String("url").pipe(
    Flag.withDescription(
      `gateway base URL (default: $HOLDOVER_URL, else npm start's in .data/dev.env, else ${defaultUrl})`,
    ),
    Flag.withFallbackConfig(Config.String("HOLDOVER_URL")),
    Flag.withDefault(defaultUrl),
    Flag.mapTryCatch(parseUrl, () => "an http:// or https:// URL such as http://127.0.0.1:8080"),
  ),
})

export const BearerToken = GlobalFlag.Setting("token")({
  flag: Flag.Redacted("token").pipe(
    Flag.withDescription(
      "bearer token (default: $HOLDOVER_TOKEN, else one minted from $HOLDOVER_JWT_SECRET with the scopes the command needs)",
    ),
    Flag.optional,
  ),
})

export const JwtSecret = GlobalFlag.Setting("secret")({
  flag: Flag.Redacted("secret").pipe(
    Flag.withDescription(
      "HS256 secret for minting tokens (default: $HOLDOVER_JWT_SECRET, else npm start's in .data/dev.env)",
    ),
    Flag.withFallbackConfig(Config.Redacted("HOLDOVER_JWT_SECRET")),
    Flag.optional,
  ),
})

export const JsonOutput = GlobalFlag.Setting("json")({
  flag: Flag.Boolean("json").pipe(
    Flag.withDescription("print machine-readable JSON instead of tables"),
    Flag.withDefault(false),
  ),
})

export const globalFlags = [GatewayUrl, BearerToken, JwtSecret, JsonOutput] as const

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** `500ms`, `30s`, `10m`, `24h`, `7d` → milliseconds (the gateway's own duration syntax). */
export const parseDuration = (text: string): number => {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(text.trim())
  const ms = match ? Number(match[1]) * (units[match[2] ?? ""] ?? Number.NaN) : Number.NaN
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new Error("bad duration")
  return ms
}

export const durationFlag = (name: string, description: string) =>
  Flag.String(name).pipe(
    Flag.withDescription(description),
    Flag.withMetavar("duration"),
    Flag.mapTryCatch(parseDuration, () => "a duration such as 500ms, 30s, 10m, 24h or 7d"),
  )

export const priorityFlag = Flag.Literals("priority", priorities).pipe(
  Flag.withDescription("delivery priority (default: normal)"),
  Flag.optional,
)

/** A comma-separated list flag: `--to bob,carol`. */
export const listFlag = (name: string, description: string) =>
  Flag.String(name).pipe(
    Flag.withDescription(description),
    Flag.withMetavar("a,b,…"),
    Flag.mapTryCatch(
      (text) => {
        const items = text.split(",").map((item) => item.trim())
        if (items.some((item) => item.length === 0)) throw new Error("empty item")
        return items
      },
      () => "a comma-separated list without empty items",
    ),
  )

const scopeNames: ReadonlyArray<TokenScope> = ["receive", "publish", "admin"]

export const scopesFlag = Flag.String("scope").pipe(
  Flag.withDescription("comma-separated scopes: receive, publish, admin"),
  Flag.withMetavar("receive,publish,admin"),
  Flag.mapTryCatch(
    (text): ReadonlyArray<TokenScope> => {
      const items = text.split(",").map((item) => item.trim())
      const scopes = items.filter((item): item is TokenScope =>
        (scopeNames as ReadonlyArray<string>).includes(item),
      )
      if (scopes.length === 0 || scopes.length !== items.length) throw new Error("bad scope")
      return [...new Set(scopes)]
    },
    () => "a comma-separated list of receive, publish and admin",
  ),
)
