// What every suite that runs real gateway processes shares: one HS256 secret per test process,
// tokens minted with it, ids no other test uses, and a gateway over a given nats-server that
// trusts that secret. The suites' own support modules add only what is theirs.
import { randomBytes } from "node:crypto"
import { mintToken, type TokenOptions } from "@holdover/protocol"
import { startGateway, type RunningGateway } from "./LocalGateway.ts"
import type { RunningNats } from "./LocalNats.ts"

/** Random per process; it may start with "-" (pass it to a CLI as `--secret=…`). */
export const testSecret = randomBytes(24).toString("base64url")

let counter = 0
/** A recipient (or producer) id no other test, or earlier run against the same server, uses. */
export const unique = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}`

export const testToken = (
  sub: string,
  scopes: TokenOptions["scopes"] = ["receive", "publish", "admin"],
  extra: Partial<TokenOptions> = {},
) => mintToken(testSecret, { sub, scopes, ...extra })

/** A gateway process over `server` that verifies tokens with `testSecret`. */
export const testGateway = (
  server: RunningNats,
  env: Record<string, string> = {},
  options: Parameters<typeof startGateway>[1] = {},
): Promise<RunningGateway> =>
  startGateway(
    { HOLDOVER_NATS_URL: server.url, HOLDOVER_JWT_SECRET: testSecret, HOLDOVER_LOG_LEVEL: "Info", ...env },
    options,
  )
