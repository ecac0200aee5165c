// A TCP proxy in front of one NATS server that can lose messages on their way to the client —
// the fault a route or a leader change causes to core NATS messages (at most once), provoked on
// demand: `dropNext(subject)` loses the next MSG/HMSG of exactly that subject the server sends.
// Everything else passes through unchanged, both ways. Only for tests: it parses the server's
// protocol lines (INFO, PING, PONG, +OK, -ERR, MSG, HMSG) and nothing the client sends.
import net from "node:net"

export interface DropProxy {
  /** nats://host:port to connect the client to. */
  readonly url: string
  /** Loses the next message of `subject` sent to any client of the proxy. */
  readonly dropNext: (subject: string) => void
  /** Messages lost so far. */
  readonly dropped: () => number
  readonly close: () => Promise<void>
}

const crlf = Buffer.from("\r\n")

/** Splits the server's byte stream into whole protocol items, dropping the armed ones. */
class ServerFrames {
  private pending: Buffer = Buffer.alloc(0)
  private readonly shouldDrop: (subject: string) => boolean

  constructor(shouldDrop: (subject: string) => boolean) {
    this.shouldDrop = shouldDrop
  }

  /** The bytes to pass on from `chunk` (whole items only; a partial one waits for the rest). */
  push(chunk: Buffer): Buffer {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk])
    const out: Array<Buffer> = []
    let at = 0
    for (;;) {
      const lineEnd = this.pending.indexOf(crlf, at)
      if (lineEnd < 0) break
      const line = this.pending.subarray(at, lineEnd).toString("latin1")
      let end = lineEnd + 2
      let subject: string | undefined
      if (line.startsWith("MSG ") || line.startsWith("HMSG ")) {
        const fields = line.split(" ")
        subject = fields[1]
        end += Number(fields[fields.length - 1]) + 2 // the payload (headers included) and its CRLF
        if (end > this.pending.length) break
      }
      if (subject === undefined || !this.shouldDrop(subject)) out.push(this.pending.subarray(at, end))
      at = end
    }
    this.pending = this.pending.subarray(at)
    return Buffer.concat(out)
  }
}

export const startDropProxy = async (upstreamUrl: string): Promise<DropProxy> => {
  const upstream = new URL(upstreamUrl)
  const armed = new Set<string>()
  let dropped = 0
  const sockets = new Set<net.Socket>()
  const shouldDrop = (subject: string) => {
    if (!armed.delete(subject)) return false
    dropped++
    return true
  }
  const server = net.createServer((client) => {
    const toServer = net.connect(Number(upstream.port), upstream.hostname)
    const frames = new ServerFrames(shouldDrop)
    for (const socket of [client, toServer]) {
      sockets.add(socket)
      socket.on("error", () => undefined)
      socket.on("close", () => {
        sockets.delete(socket)
        client.destroy()
        toServer.destroy()
      })
    }
    client.on("data", (chunk: Buffer) => toServer.write(chunk))
    toServer.on("data", (chunk: Buffer) => {
      const pass = frames.push(chunk)
      if (pass.length > 0) client.write(pass)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as net.AddressInfo
  return {
    url: `nats://127.0.0.1:${port}`,
    dropNext: (subject) => void armed.add(subject),
    dropped: () => dropped,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}
