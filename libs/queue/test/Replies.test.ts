// The reply subscription sessions make their requests through (Replies.ts), against a real
// nats-server: answers reach the request that asked, a status answer is a status (no responders,
// a direct get that found nothing) rather than an error, several answers reach one request until
// it says it has the last, a request nobody answers fails in time, and a closing connection fails
// what still waits.
import { NoAnswer, Replies, Status } from "@holdover/queue"
import { jetstream, jetstreamManager } from "@nats-io/jetstream"
import { connect } from "@nats-io/transport-node"
import { describe, expect, it } from "vitest"
import { suiteNats } from "./support.ts"

const suite = suiteNats({ noAsyncTraces: true })

describe("Replies", () => {
  it("routes each answer to the request that asked, and shares one subscription per connection", async () => {
    const echo = suite.nc.subscribe("replies.echo", {
      callback: (_, msg) => void msg.respond(`re:${msg.string()}`),
    })
    await suite.nc.flush()
    const replies = Replies.of(suite.nc)
    expect(Replies.of(suite.nc)).toBe(replies)
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => replies.one("replies.echo", `m${i}`, 2_000)),
    )
    expect(answers.map(({ msg, status }) => [status, msg.string()])).toEqual(
      Array.from({ length: 50 }, (_, i) => [Status.Ok, `re:m${i}`]),
    )
    expect(replies.pending).toBe(0)
    echo.unsubscribe()
  })

  it("answers 'no responders' with a status, not an error", async () => {
    const { status } = await Replies.of(suite.nc).one("replies.nobody-listens", "?", 2_000)
    expect(status).toBe(Status.NoResponders)
  })

  it("gives a direct get that found nothing as a 404, and one that found a message as the message", async () => {
    const jsm = await jetstreamManager(suite.nc)
    await jsm.streams.add({ name: "REPLIES", subjects: ["replies.stored.>"], allow_direct: true })
    const ack = await jetstream(suite.nc).publish("replies.stored.a", "hello")
    const replies = Replies.of(suite.nc)
    const found = await replies.one(
      "$JS.API.DIRECT.GET.REPLIES",
      JSON.stringify({ seq: 1, next_by_subj: "replies.stored.a" }),
      2_000,
    )
    expect(found.status).toBe(Status.Ok)
    expect(found.msg.string()).toBe("hello")
    expect(found.msg.headers?.get("Nats-Sequence")).toBe(String(ack.seq))
    const missing = await replies.one(
      "$JS.API.DIRECT.GET.REPLIES",
      JSON.stringify({ seq: 1, next_by_subj: "replies.stored.b" }),
      2_000,
    )
    expect(missing.status).toBe(Status.NotFound)
  })

  it("hands several answers to one request until it has the last", async () => {
    const burst = suite.nc.subscribe("replies.burst", {
      callback: (_, msg) => {
        for (let i = 0; i < 5; i++) msg.respond(`part ${i}`)
      },
    })
    await suite.nc.flush()
    const parts: Array<string> = []
    await Replies.of(suite.nc).request("replies.burst", "", 2_000, (msg) => {
      parts.push(msg.string())
      return parts.length === 3 // the request decides which answer is its last
    })
    expect(parts).toEqual(["part 0", "part 1", "part 2"])
    burst.unsubscribe()
  })

  it("fails a request nobody answers in time with NoAnswer, and ignores a late answer", async () => {
    let lateSent = () => {}
    const late = new Promise<void>((resolve) => (lateSent = resolve))
    const slow = suite.nc.subscribe("replies.slow", {
      callback: (_, msg) =>
        void setTimeout(() => {
          msg.respond("late")
          lateSent()
        }, 300),
    })
    await suite.nc.flush()
    const replies = Replies.of(suite.nc)
    const started = Date.now()
    const error = await replies.one("replies.slow", "", 100).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(NoAnswer)
    expect(Date.now() - started).toBeGreaterThanOrEqual(90)
    expect(replies.pending).toBe(0)
    // The late answer arrives for nobody; later requests are unaffected.
    const echo = suite.nc.subscribe("replies.echo2", { callback: (_, msg) => void msg.respond("ok") })
    await suite.nc.flush()
    await late
    await suite.nc.flush() // the late answer went out on this connection before the flush's PING
    expect(replies.pending).toBe(0)
    expect((await replies.one("replies.echo2", "", 2_000)).msg.string()).toBe("ok")
    slow.unsubscribe()
    echo.unsubscribe()
  })

  it("fails what still waits when the connection closes", async () => {
    const other = await connect({ servers: suite.server.url })
    other.subscribe("replies.silent", { callback: () => undefined }) // hears it, never answers
    await other.flush()
    const waiting = Replies.of(other).one("replies.silent", "", 10_000)
    const outcome = waiting.then(
      () => "answered",
      (e: unknown) => e,
    )
    await other.close()
    expect(await outcome).toBeInstanceOf(NoAnswer)
    await expect(Replies.of(other).one("replies.silent", "", 1_000)).rejects.toBeInstanceOf(NoAnswer)
  })
})
