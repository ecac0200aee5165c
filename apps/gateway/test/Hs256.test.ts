// The synchronous HS256 check (src/Hs256.ts) against jose, case by case: it may accept only what
// jose accepts (with the same claims), and it must accept the plain tokens Holdover's own tools
// mint — otherwise it saves nothing. Whatever it leaves undefined, the gateway asks jose.
import { createHmac, createSecretKey } from "node:crypto"
import { mintToken } from "@holdover/protocol"
import { jwtVerify } from "jose"
import { describe, expect, it } from "vitest"
import { verifyHs256 } from "@holdover/gateway"

const secret = "a-test-secret-of-enough-length-0123456789"
const key = createSecretKey(Buffer.from(secret, "utf8"))
const joseKey = new TextEncoder().encode(secret)
const now = Math.floor(Date.now() / 1000)

const part = (value: unknown) =>
  Buffer.from(
    typeof value === "string" ? value : value instanceof Buffer ? value : JSON.stringify(value),
  ).toString("base64url")
/** A token from raw parts, signed with `signWith` (the right secret unless told). */
const raw = (header: unknown, payload: unknown, signWith = secret) => {
  const input = `${typeof header === "string" && header.startsWith("=") ? header.slice(1) : part(header)}.${
    typeof payload === "string" && payload.startsWith("=") ? payload.slice(1) : part(payload)
  }`
  return `${input}.${createHmac("sha256", signWith).update(input).digest("base64url")}`
}
const hs = { alg: "HS256", typ: "JWT" }
const claims = { sub: "alice", exp: now + 600, scope: "receive" }

const joseVerdict = (token: string) =>
  jwtVerify(token, joseKey, { algorithms: ["HS256"], requiredClaims: ["exp", "sub"] }).then(
    (result) => ({ ok: true as const, payload: result.payload as Record<string, unknown> }),
    (error: unknown) => ({ ok: false as const, error: String(error) }),
  )

const cases: ReadonlyArray<{ name: string; token: () => Promise<string> | string; fast: boolean }> = [
  {
    name: "a token minted by @holdover/protocol",
    token: () => mintToken(secret, { sub: "alice", scopes: ["receive", "publish"], ttlSeconds: 3600 }),
    fast: true,
  },
  { name: "plain header and claims", token: () => raw(hs, claims), fast: true },
  { name: "a kid in the header", token: () => raw({ ...hs, kid: "k1" }, claims), fast: true },
  {
    name: "nbf and iat in the past",
    token: () => raw(hs, { ...claims, nbf: now - 5, iat: now - 5 }),
    fast: true,
  },
  { name: "signed with another secret", token: () => raw(hs, claims, "another-secret"), fast: false },
  { name: "expired", token: () => raw(hs, { ...claims, exp: now - 1 }), fast: false },
  { name: "exp exactly now", token: () => raw(hs, { ...claims, exp: now }), fast: false },
  { name: "exp a string", token: () => raw(hs, { ...claims, exp: String(now + 600) }), fast: false },
  { name: "no exp", token: () => raw(hs, { sub: "alice" }), fast: false },
  { name: "no sub", token: () => raw(hs, { exp: now + 600 }), fast: false },
  { name: "nbf in the future", token: () => raw(hs, { ...claims, nbf: now + 60 }), fast: false },
  { name: "nbf a string", token: () => raw(hs, { ...claims, nbf: "soon" }), fast: false },
  { name: "iat a string", token: () => raw(hs, { ...claims, iat: "then" }), fast: false },
  { name: "alg none", token: () => raw({ alg: "none" }, claims), fast: false },
  { name: "alg HS512 in the header", token: () => raw({ alg: "HS512" }, claims), fast: false },
  { name: "no alg", token: () => raw({ typ: "JWT" }, claims), fast: false },
  {
    name: "crit b64 (left to jose)",
    token: () => raw({ ...hs, crit: ["b64"], b64: true }, claims),
    fast: false,
  },
  { name: "crit unknown", token: () => raw({ ...hs, crit: ["x"], x: 1 }, claims), fast: false },
  { name: "b64 false", token: () => raw({ ...hs, crit: ["b64"], b64: false }, claims), fast: false },
  { name: "claims an array", token: () => raw(hs, [claims]), fast: false },
  { name: "claims not JSON", token: () => raw(hs, "=" + part("not json")), fast: false },
  { name: "header an array", token: () => raw([hs], claims), fast: false },
  {
    name: "claims not UTF-8",
    token: () => raw(hs, "=" + part(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]))),
    fast: false,
  },
  { name: "payload part of impossible length", token: () => raw(hs, "=" + part(claims) + "A"), fast: false },
  {
    name: "payload with a character outside base64url",
    token: () => raw(hs, "=" + part(claims) + "*"),
    fast: false,
  },
  {
    name: "two signatures",
    token: () => `${raw(hs, claims)}.${raw(hs, claims).split(".")[2]}`,
    fast: false,
  },
  {
    name: "signature of other claims",
    token: () => {
      const [header, , signature] = raw(hs, claims).split(".")
      return `${header}.${part({ ...claims, sub: "mallory" })}.${signature}`
    },
    fast: false,
  },
  {
    name: "signature with padding",
    token: () => `${raw(hs, claims)}=`,
    fast: false,
  },
  {
    name: "holdover_to and extra claims",
    token: () => raw(hs, { ...claims, holdover_to: ["bob"], x: { y: 1 } }),
    fast: true,
  },
  {
    name: "a __proto__ claim",
    token: () => raw(hs, "=" + part(`{"__proto__":{"admin":true},"sub":"a","exp":${now + 600}}`)),
    fast: true,
  },
]

describe("the synchronous HS256 check", () => {
  it.each(cases)("$name", async ({ token: make, fast }) => {
    const token = await make()
    const mine = verifyHs256(token, key, now)
    const jose = await joseVerdict(token)
    // Never accepts what jose refuses, and reads the same claims.
    if (mine !== undefined) {
      expect(jose.ok, `jose refused what the fast check accepted: ${jose.ok ? "" : jose.error}`).toBe(true)
      if (jose.ok) expect(mine).toEqual(jose.payload)
    }
    expect(mine !== undefined).toBe(fast)
  })

  it("leaves a token jose accepts in a form it does not handle to jose, which accepts it", async () => {
    const token = raw({ ...hs, crit: ["b64"], b64: true }, claims)
    expect(verifyHs256(token, key, now)).toBeUndefined()
    expect((await joseVerdict(token)).ok).toBe(true)
  })
})
