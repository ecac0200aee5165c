// Step — durability: what `sync_interval: always` (the prod overlay's NATS setting: fsync before
// every ack, docs/deploying.md "Durability") costs. Two fresh nats-servers on this machine's disk,
// one with the server default (fsync every 2 min) and one with `always`; on each, raw JetStream
// async publish (the baseline) and Holdover's HTTP batch publish through a gateway of its own.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Figures, StepContext } from "./Figures.ts"
import type { Harness } from "./Harness.ts"
import { RawJetStream, payloadBytes } from "./RawJetStream.ts"
import { filler, perSecond, ratio, round, runPool } from "./Stats.ts"

const recipients = 100

export const durability = async (harness: Harness, ctx: StepContext): Promise<Figures> => {
  const plan = ctx.quick ? { raw: 2_000, batches: 2 } : { raw: 10_000, batches: 10 }
  const payload = filler(payloadBytes)
  const producer = await harness.token("bench-durability", ["publish"])
  const configDir = mkdtempSync(join(tmpdir(), "holdover-bench-sync-"))
  const measure = async (sync: "default" | "always") => {
    const config = join(configDir, `${sync}.conf`)
    writeFileSync(config, sync === "always" ? "jetstream {\n  sync_interval: always\n}\n" : "jetstream {}\n")
    const nats = await harness.freshNats(["-c", config])
    const gateway = await harness.gateway({ HOLDOVER_NATS_URL: nats.url })
    try {
      const raw = await RawJetStream.connect(nats.url, "BENCHSYNC")
      await raw.publishRate({ count: 1_000, window: 256, recipients, deadline: Date.now() + 20_000 })
      const rawRun = await raw.publishRate({
        count: plan.raw,
        window: 256,
        recipients,
        deadline: Date.now() + 60_000,
      })
      await raw.close()
      let ok = 0
      const started = performance.now()
      await runPool(plan.batches, 4, Date.now() + 90_000, async (b) => {
        const messages = Array.from({ length: 1000 }, (_, i) => ({
          to: `sync-${(b * 1000 + i) % recipients}`,
          payload,
        }))
        const reply = await harness.http(gateway.url, "POST", "/v1/messages/batch", producer, { messages })
        ok += ((reply.body as { results?: Array<{ status?: string }> }).results ?? []).filter(
          (r) => r.status === "queued",
        ).length
      })
      const holdover = perSecond(ok, performance.now() - started)
      ctx.log(
        `sync_interval ${sync}: raw publish ${rawRun.rate} msg/s, Holdover HTTP batch ${holdover} msg/s`,
      )
      return { raw: rawRun.rate, holdover }
    } finally {
      await harness.stopGateway(gateway)
      await nats.stop()
    }
  }
  try {
    const fast = await measure("default")
    const safe = await measure("always")
    return {
      sync_always: {
        unit: "msg/s",
        raw_default: fast.raw,
        raw_always: safe.raw,
        raw_always_ratio: ratio(safe.raw, fast.raw),
        holdover_default: fast.holdover,
        holdover_always: safe.holdover,
        holdover_always_ratio: ratio(safe.holdover, fast.holdover),
        holdover_always_vs_raw_always: ratio(safe.holdover, safe.raw),
        payload_bytes: round(payloadBytes),
      },
    }
  } finally {
    rmSync(configDir, { recursive: true, force: true })
  }
}
