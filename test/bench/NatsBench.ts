// The NATS project's own publish benchmark, `nats bench js pub async` (the NATS CLI, natscli,
// built from its Go module into the user cache on first use), on the bench's nats-server: a raw
// JetStream publish figure that no one here wrote, beside the bench's own Node baseline (which
// publishes from @nats-io/jetstream, as Holdover does). Without Go, the figure is skipped and noted.
import { spawnSync } from "node:child_process"
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs"
import { homedir, tmpdir } from "node:os"
import { join } from "node:path"
import type { Figures, StepContext } from "./Figures.ts"
import type { Harness } from "./Harness.ts"
import { RawJetStream, payloadBytes } from "./RawJetStream.ts"

export const natsCliVersion = "0.5.1"

const cliPath = () =>
  join(
    process.env["HOLDOVER_CACHE_DIR"] ??
      join(process.env["XDG_CACHE_HOME"] ?? join(homedir(), ".cache"), "holdover"),
    "natscli",
    `v${natsCliVersion}`,
    "nats",
  )

/** The NATS CLI, installed with `go install` when missing; undefined (with a reason) when it cannot be. */
const natsCli = (ctx: StepContext): string | undefined => {
  const path = cliPath()
  if (existsSync(path)) return path
  if (spawnSync("go", ["version"], { stdio: "ignore" }).status !== 0) {
    ctx.note(`nats bench: skipped (no Go to build natscli v${natsCliVersion})`)
    return undefined
  }
  ctx.log(`building the NATS CLI v${natsCliVersion} from its Go module (about a minute)…`)
  mkdirSync(join(path, ".."), { recursive: true })
  const built = spawnSync("go", ["install", `github.com/nats-io/natscli/nats@v${natsCliVersion}`], {
    env: { ...process.env, GOBIN: join(path, "..") },
    encoding: "utf8",
    timeout: 600_000,
  })
  if (built.status !== 0 || !existsSync(path)) {
    ctx.note(`nats bench: skipped (go install natscli failed: ${built.stderr.trim().slice(-200)})`)
    return undefined
  }
  return path
}

export const natsBench = async (harness: Harness, ctx: StepContext): Promise<Figures> => {
  const cli = natsCli(ctx)
  if (cli === undefined) return {}
  const msgs = ctx.quick ? 20_000 : 100_000
  const csv = join(tmpdir(), `holdover-nats-bench-${process.pid}.csv`)
  const run = spawnSync(
    cli,
    [
      "bench",
      "js",
      "pub",
      "async",
      "natsbench.pub",
      "--server",
      harness.nats.url,
      "--stream",
      "NATSBENCH",
      "--create",
      "--storage",
      "file",
      "--msgs",
      String(msgs),
      "--size",
      String(payloadBytes),
      "--clients",
      "1",
      "--no-progress",
      "--no-context",
      "--csv",
      csv,
    ],
    { encoding: "utf8", timeout: 120_000 },
  )
  try {
    if (run.status !== 0) throw new Error(`nats bench failed: ${run.stderr.trim().slice(-300)}`)
    // #RunID,ClientID,MsgCount,MsgBytes,MsgsPerSec,…,P50LatencyMicroSecs,P90…,P99…
    const row = readFileSync(csv, "utf8").trim().split("\n")[1]?.split(",") ?? []
    const rate = Math.round(Number(row[4]))
    ctx.log(
      `nats bench js pub async (natscli v${natsCliVersion}, Go client, 1 client, batch 500): ${rate} msg/s`,
    )
    const raw = await RawJetStream.connect(harness.nats.url, "BENCHNBRAW")
    const node = (
      await raw.publishRate({ count: msgs / 2, window: 256, recipients: 100, deadline: Date.now() + 60_000 })
    ).rate
    await raw.close()
    return {
      nats_bench_js_pub: {
        value: rate,
        unit: "msg/s",
        node_raw_publish: node,
        node_vs_nats_bench: Math.round((node / rate) * 1000) / 1000,
        natscli: natsCliVersion,
        msgs,
        payload_bytes: payloadBytes,
      },
    }
  } finally {
    rmSync(csv, { force: true })
    spawnSync(cli, ["stream", "rm", "-f", "NATSBENCH", "--server", harness.nats.url, "--no-context"], {
      stdio: "ignore",
    })
  }
}
