import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { RunningGateway, RunningNats } from "@holdover/local-nats"
import { exportJWK, generateKeyPair, SignJWT } from "jose"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { connect, gateway, http, nats, token } from "./support.ts"

describe("tokens signed with RS256/ES256 keys from a JWKS file", () => {
  let server: RunningNats
  let node: RunningGateway
  let dir: string
  const keys: Record<string, Awaited<ReturnType<typeof generateKeyPair>>["privateKey"]> = {}

  const sign = (
    alg: "RS256" | "ES256",
    kid: string,
    claims: Record<string, unknown>,
    sub: string,
    exp = "1h",
  ) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg, kid })
      .setSubject(sub)
      .setExpirationTime(exp)
      .sign(keys[kid]!)

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "holdover-jwks-"))
    const rsa = await generateKeyPair("RS256")
    const ec = await generateKeyPair("ES256")
    keys["rsa-1"] = rsa.privateKey
    keys["ec-1"] = ec.privateKey
    const jwks = {
      keys: [
        { ...(await exportJWK(rsa.publicKey)), kid: "rsa-1", alg: "RS256", use: "sig" },
        { ...(await exportJWK(ec.publicKey)), kid: "ec-1", alg: "ES256", use: "sig" },
      ],
    }
    writeFileSync(join(dir, "jwks.json"), JSON.stringify(jwks))
    server = await nats()
    // No HS256 secret on this node: only JWKS keys verify.
    node = await gateway(server, { HOLDOVER_JWT_SECRET: "", HOLDOVER_JWKS: join(dir, "jwks.json") })
  })
  afterAll(async () => {
    await node?.stop()
    await server?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  it("accepts RS256 and ES256 tokens whose key is in the JWKS", async () => {
    for (const [alg, kid] of [
      ["RS256", "rsa-1"],
      ["ES256", "ec-1"],
    ] as const) {
      const jwt = await sign(alg, kid, { scope: "publish" }, "svc")
      const reply = await http(node.url, "POST", "/v1/messages", {
        token: jwt,
        body: { to: `jwks-${alg}`, payload: alg },
      })
      expect(reply.status, alg).toBe(202)
    }
    const socket = await connect(node.wsUrl, {
      token: await sign("ES256", "ec-1", { scope: "receive" }, "jwks-ES256"),
    })
    expect((await socket.next()).type).toBe("welcome")
    expect((await socket.messages(1))[0]?.["payload"]).toBe("ES256")
    socket.ws.close()
  })

  it("refuses HS256 tokens when no secret is configured, unknown keys and expired tokens", async () => {
    const hs = await token("svc", ["publish"])
    expect(
      (await http(node.url, "POST", "/v1/messages", { token: hs, body: { to: "x", payload: 1 } })).status,
    ).toBe(401)
    const stranger = await generateKeyPair("ES256")
    const unknownKey = await new SignJWT({ scope: "publish" })
      .setProtectedHeader({ alg: "ES256", kid: "ec-1" })
      .setSubject("svc")
      .setExpirationTime("1h")
      .sign(stranger.privateKey)
    expect(
      (await http(node.url, "POST", "/v1/messages", { token: unknownKey, body: { to: "x", payload: 1 } }))
        .status,
    ).toBe(401)
    const expired = await sign("RS256", "rsa-1", { scope: "publish" }, "svc", "-1m")
    expect(
      (await http(node.url, "POST", "/v1/messages", { token: expired, body: { to: "x", payload: 1 } }))
        .status,
    ).toBe(401)
    const noExp = await new SignJWT({ scope: "publish" })
      .setProtectedHeader({ alg: "RS256", kid: "rsa-1" })
      .setSubject("svc")
      .sign(keys["rsa-1"]!)
    expect(
      (await http(node.url, "POST", "/v1/messages", { token: noExp, body: { to: "x", payload: 1 } })).status,
    ).toBe(401)
  })
})
