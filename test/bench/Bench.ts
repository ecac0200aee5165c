// The benchmark run (`npm run bench`, `npm run bench -- --quick`): starts a nats-server of its own
// and gateway processes on loopback, runs the steps in order — throughput, nats bench, end-to-end
// delivery, reconnect replay, idle connections, cost-per-message scaling, wire compression,
// overload, durability, reconnect storms, the memory soak — each next to its raw baseline —
// prints a progress line per step, and writes the results file, the markdown table and the chart. A step that fails is reported
// and the run goes on; a step that would start after the time budget is skipped and noted.
// Everything it starts is stopped at the end (and killed if the process exits early).
import { spawnSync } from "node:child_process"
import { availableParallelism, loadavg } from "node:os"
import type { RunningGateway } from "@holdover/local-nats"
import { priorities } from "@holdover/protocol"
import { compression } from "./Compression.ts"
import { delivery } from "./Delivery.ts"
import { durability } from "./Durability.ts"
import { natsBench } from "./NatsBench.ts"
import type { Figures, StepContext } from "./Figures.ts"
import { Harness } from "./Harness.ts"
import { idle } from "./Idle.ts"
import { overload } from "./Overload.ts"
import { RawJetStream } from "./RawJetStream.ts"
import { replay } from "./Replay.ts"
import { markdownTable, orderFigures, writeResults, type Results } from "./Report.ts"
import { scaling } from "./Scaling.ts"
import { soak } from "./Soak.ts"
import { round } from "./Stats.ts"
import { storm } from "./Storm.ts"
import { throughput } from "./Throughput.ts"

export interface BenchOptions {
  readonly quick: boolean
  readonly resultsDir: string
  /** Run only these steps (by name); all when empty. */
  readonly only: ReadonlyArray<string>
  /** Gateways write V8 CPU profiles here (for finding bottlenecks; slows them down a little). */
  readonly cpuProfDir?: string | undefined
}

interface Step {
  readonly name: string
  readonly run: (
    harness: Harness,
    ctx: StepContext,
    gateway: () => Promise<RunningGateway>,
  ) => Promise<Figures>
}

const steps: ReadonlyArray<Step> = [
  { name: "throughput", run: async (h, ctx, gateway) => throughput(h, await gateway(), ctx) },
  { name: "natsbench", run: (h, ctx) => natsBench(h, ctx) },
  { name: "delivery", run: async (h, ctx, gateway) => delivery(h, await gateway(), ctx) },
  { name: "replay", run: async (h, ctx, gateway) => replay(h, await gateway(), ctx) },
  { name: "idle", run: (h, ctx) => idle(h, ctx) },
  { name: "scaling", run: (h, ctx) => scaling(h, ctx) },
  { name: "compression", run: async (h, ctx, gateway) => compression(h, await gateway(), ctx) },
  { name: "overload", run: (h, ctx) => overload(h, ctx) },
  { name: "durability", run: (h, ctx) => durability(h, ctx) },
  // Last: the one with a hard time limit, and the heaviest residue for JetStream.
  { name: "storm", run: (h, ctx) => storm(h, ctx) },
  // Ten minutes on a gateway of its own: memory after 50 000 sessions and steady traffic.
  { name: "soak", run: (h, ctx) => soak(h, ctx) },
]

/** The commit under test, and whether apps/ or libs/ differ from it (others may be editing). */
const sourceVersion = (): string => {
  const git = (...args: Array<string>) => spawnSync("git", args, { encoding: "utf8" }).stdout?.trim() ?? ""
  const commit = git("rev-parse", "--short", "HEAD") || "unknown"
  return git("status", "--porcelain", "--", "apps", "libs") ? `${commit}+uncommitted changes` : commit
}

/** Empties Holdover's four streams (what earlier steps left for recipients that never connect). */
const purgeHoldover = async (harness: Harness): Promise<void> => {
  const raw = await RawJetStream.connect(harness.nats.url, "HOLDOVER", false)
  try {
    for (const priority of priorities)
      await raw.jsm.streams.purge(`HOLDOVER_${priority.toUpperCase()}`).catch(() => undefined)
  } finally {
    await raw.close(false)
  }
}

export const runBench = async (options: BenchOptions): Promise<Results> => {
  const started = Date.now()
  const budgetMs = options.quick ? 240_000 : 20 * 60_000
  const loadStart = loadavg()
  const versionStart = sourceVersion()
  const notes: Array<string> = []
  const stepTimes: Record<string, number | string> = {}
  const log = (line: string) => console.log(`[bench ${round((Date.now() - started) / 1000)}s] ${line}`)
  const ctxFor = (step: string): StepContext => ({
    quick: options.quick,
    log: (line) => log(`${step}: ${line}`),
    note: (line) => notes.push(line),
  })
  const cpuCount = availableParallelism()
  log(
    `${options.quick ? "quick" : "full"} run of ${versionStart} on ${cpuCount} CPUs, Node ${process.version}, ` +
      `load average ${loadStart.map((l) => l.toFixed(2)).join(" ")}`,
  )

  const harness = await Harness.start(log, { cpuProfDir: options.cpuProfDir })
  log(`nats-server ${harness.natsVersion} at ${harness.nats.url} (monitoring ${harness.nats.monitorUrl})`)
  const figures: Figures = {}
  let shared: RunningGateway | undefined
  const sharedGateway = async () => {
    shared ??= await harness.gateway()
    return shared
  }
  try {
    const selected = steps.filter((s) => options.only.length === 0 || options.only.includes(s.name))
    for (const [i, step] of selected.entries()) {
      if (Date.now() - started > budgetMs) {
        notes.push(`step ${step.name} skipped: the run was over its time budget`)
        log(`${i + 1}/${selected.length} ${step.name}: SKIPPED (over the time budget)`)
        continue
      }
      const stepStart = Date.now()
      log(`${i + 1}/${selected.length} ${step.name} …`)
      try {
        const result = await step.run(harness, ctxFor(step.name), sharedGateway)
        Object.assign(figures, result)
        stepTimes[step.name] = round((Date.now() - stepStart) / 1000)
        log(`${i + 1}/${selected.length} ${step.name} done in ${stepTimes[step.name]} s`)
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error)
        stepTimes[step.name] = `failed: ${message.slice(0, 300)}`
        notes.push(`step ${step.name} failed: ${message.slice(0, 300)}`)
        log(`${i + 1}/${selected.length} ${step.name} FAILED: ${message}`)
      }
      // The next step starts from empty Holdover streams.
      await purgeHoldover(harness).catch(() => undefined)
    }
  } finally {
    await harness.stop()
  }
  if (options.quick)
    notes.push(
      "quick run: every step scaled down (see test/bench/*.ts plans); figures are not comparable with full runs",
    )
  const base = options.quick ? "quick" : options.only.length > 0 ? "partial" : "latest"
  const results: Results = {
    date: new Date().toISOString(),
    machine: { cpus: cpuCount, node: process.version, natsServer: harness.natsVersion },
    figures: orderFigures(figures),
    run: {
      mode: options.quick ? "quick" : "full",
      source: versionStart,
      ...(sourceVersion() === versionStart ? {} : { sourceAtEnd: sourceVersion() }),
      durationS: round((Date.now() - started) / 1000),
      loadAverageStart: loadStart.map((l) => round(l)),
      loadAverageEnd: loadavg().map((l) => round(l)),
      notes,
      steps: stepTimes,
      chart: `${base}.svg`,
    },
  }
  const paths = await writeResults(options.resultsDir, base, results)
  console.log(`\n${markdownTable(results)}\n`)
  for (const line of notes) console.log(`note: ${line}`)
  log(`wrote ${paths.json}, ${paths.md}, ${paths.svg}`)
  return results
}
