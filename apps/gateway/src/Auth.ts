// Token verification (PROTOCOL.md "Tokens"): JWTs signed HS256 with HOLDOVER_JWT_SECRET, or
// RS256/ES256 with a key from HOLDOVER_JWKS (a file, read once, or a URL, fetched and cached
// by jose). `exp` is required and enforced. The result is a Principal; failures are AuthError
// with the contract's code (UNAUTHORIZED → 401/4401, FORBIDDEN → 403/4403).
import { createSecretKey } from "node:crypto"
import { readFileSync } from "node:fs"
import type { ErrorCode } from "@holdover/protocol"
import { Context, Effect, Layer, Redacted, Schema } from "effect"
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
} from "jose"
import { GatewayConfig } from "./GatewayConfig.ts"
import { verifyHs256 } from "./Hs256.ts"

export type Scope = "receive" | "publish" | "admin"

export interface Principal {
  readonly sub: string
  readonly scopes: ReadonlySet<Scope>
  /** When set, `publish` is limited to these recipients (the `holdover_to` claim). */
  readonly allowedTo: ReadonlySet<string> | undefined
  /** Seconds since the epoch. */
  readonly exp: number
}

export class AuthError extends Schema.TaggedError<AuthError>()("AuthError", {
  code: Schema.Literals(["UNAUTHORIZED", "FORBIDDEN"]),
  message: Schema.String,
}) {
  get errorCode(): ErrorCode {
    return this.code
  }
}

const unauthorized = (message: string) => new AuthError({ code: "UNAUTHORIZED", message })
export const forbidden = (message: string) => new AuthError({ code: "FORBIDDEN", message })

export const requireScope = (principal: Principal, scope: Scope): Effect.Effect<void, AuthError> =>
  principal.scopes.has(scope) ? Effect.void : Effect.fail(forbidden(`the token lacks the "${scope}" scope`))

export const mayPublishTo = (principal: Principal, recipient: string): Effect.Effect<void, AuthError> =>
  Effect.gen(function* () {
    yield* requireScope(principal, "publish")
    if (principal.allowedTo && !principal.allowedTo.has(recipient))
      return yield* forbidden(`the token may not publish to this recipient (holdover_to)`)
  })

const knownScopes: ReadonlyArray<Scope> = ["receive", "publish", "admin"]

export class Auth extends Context.Service<
  Auth,
  { readonly verify: (token: string) => Effect.Effect<Principal, AuthError> }
>()("holdover/Auth") {
  static readonly layer = Layer.effect(
    Auth,
    Effect.gen(function* () {
      const config = yield* GatewayConfig
      // Imported once: jose would import a raw secret into WebCrypto for every token it checks
      // (12 % of a gateway's CPU while idle clients connect, in a profile of the idle step).
      const jwtSecret = config.jwtSecret
      const secret = jwtSecret
        ? yield* Effect.tryPromise({
            try: () =>
              crypto.subtle.importKey(
                "raw",
                new TextEncoder().encode(Redacted.value(jwtSecret)),
                { name: "HMAC", hash: "SHA-256" },
                false,
                ["verify"],
              ),
            catch: (cause) =>
              new Error(`HOLDOVER_JWT_SECRET: cannot be used as an HS256 key: ${String(cause)}`),
          }).pipe(Effect.orDie)
        : undefined
      // The same secret for the synchronous check of plain HS256 tokens (Hs256.ts).
      const hmacKey = jwtSecret ? createSecretKey(Buffer.from(Redacted.value(jwtSecret), "utf8")) : undefined
      let jwks: JWTVerifyGetKey | undefined
      if (config.jwks) {
        const source = config.jwks
        jwks = yield* Effect.try({
          try: () =>
            /^https?:\/\//.test(source)
              ? createRemoteJWKSet(new URL(source))
              : createLocalJWKSet(JSON.parse(readFileSync(source, "utf8"))),
          catch: (cause) => new Error(`HOLDOVER_JWKS: cannot load a JWKS from ${source}: ${String(cause)}`),
        }).pipe(Effect.orDie)
      }

      // Verified tokens, until they expire: a producer sends the same token with every request,
      // and checking its signature each time cost more than the publish (bounded; oldest out first).
      const verified = new Map<string, Principal>()
      const cacheSize = 10_000
      const verify = (token: string): Effect.Effect<Principal, AuthError> =>
        Effect.suspend(() => {
          const known = verified.get(token)
          if (known && known.exp * 1000 > Date.now()) return Effect.succeed(known)
          if (known) verified.delete(token)
          return check(token).pipe(
            Effect.tap((principal) =>
              Effect.sync(() => {
                if (verified.size >= cacheSize) verified.delete(verified.keys().next().value!)
                verified.set(token, principal)
              }),
            ),
          )
        })

      const check = Effect.fnUntraced(function* (token: string) {
        if (token.length === 0 || token.length > 16_384)
          return yield* unauthorized("missing or oversized token")
        const plain = hmacKey && verifyHs256(token, hmacKey, Math.floor(Date.now() / 1000))
        if (plain) return yield* principalOf(plain)
        const alg = yield* Effect.try({
          try: () => decodeProtectedHeader(token).alg,
          catch: () => unauthorized("malformed token"),
        })
        const result = yield* Effect.tryPromise({
          try: () => {
            const options = { requiredClaims: ["exp", "sub"] }
            if (alg === "HS256" && secret)
              return jwtVerify(token, secret, { ...options, algorithms: ["HS256"] })
            if ((alg === "RS256" || alg === "ES256") && jwks)
              return jwtVerify(token, jwks, { ...options, algorithms: ["RS256", "ES256"] })
            throw new Error(`tokens signed with ${alg ?? "no algorithm"} are not accepted here`)
          },
          catch: (cause) =>
            unauthorized(
              cause instanceof Error && "code" in cause && cause.code === "ERR_JWT_EXPIRED"
                ? "token expired"
                : `invalid token: ${cause instanceof Error ? cause.message : String(cause)}`,
            ),
        })
        return yield* principalOf(result.payload)
      })

      const principalOf = (claims: JWTPayload): Effect.Effect<Principal, AuthError> =>
        Effect.suspend(() => {
          const scopes = new Set(
            (typeof claims["scope"] === "string" ? claims["scope"].split(/\s+/) : []).filter(
              (s): s is Scope => knownScopes.includes(s as Scope),
            ),
          )
          const to = claims["holdover_to"]
          if (to !== undefined && !(Array.isArray(to) && to.every((r) => typeof r === "string")))
            return Effect.fail(unauthorized("holdover_to must be an array of recipient ids"))
          if (typeof claims.sub !== "string" || claims.sub.length === 0)
            return Effect.fail(unauthorized("token has no sub"))
          return Effect.succeed({
            sub: claims.sub,
            scopes,
            allowedTo: to === undefined ? undefined : new Set(to as Array<string>),
            exp: claims.exp ?? 0,
          } satisfies Principal)
        })

      return Auth.of({ verify })
    }),
  )
}
