// A synchronous check of the common HS256 token, with node:crypto. jose verifies HMAC through
// WebCrypto, an asynchronous job per token: 6.7 % of the gateway's CPU while idle clients
// connected, each with a token of its own (a profile of the idle bench step).
//
// It only ever says "valid": for a token in the plain form (three base64url parts; a header of
// `alg` HS256 and at most `typ` and `kid`; a claims object whose `exp` is a number in the future,
// `sub` present, `nbf` and `iat` numbers when present, `nbf` not in the future) whose signature
// matches. Anything else — a bad signature, an expired token, an unusual header (`crit`, `b64`…),
// malformed parts — returns undefined and the caller asks jose, which refuses it with its exact
// reason (or accepts a form this does not handle). So this can only accept what jose accepts
// (apps/gateway/test/Hs256.test.ts checks that against jose, case by case).
import { createHmac, timingSafeEqual, type KeyObject } from "node:crypto"

const base64url = /^[A-Za-z0-9_-]+$/
const strictUtf8 = new TextDecoder("utf-8", { fatal: true })
const allowedHeader = new Set(["alg", "typ", "kid"])

const isPlainObject = (value: unknown): value is Record<string, unknown> => {
  if (
    typeof value !== "object" ||
    value === null ||
    Object.prototype.toString.call(value) !== "[object Object]"
  )
    return false
  const prototype = Object.getPrototypeOf(value) as unknown
  return prototype === null || Object.getPrototypeOf(prototype) === null
}

const decodeJson = (part: string): unknown => {
  if (part.length % 4 === 1) return undefined // not base64 (jose's decoder refuses it)
  try {
    return JSON.parse(strictUtf8.decode(Buffer.from(part, "base64url")))
  } catch {
    return undefined
  }
}

/** The claims of a valid HS256 token in the plain form; undefined when jose must decide. */
export const verifyHs256 = (
  token: string,
  key: KeyObject,
  nowSeconds: number,
): Record<string, unknown> | undefined => {
  const parts = token.split(".")
  if (parts.length !== 3) return undefined
  const [header, payload, signature] = parts as [string, string, string]
  if (!base64url.test(header) || !base64url.test(payload) || !/^[A-Za-z0-9_-]{43}$/.test(signature))
    return undefined
  const expected = createHmac("sha256", key).update(`${header}.${payload}`).digest("base64url")
  if (!timingSafeEqual(Buffer.from(expected), Buffer.from(signature))) return undefined
  const protectedHeader = decodeJson(header)
  if (!isPlainObject(protectedHeader) || protectedHeader["alg"] !== "HS256") return undefined
  for (const name of Object.keys(protectedHeader)) if (!allowedHeader.has(name)) return undefined
  const claims = decodeJson(payload)
  if (!isPlainObject(claims)) return undefined
  const { exp, nbf, iat } = claims
  if (typeof exp !== "number" || exp <= nowSeconds || !Object.hasOwn(claims, "sub")) return undefined
  if (nbf !== undefined && (typeof nbf !== "number" || nbf > nowSeconds)) return undefined
  if (iat !== undefined && typeof iat !== "number") return undefined
  return claims
}
