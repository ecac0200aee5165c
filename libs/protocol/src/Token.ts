// Token claims of the contract (PROTOCOL.md "Tokens") and a helper that mints HS256 tokens
// for development, tests and the CLI. Production tokens come from the operator's identity
// provider; the gateway only verifies them.
import { SignJWT } from "jose"

export type TokenScope = "receive" | "publish" | "admin"

export interface TokenOptions {
  readonly sub: string
  readonly scopes: ReadonlyArray<TokenScope>
  /** Seconds until expiry (default one hour); negative values mint an already expired token. */
  readonly ttlSeconds?: number
  /** Restricts `publish` to these recipients. */
  readonly holdoverTo?: ReadonlyArray<string>
}

export const mintToken = (secret: string, options: TokenOptions): Promise<string> => {
  const now = Math.floor(Date.now() / 1000)
  const claims: Record<string, unknown> = { scope: options.scopes.join(" ") }
  if (options.holdoverTo) claims["holdover_to"] = [...options.holdoverTo]
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(options.sub)
    .setIssuedAt(now)
    .setExpirationTime(now + (options.ttlSeconds ?? 3600))
    .sign(new TextEncoder().encode(secret))
}
