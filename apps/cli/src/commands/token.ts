// `holdover token`: mints a development HS256 token from HOLDOVER_JWT_SECRET (or --secret) and
// prints it — only the token, so `TOKEN=$(holdover token …)` works. Production tokens come
// from the operator's identity provider; this is for local gateways, scripts and tests.
import { Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { mint, requireSecret } from "../Credentials.ts"
import { emit } from "../Output.ts"
import { durationFlag, listFlag, scopesFlag } from "../Settings.ts"

export const token = Command.make(
  "token",
  {
    sub: Flag.String("sub").pipe(Flag.withDescription("the subject: the recipient this token receives as")),
    scopes: scopesFlag,
    ttl: durationFlag("ttl", "lifetime, e.g. 10m, 1h, 7d (default 1h)").pipe(Flag.withDefault(3_600_000)),
    to: listFlag("to", "restrict publish to these recipients (the holdover_to claim)").pipe(Flag.optional),
  },
  (input) =>
    Effect.gen(function* () {
      const secret = yield* requireSecret
      const ttlSeconds = Math.max(1, Math.round(input.ttl / 1000))
      const jwt = yield* mint(secret, {
        sub: input.sub,
        scopes: input.scopes,
        ttlSeconds,
        ...(Option.isSome(input.to) ? { holdoverTo: input.to.value } : {}),
      })
      const expiresAt = new Date(Date.now() + ttlSeconds * 1000).toISOString()
      yield* emit(() => jwt, {
        token: jwt,
        sub: input.sub,
        scopes: input.scopes,
        expiresAt,
        ...(Option.isSome(input.to) ? { to: input.to.value } : {}),
      })
    }),
).pipe(
  Command.withDescription(
    "Mint a development HS256 token from HOLDOVER_JWT_SECRET (or --secret) and print it.",
  ),
  Command.withExamples([
    {
      command: "holdover token --sub alice --scope receive --ttl 1h",
      description: "a token alice can connect with",
    },
    {
      command: "holdover token --sub svc --scope publish --to bob,carol",
      description: "may publish to bob and carol only",
    },
  ]),
)
