// Step 6 — cost per message as recipients grow: a fixed total of M stored messages spread over
// 10 → 100 → … recipients (M / r each, mixed priorities), and at each point the cost of one
// message through libs/queue: enqueue (µs per message at 256 enqueues in flight) plus replay
// (µs per message of sessions that drain whole backlogs, 8 at a time). The curve, not one point.
// Scaled so it fits the time budget (stated in the report):
//  - the M stored messages are written straight to JetStream in libs/queue's stored format
//    (RawJetStream.publishStored: same subjects, Nats-Msg-Id and envelope headers), not through
//    enqueue — they only set the stage (stream size, subject count, backlog per recipient);
//  - enqueue is timed on E extra messages, replay on a sample of recipients holding about S
//    messages (at most 2000 recipients; 300 in a quick run).
// Each point has its own namespace (fresh streams) and a raw baseline on the same streams: raw
// publish with the same headers, and RawJetStream.fetchBacklog of other recipients of the sample size.
import { priorities, type Priority } from "@holdover/protocol"
import { streamName, subjectFor } from "@holdover/queue"
import type { Figures, StepContext } from "./Figures.ts"
import type { Harness } from "./Harness.ts"
import { InProcessQueue } from "./InProcessQueue.ts"
import { RawJetStream, payloadBytes, type Layout } from "./RawJetStream.ts"
import { filler, ratio, round, runPool } from "./Stats.ts"

interface Point {
  readonly recipients: number
  readonly perRecipient: number
  readonly enqueueUs: number
  readonly replayUs: number
  readonly rawEnqueueUs: number
  readonly rawReplayUs: number
  readonly sampleRecipients: number
}

/** The priority of a recipient's j-th stored message: round robin, offset per recipient. */
const priorityOf = (recipient: number, j: number): Priority => priorities[(recipient + j) % 4] ?? "normal"

const countsFor = (recipient: number, m: number): Record<Priority, number> => {
  const counts: Record<Priority, number> = { critical: 0, high: 0, normal: 0, low: 0 }
  for (let j = 0; j < m; j++) counts[priorityOf(recipient, j)]++
  return counts
}

const measurePoint = async (
  harness: Harness,
  raw: RawJetStream,
  index: number,
  recipients: number,
  plan: { total: number; sample: number; maxSample: number; extra: number },
  ctx: StepContext,
): Promise<Point> => {
  const namespace = `BSCALE${index}`
  const queue = await InProcessQueue.start(harness.nats.url, namespace)
  const layout: Layout = {
    stream: (priority) => streamName(queue.settings, priority),
    subject: (priority, recipient) => subjectFor(queue.settings, priority, recipient),
  }
  const name = (r: number) => `sc${index}-${r}`
  const body = JSON.stringify(filler(payloadBytes))
  try {
    const m = Math.max(1, Math.floor(plan.total / recipients))
    // The stage: M messages, m per recipient.
    const populated = Date.now()
    await runPool(recipients * m, 256, Date.now() + 300_000, async (i) => {
      const r = Math.floor(i / m)
      const j = i % m
      await raw.publishStored(layout.subject(priorityOf(r, j), name(r)), body, `sc${index}-${r}-${j}`)
    })
    const stageS = (Date.now() - populated) / 1000

    const sample = Math.min(
      plan.maxSample,
      Math.max(1, Math.ceil(plan.sample / m)),
      Math.floor(recipients / 2),
    )
    // Enqueue: E messages to recipients outside both replay samples.
    const others = Math.max(1, recipients - 2 * sample)
    const enqueue = await queue.enqueueMany(
      plan.extra,
      256,
      (i) => ({
        to: name(2 * sample + (i % others)),
        priority: priorities[i % 4] ?? "normal",
        payload: filler(payloadBytes),
      }),
      Date.now() + 120_000,
    )
    const rawEnqueueStart = performance.now()
    await runPool(plan.extra, 256, Date.now() + 120_000, async (i) => {
      const r = 2 * sample + (i % others)
      await raw.publishStored(
        layout.subject(priorities[i % 4] ?? "normal", name(r)),
        body,
        `sc${index}-x-${i}`,
      )
    })
    const rawEnqueueMs = performance.now() - rawEnqueueStart

    // Replay: recipients [0, sample) through libs/queue sessions, [sample, 2·sample) raw.
    let violations = 0
    const replayStart = performance.now()
    await runPool(sample, 8, Date.now() + 300_000, async (r) => {
      const result = await queue.replay(name(r), m, 120_000)
      violations += result.orderViolations
    })
    const replayMs = performance.now() - replayStart
    const rawReplayStart = performance.now()
    await runPool(sample, 8, Date.now() + 300_000, async (k) => {
      const r = sample + k
      await raw.fetchBacklog(name(r), countsFor(r, m), layout)
    })
    const rawReplayMs = performance.now() - rawReplayStart

    const point: Point = {
      recipients,
      perRecipient: m,
      enqueueUs: (enqueue.ms * 1000) / Math.max(1, enqueue.count),
      replayUs: (replayMs * 1000) / (sample * m),
      rawEnqueueUs: (rawEnqueueMs * 1000) / plan.extra,
      rawReplayUs: (rawReplayMs * 1000) / (sample * m),
      sampleRecipients: sample,
    }
    ctx.log(
      `scaling ${recipients} recipients × ${m}: enqueue ${round(point.enqueueUs)} µs/msg (raw ${round(point.rawEnqueueUs)}), ` +
        `replay ${round(point.replayUs)} µs/msg over ${sample} recipients (raw ${round(point.rawReplayUs)}); ` +
        `stage of ${recipients * m} messages written in ${round(stageS)} s` +
        (violations > 0 ? `; ${violations} ORDER VIOLATIONS` : "") +
        (enqueue.failed > 0 ? `; ${enqueue.failed} enqueues failed` : ""),
    )
    // Strict priority broken is a correctness failure, not a figure: it goes into the run's notes.
    if (violations > 0)
      ctx.note(`scaling ${recipients} recipients × ${m}: ${violations} priority order violations in replay`)
    return point
  } finally {
    await queue.deleteStreams().catch(() => undefined)
    await queue.close()
  }
}

export const scaling = async (harness: Harness, ctx: StepContext): Promise<Figures> => {
  const plan = ctx.quick
    ? { recipients: [10, 100, 1000, 10_000], total: 10_000, sample: 1_000, maxSample: 300, extra: 1_000 }
    : {
        recipients: [10, 100, 1000, 10_000, 100_000],
        total: 100_000,
        sample: 10_000,
        maxSample: 2_000,
        extra: 5_000,
      }
  const raw = await RawJetStream.connect(harness.nats.url, "BENCHRAWSCALE", false)
  const points: Array<Point> = []
  try {
    for (const [index, recipients] of plan.recipients.entries())
      points.push(await measurePoint(harness, raw, index, recipients, plan, ctx))
  } finally {
    await raw.close(false)
  }
  const first = points[0]
  const last = points[points.length - 1]
  const total = (p: Point) => p.enqueueUs + p.replayUs
  const rawTotal = (p: Point) => p.rawEnqueueUs + p.rawReplayUs
  const figures: Figures = {}
  if (first && last) {
    figures["cost_per_msg_growth"] = {
      from_recipients: first.recipients,
      to_recipients: last.recipients,
      ratio: ratio(total(last), total(first)),
    }
    figures["cost_per_msg_growth_raw"] = {
      from_recipients: first.recipients,
      to_recipients: last.recipients,
      ratio: ratio(rawTotal(last), rawTotal(first)),
    }
  }
  for (const p of points)
    figures[`cost_per_msg_${p.recipients}`] = {
      recipients: p.recipients,
      msgs_per_recipient: p.perRecipient,
      enqueue_us: round(p.enqueueUs),
      replay_us: round(p.replayUs),
      total_us: round(total(p)),
      raw_enqueue_us: round(p.rawEnqueueUs),
      raw_replay_us: round(p.rawReplayUs),
      raw_total_us: round(rawTotal(p)),
      ratio: ratio(total(p), rawTotal(p)),
      replay_sample_recipients: p.sampleRecipients,
    }
  return figures
}
