// `npm run bench` (≈ 14 min on 2 cores) and `npm run bench -- --quick` (≈ 5 min smoke run):
// Holdover's throughput, reconnect replay, reconnect storms, idle connections, scaling,
// compression on the wire, a 2× overload run and a 10-minute memory soak, each
// next to a raw baseline measured in the same run. The steps live in test/bench/; this entry
// parses the arguments, makes sure the process may hold enough sockets, and runs them.
//   --quick          smaller steps; writes test/bench/results/quick.* instead of latest.*
//   --only=a,b       only these steps: throughput, natsbench, delivery, replay, idle, scaling,
//                    compression, overload, durability, storm, soak
//   --cpu-prof=DIR   gateways write V8 CPU profiles to DIR when they stop (open them in Chrome DevTools)
import { spawnSync } from "node:child_process"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { runBench } from "../test/bench/Bench.ts"
import { openFilesLimit } from "../test/bench/Harness.ts"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const args = process.argv.slice(2)
const quick = args.includes("--quick")
const cpuProf = args.find((a) => a.startsWith("--cpu-prof="))?.slice("--cpu-prof=".length)
const only = (args.find((a) => a.startsWith("--only="))?.slice("--only=".length) ?? "")
  .split(",")
  .map((s) => s.trim())
  .filter((s) => s.length > 0)

// The idle step holds 10 000 sockets in this process and as many in the gateway (which inherits
// this limit). Raise the soft limit through a shell when the hard limit allows it, else stop here.
const needed = (quick ? 1_000 : 10_000) + 2_048
const limit = openFilesLimit()
if (limit && limit.soft < needed && (only.length === 0 || only.includes("idle"))) {
  if (limit.hard < needed) {
    console.error(
      `bench: the idle-connections step needs about ${needed} open files per process; the limit here is ` +
        `${limit.soft} (hard ${limit.hard}). Raise it (ulimit -n 65536 as root, /etc/security/limits.conf, ` +
        `or docker run --ulimit nofile=65536:65536), or leave the step out with --only=throughput,delivery,replay,storm,scaling.`,
    )
    process.exit(2)
  }
  if (process.env["HOLDOVER_BENCH_RAISED"] !== "1") {
    const target = Math.min(limit.hard, 65_536)
    const rerun = spawnSync(
      "/bin/sh",
      [
        "-c",
        `ulimit -n ${target} && exec "$0" "$@"`,
        process.execPath,
        ...process.execArgv,
        ...process.argv.slice(1),
      ],
      { stdio: "inherit", env: { ...process.env, HOLDOVER_BENCH_RAISED: "1" } },
    )
    process.exit(rerun.status ?? 1)
  }
}

for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130))
await runBench({
  quick,
  only,
  resultsDir: join(root, "test/bench/results"),
  cpuProfDir: cpuProf === undefined ? undefined : resolve(cpuProf),
})
