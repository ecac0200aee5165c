// Reads a V8 .cpuprofile (what `npm run bench -- --cpu-prof=DIR` leaves) and prints where the
// busy time went: by function (self time), by function including what it called (each sample
// counted once per function, however deep the recursion), by package or source file, and the
// callers of the functions matching a pattern. Shares are of busy time: idle samples are left out.
//
//   node test/bench/CpuProfile.ts DIR/CPU.…cpuprofile [top=25] [callers=regex]
import { readFileSync } from "node:fs"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}
interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}
interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

/** Where a source file comes from: its npm package, node's own code, or the repo's file. */
const origin = (url: string): string => {
  if (url === "") return "(native)"
  if (url.startsWith("node:")) return "node"
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg) return pkg[1] ?? url
  return url.replace(/^file:\/\//, "").replace(/^.*?\/(apps|libs)\//, "$1/")
}

const keyOf = (frame: CallFrame): string =>
  `${frame.functionName || "(anonymous)"} ${origin(frame.url)}:${frame.lineNumber + 1}`

const [file, topArg, callersArg] = process.argv.slice(2)
if (file === undefined) {
  console.error("usage: node test/bench/CpuProfile.ts FILE.cpuprofile [top] [callers=regex]")
  process.exit(2)
}
const top = Number(topArg ?? 25)
const callersOf = callersArg?.startsWith("callers=") ? new RegExp(callersArg.slice(8)) : undefined
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile

const byId = new Map(profile.nodes.map((node) => [node.id, node]))
const parent = new Map<number, number>()
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)

const self = new Map<string, number>()
const inclusive = new Map<string, number>()
const byOrigin = new Map<string, number>()
const callers = new Map<string, number>()
const add = (map: Map<string, number>, key: string, us: number) => map.set(key, (map.get(key) ?? 0) + us)
let busy = 0
let idle = 0
profile.samples.forEach((sample, i) => {
  const us = profile.timeDeltas[i] ?? 0
  const node = byId.get(sample)
  if (!node) return
  if (node.callFrame.functionName === "(idle)") {
    idle += us
    return
  }
  busy += us
  add(self, keyOf(node.callFrame), us)
  add(byOrigin, origin(node.callFrame.url), us)
  const seen = new Set<string>()
  let matched = false
  for (let id: number | undefined = sample; id !== undefined; id = parent.get(id)) {
    const frame = byId.get(id)?.callFrame
    if (!frame) break
    const key = keyOf(frame)
    if (!seen.has(key)) add(inclusive, key, us)
    seen.add(key)
    // The first caller above the innermost match (the match's self and children are attributed to it).
    if (matched) {
      add(callers, key, us)
      break
    }
    if (callersOf?.test(frame.functionName)) matched = true
  }
})

const pct = (us: number) => `${((100 * us) / busy).toFixed(1).padStart(5)} %`
const print = (title: string, map: Map<string, number>) => {
  console.log(`\n${title}`)
  for (const [key, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(`${pct(us)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${key}`)
}
console.log(
  `${file}: busy ${(busy / 1e6).toFixed(2)} s, idle ${(idle / 1e6).toFixed(2)} s (${((100 * busy) / (busy + idle)).toFixed(0)} % busy)`,
)
print("self time by function", self)
print("total time by function (with what it called)", inclusive)
print("self time by package or file", byOrigin)
if (callersOf) print(`callers of /${callersOf.source}/ (their share includes it)`, callers)
