// Which bearer token a command presents. An explicit `--token` always wins. Otherwise HTTP
// commands use $HOLDOVER_TOKEN, else mint a short-lived HS256 token (sub `holdover-cli`) with
// exactly the scopes they need; `tail` connects *as* the recipient, so it prefers minting a
// `receive` token for that recipient over $HOLDOVER_TOKEN. No usable credential is an argument
// error (exit 2); a token the gateway rejects surfaces later as exit 4.
import { mintToken, type TokenScope } from "@holdover/protocol"
import { Config, Effect, Option, Redacted } from "effect"
import { badArguments, CliFailure } from "./Failure.ts"
import { BearerToken, JwtSecret } from "./Settings.ts"

export const cliSubject = "holdover-cli"
const mintedTtlSeconds = 300

export interface Need {
  readonly scopes: ReadonlyArray<TokenScope>
  /** Connect as this recipient (tail): a minted token gets this `sub`. */
  readonly as?: string
}

export const requireSecret = Effect.gen(function* () {
  const secret = yield* JwtSecret
  if (Option.isNone(secret))
    return yield* badArguments("no secret to mint a token with: set HOLDOVER_JWT_SECRET or pass --secret")
  const value = Redacted.value(secret.value)
  if (value.length < 16)
    return yield* badArguments("--secret: the gateway needs a secret of at least 16 characters")
  return value
})

export const mint = (secret: string, options: Parameters<typeof mintToken>[1]) =>
  Effect.tryPromise({
    try: () => mintToken(secret, options),
    catch: (error) => badArguments(`cannot mint a token: ${String(error)}`),
  })

export const bearerFor = Effect.fn("Credentials.bearerFor")(function* (need: Need) {
  const explicit = yield* BearerToken
  if (Option.isSome(explicit)) return Redacted.value(explicit.value)
  const fromEnv = yield* Config.option(Config.Redacted("HOLDOVER_TOKEN")).pipe(
    Effect.mapError(() => badArguments("HOLDOVER_TOKEN: cannot read it")),
  )
  const secret = yield* JwtSecret
  const canMint = Option.isSome(secret)
  if (Option.isSome(fromEnv) && !(need.as !== undefined && canMint)) return Redacted.value(fromEnv.value)
  if (!canMint)
    return yield* new CliFailure({
      reason: { _tag: "BadArguments" },
      message:
        "no credentials: pass --token, or set HOLDOVER_TOKEN, or set HOLDOVER_JWT_SECRET to mint one" +
        (need.as === undefined ? "" : ` (a token for sub "${need.as}" with the receive scope)`),
    })
  return yield* mint(yield* requireSecret, {
    sub: need.as ?? cliSubject,
    scopes: need.scopes,
    ttlSeconds: need.as === undefined ? mintedTtlSeconds : 24 * 3600,
  })
})

/** The `sub` claim of a JWT, read without verifying it (the gateway verifies). */
export const subjectOf = (token: string): string | undefined => {
  try {
    const payload = JSON.parse(
      Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8"),
    ) as unknown
    return typeof payload === "object" &&
      payload !== null &&
      "sub" in payload &&
      typeof payload.sub === "string"
      ? payload.sub
      : undefined
  } catch {
    return undefined
  }
}
