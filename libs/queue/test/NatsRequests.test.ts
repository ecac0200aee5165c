// The nats.js patches of NatsRequests.ts against a real nats-server: answered requests no longer
// build an Error each, and every outcome a caller sees is unchanged (an answer, no responders, a
// timeout, a cancelled request); a coalescing connection writes once per event-loop turn.
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { coalesceWrites, skipErrorPerAnsweredRequest } from "@holdover/queue"
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { beforeAll, describe, expect, it } from "vitest"
import { suiteNats } from "./support.ts"

// request.js looks `errors.RequestError` up on the errors module at each use: counting what it
// builds means swapping that export for a counting subclass.
const require = createRequire(import.meta.url)
const errorsModule = require(join(dirname(require.resolve("@nats-io/nats-core/internal")), "errors.js")) as {
  RequestError: new (message?: string, options?: ErrorOptions) => Error
}

const countRequestErrors = async (run: () => Promise<void>): Promise<number> => {
  const Original = errorsModule.RequestError
  let built = 0
  errorsModule.RequestError = class extends Original {
    constructor(message?: string, options?: ErrorOptions) {
      super(message, options)
      built++
    }
  }
  try {
    await run()
  } finally {
    errorsModule.RequestError = Original
  }
  return built
}

beforeAll(() => void expect(skipErrorPerAnsweredRequest()).toBe(true)) // before the suite connects
const suite = suiteNats({ noAsyncTraces: true })
beforeAll(async () => {
  suite.nc.subscribe("echo", { callback: (_error, msg) => void msg.respond(msg.data) })
  suite.nc.subscribe("silent", { callback: () => undefined })
  await suite.nc.flush()
})

describe("requests with nats.js patched", () => {
  it("answers 200 requests without building an Error for any of them", async () => {
    const built = await countRequestErrors(async () => {
      const answers = await Promise.all(
        Array.from({ length: 200 }, (_, i) => suite.nc.request("echo", String(i), { timeout: 5_000 })),
      )
      expect(answers.map((answer) => answer.string())).toEqual(
        Array.from({ length: 200 }, (_, i) => String(i)),
      )
    })
    expect(built).toBe(0)
  })

  it("still fails a request nobody listens to with no responders, and one nobody answers with a timeout", async () => {
    const nobody = await suite.nc
      .request("nobody.here", "x", { timeout: 5_000 })
      .catch((error: unknown) => error)
    expect(nobody).toBeInstanceOf(Error)
    expect((nobody as { isNoResponders?: () => boolean }).isNoResponders?.()).toBe(true)
    const started = Date.now()
    const silent = await suite.nc.request("silent", "x", { timeout: 200 }).catch((error: unknown) => error)
    expect(silent).toBeInstanceOf(Error)
    expect((silent as Error).name).toBe("TimeoutError")
    expect(Date.now() - started).toBeGreaterThanOrEqual(150)
  })

  it("still rejects a request whose connection closes before the answer", async () => {
    const other = await connect({ servers: suite.server.url })
    const pending = other.request("silent", "x", { timeout: 10_000 }).catch((error: unknown) => error)
    await other.close()
    expect(await pending).toBeInstanceOf(Error)
  })
})

describe("writes coalesced per event-loop turn", () => {
  /** Requests sent from 50 separate microtasks in one turn, and how many socket writes they took. */
  const fiftyFromMicrotasks = async (client: NatsConnection) => {
    const transport = (
      client as unknown as { protocol: { transport: { send: (frame: Uint8Array) => void } } }
    ).protocol.transport
    const send = transport.send
    let writes = 0
    transport.send = (frame) => {
      writes++
      send.call(transport, frame)
    }
    try {
      const answers: Array<Promise<string>> = []
      for (let i = 0; i < 50; i++) {
        answers.push(client.request("echo", String(i), { timeout: 5_000 }).then((answer) => answer.string()))
        await Promise.resolve() // the next request from another microtask, as fibers send them
      }
      expect(await Promise.all(answers)).toEqual(Array.from({ length: 50 }, (_, i) => String(i)))
      return writes
    } finally {
      transport.send = send
    }
  }

  it("sends what one turn's microtasks sent in one write, and every request is still answered", async () => {
    const plain = await connect({ servers: suite.server.url, noAsyncTraces: true })
    const coalescing = await connect({ servers: suite.server.url, noAsyncTraces: true })
    try {
      expect(coalesceWrites(coalescing)).toBe(true)
      // Unpatched, each microtask that sent something makes a write of its own.
      expect(await fiftyFromMicrotasks(plain)).toBeGreaterThanOrEqual(25)
      expect(await fiftyFromMicrotasks(coalescing)).toBeLessThanOrEqual(2)
      // A flush (PING/PONG) still completes, and so does a drain.
      await coalescing.flush()
    } finally {
      await plain.close()
      await coalescing.drain()
    }
  })
})
