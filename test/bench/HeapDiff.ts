// What grew between two V8 heap snapshots, by constructor: `node test/bench/HeapDiff.ts a.heapsnapshot
// b.heapsnapshot [rows] [per]` prints the kinds of objects whose count or shallow size changed the most
// (rows, default 30); with `per` (e.g. the number of sessions opened in between) it also prints
// bytes and objects per unit. Snapshots come from the soak step (HOLDOVER_BENCH_HEAP_SNAPSHOTS) or
// Chrome DevTools. Reads the snapshot's own field layout (snapshot.meta), so it follows V8 changes.
// Closures are told apart by where they were written (file:line) when the snapshot has locations;
// a `scripts.json` beside the snapshot (script id → URL, written by the idle step) names the files.
import { existsSync, readFileSync } from "node:fs"
import { basename, dirname, join } from "node:path"

interface Snapshot {
  readonly snapshot: {
    readonly meta: { readonly node_fields: Array<string>; readonly node_types: [Array<string>] }
  }
  readonly nodes: Array<number>
  readonly strings: Array<string>
  /** Per closure: node index (into nodes), script id, line, column. */
  readonly locations?: Array<number>
}

/** Count and shallow bytes per "type:name" (e.g. "object:Socket", "closure:onClose"). */
export const tally = (path: string): Map<string, { count: number; bytes: number }> => {
  const heap = JSON.parse(readFileSync(path, "utf8")) as Snapshot
  const fields = heap.snapshot.meta.node_fields
  const types = heap.snapshot.meta.node_types[0]
  const width = fields.length
  const typeAt = fields.indexOf("type")
  const nameAt = fields.indexOf("name")
  const sizeAt = fields.indexOf("self_size")
  const scriptsFile = join(dirname(path), "scripts.json")
  const scripts: Record<string, string> = existsSync(scriptsFile)
    ? (JSON.parse(readFileSync(scriptsFile, "utf8")) as Record<string, string>)
    : {}
  const where = new Map<number, string>()
  const locations = heap.locations ?? []
  for (let i = 0; i + 3 < locations.length; i += 4) {
    const script = String(locations[i + 1])
    const file = scripts[script] ? basename(scripts[script]) : `script ${script}`
    where.set(locations[i] ?? -1, `@${file}:${(locations[i + 2] ?? 0) + 1}`)
  }
  const out = new Map<string, { count: number; bytes: number }>()
  for (let i = 0; i < heap.nodes.length; i += width) {
    const type = types[heap.nodes[i + typeAt] ?? 0] ?? "?"
    const rawName = heap.strings[heap.nodes[i + nameAt] ?? 0] ?? "?"
    // Strings and numbers are named by their value: group them by type only.
    const name =
      type === "string" || type === "number" || type === "concatenated string" || type === "sliced string"
        ? ""
        : rawName.slice(0, 60)
    const key = `${type}:${name}${type === "closure" ? (where.get(i) ?? "") : ""}`
    const entry = out.get(key) ?? { count: 0, bytes: 0 }
    entry.count++
    entry.bytes += heap.nodes[i + sizeAt] ?? 0
    out.set(key, entry)
  }
  return out
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [a, b, rowsArg, perArg] = process.argv.slice(2)
  if (!a || !b) {
    console.error("usage: node test/bench/HeapDiff.ts before.heapsnapshot after.heapsnapshot [rows] [per]")
    process.exit(2)
  }
  const rows = Number(rowsArg ?? 30)
  const per = Number(perArg ?? 0)
  const before = tally(a)
  const after = tally(b)
  const keys = new Set([...before.keys(), ...after.keys()])
  const deltas = [...keys].map((key) => {
    const x = before.get(key) ?? { count: 0, bytes: 0 }
    const y = after.get(key) ?? { count: 0, bytes: 0 }
    return { key, count: y.count - x.count, bytes: y.bytes - x.bytes }
  })
  deltas.sort((p, q) => Math.abs(q.bytes) - Math.abs(p.bytes))
  const total = deltas.reduce((s, d) => s + d.bytes, 0)
  console.log(
    `shallow bytes ${total >= 0 ? "+" : ""}${total}${per > 0 ? ` (${(total / per).toFixed(0)} per unit)` : ""}`,
  )
  for (const d of deltas.slice(0, rows))
    console.log(
      `${String(d.bytes).padStart(12)} B ${String(d.count).padStart(9)} objs` +
        (per > 0
          ? `  ${(d.bytes / per).toFixed(0).padStart(6)} B/u ${(d.count / per).toFixed(2).padStart(7)}/u`
          : "") +
        `  ${d.key}`,
    )
}
