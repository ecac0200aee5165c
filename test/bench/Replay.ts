// Step 3 — reconnect replay: a recipient with a backlog of 1, 10, 100, 1000 or 10 000 messages of
// mixed priorities (shuffled, so strict priority order has real work to do) connects; the time
// from the socket's `open` to the last message received, over repeated runs (fewer for the big
// backlogs). Every run also checks what it measured: all messages, no duplicates, and no message
// of a higher priority after one of a lower priority.
// The baseline drains the same backlog straight from JetStream with the same client library
// (RawJetStream.fetchBacklog: consumers created, 1000-message fetches, acks), in the same step.
// Both backlogs of a size are stored before its first run, the same way: the first read of a
// subject whose messages the server has not touched lately costs it 3–30 ms (loading the
// blocks' subject index), and a baseline stored just before its fetch never paid that.
import type { RunningGateway } from "@holdover/local-nats"
import { priorities, type Priority } from "@holdover/protocol"
import { BenchClient } from "./BenchClient.ts"
import type { Figures, StepContext } from "./Figures.ts"
import type { Harness } from "./Harness.ts"
import { RawJetStream, payloadBytes } from "./RawJetStream.ts"
import { filler, median, percentile, ratio, round } from "./Stats.ts"

/** `size` priorities, as even as possible over the four, in a shuffled order. */
export const mixedPriorities = (size: number, random: () => number = Math.random): Array<Priority> => {
  const out = Array.from({ length: size }, (_, i) => priorities[i % priorities.length] ?? "normal")
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const a = out[i] ?? "normal"
    out[i] = out[j] ?? "normal"
    out[j] = a
  }
  return out
}

const countsOf = (list: ReadonlyArray<Priority>): Record<Priority, number> => {
  const counts: Record<Priority, number> = { critical: 0, high: 0, normal: 0, low: 0 }
  for (const priority of list) counts[priority]++
  return counts
}

export const replay = async (
  harness: Harness,
  gateway: RunningGateway,
  ctx: StepContext,
): Promise<Figures> => {
  const plan: ReadonlyArray<readonly [size: number, runs: number]> = ctx.quick
    ? [
        [1, 5],
        [10, 5],
        [100, 3],
        [1000, 2],
        [10_000, 1],
      ]
    : [
        [1, 20],
        [10, 20],
        [100, 10],
        [1000, 5],
        [10_000, 3],
      ]
  const payload = filler(payloadBytes)
  const producer = await harness.token("bench-producer", ["publish"])
  const raw = await RawJetStream.connect(harness.nats.url, "BENCHRAWREPLAY")
  const figures: Figures = {}
  try {
    for (const [size, runs] of plan) {
      const tag = `replay-${size}-${Date.now().toString(36)}`
      const backlogs = Array.from({ length: runs }, () => mixedPriorities(size))
      const messages = backlogs.flatMap((list, run) =>
        list.map((priority) => ({ to: `${tag}-${run}`, priority, payload })),
      )
      await harness.seed(gateway.url, producer, messages)
      for (const [run, list] of backlogs.entries()) await raw.seed(`${tag}-${run}`, countsOf(list))
      const tokens = await harness.tokens(backlogs.map((_, run) => `${tag}-${run}`))

      const times: Array<number> = []
      const rawTimes: Array<number> = []
      let violations = 0
      let duplicates = 0
      let lastCpu: Record<string, number> = {}
      for (let run = 0; run < runs; run++) {
        const counts = countsOf(backlogs[run] ?? [])
        rawTimes.push(await raw.fetchBacklog(`${tag}-${run}`, counts))

        const cpu = harness.meter(gateway)
        const client = new BenchClient({ url: gateway.wsUrl, token: tokens[run] ?? "", expect: size }).start()
        const finished = await Promise.race([
          client.done.then(() => true),
          new Promise<false>((resolve) => setTimeout(() => resolve(false), 120_000).unref()),
        ])
        lastCpu = cpu()
        await client.close()
        if (!finished) throw new Error(`replay of ${size}: only ${client.received} delivered within 120 s`)
        times.push(client.lastMessageAt - client.openedAt)
        violations += client.orderViolations
        duplicates += client.duplicates
      }
      const p50 = median(times)
      const p99 = percentile(times, 99)
      const baseline = median(rawTimes)
      ctx.log(
        `replay ${size}: p50 ${round(p50)} ms, p99 ${round(p99)} ms over ${runs} runs; raw fetch ${round(baseline)} ms; ` +
          `${round((size * 1000) / p50)} msg/s; order violations ${violations}, duplicates ${duplicates}`,
      )
      if (violations > 0) ctx.note(`replay ${size}: ${violations} priority-order violations`)
      figures[`replay_${size}`] = {
        p50_ms: round(p50),
        ...(size === 10_000 ? {} : { p99_ms: round(p99) }),
        baseline_ms: round(baseline),
        ratio: ratio(p50, baseline),
      }
      figures[`replay_${size}_detail`] = {
        runs,
        msg_per_s: round((size * 1000) / p50),
        raw_msg_per_s: round((size * 1000) / baseline),
        max_ms: round(Math.max(...times)),
        order_violations: violations,
        duplicates,
        // CPU shares are only meaningful over runs of a second or more (10 ms clock ticks).
        ...(size >= 1000 ? lastCpu : {}),
      }
    }
  } finally {
    await raw.close()
  }
  return figures
}
