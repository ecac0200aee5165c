// What a run leaves behind: the results file (DESIGN.md "Benchmark results file": date, machine,
// figures — the stable names first, then the extra ones — plus `run`: mode, load, what was scaled),
// a markdown table, and a hand-written SVG chart (how far each figure is from its raw baseline,
// and the cost-per-message curve). Pure functions of the results, plus one writer.
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import * as prettier from "prettier"
import type { Figure, Figures } from "./Figures.ts"

export interface Results {
  readonly date: string
  readonly machine: { readonly cpus: number; readonly node: string; readonly natsServer: string }
  readonly figures: Figures
  readonly run: {
    readonly mode: "full" | "quick"
    /** The commit under test (with "+uncommitted changes" when apps/ or libs/ differed from it). */
    readonly source: string
    /** Set when the source changed during the run (gateways started later ran the newer code). */
    readonly sourceAtEnd?: string
    readonly durationS: number
    readonly loadAverageStart: ReadonlyArray<number>
    readonly loadAverageEnd: ReadonlyArray<number>
    readonly notes: ReadonlyArray<string>
    readonly steps: Readonly<Record<string, number | string>>
    /** The chart file beside the markdown report. */
    readonly chart: string
  }
}

/** The names DESIGN.md fixes, in its order. */
export const stableFigures = [
  "http_batch_publish",
  "e2e_delivery",
  "replay_1000",
  "replay_10000",
  "storm_5000",
  "idle_10000",
  "cost_per_msg_growth",
] as const

export const orderFigures = (figures: Figures): Figures => {
  const out: Figures = {}
  for (const name of stableFigures) if (figures[name]) out[name] = figures[name]
  for (const [name, figure] of Object.entries(figures)) if (!(name in out)) out[name] = figure
  return out
}

const num = (value: number | string | undefined): string =>
  typeof value === "number"
    ? value.toLocaleString("en-US", { maximumFractionDigits: 3 })
    : String(value ?? "")

const consumed = new Set([
  "value",
  "unit",
  "baseline",
  "ratio",
  "p50_ms",
  "p99_ms",
  "baseline_ms",
  "drain_s",
  "gateway_rss_kb_per_conn",
  "from_recipients",
  "to_recipients",
])

const describe = (figure: Figure): { measured: string; baseline: string; ratio: string } => {
  const unit = typeof figure["unit"] === "string" ? ` ${figure["unit"]}` : ""
  const parts: Array<string> = []
  if (figure["value"] !== undefined) parts.push(`${num(figure["value"])}${unit}`)
  if (figure["p50_ms"] !== undefined) parts.push(`p50 ${num(figure["p50_ms"])} ms`)
  if (figure["p99_ms"] !== undefined) parts.push(`p99 ${num(figure["p99_ms"])} ms`)
  if (figure["drain_s"] !== undefined) parts.push(`${num(figure["drain_s"])} s to drain`)
  if (figure["gateway_rss_kb_per_conn"] !== undefined)
    parts.push(`${num(figure["gateway_rss_kb_per_conn"])} KB gateway RSS per connection`)
  if (figure["from_recipients"] !== undefined)
    parts.push(`${num(figure["from_recipients"])} → ${num(figure["to_recipients"])} recipients`)
  const baseline =
    figure["baseline"] !== undefined
      ? `${num(figure["baseline"])}${unit}`
      : figure["baseline_ms"] !== undefined
        ? `${num(figure["baseline_ms"])} ms`
        : ""
  return {
    measured: parts.join(", "),
    baseline,
    ratio: figure["ratio"] === undefined ? "" : num(figure["ratio"]),
  }
}

export const markdownTable = (results: Results): string => {
  const lines = ["| figure | Holdover | raw baseline | ratio | more |", "| --- | --- | --- | --- | --- |"]
  for (const [name, figure] of Object.entries(results.figures)) {
    const d = describe(figure)
    const more = Object.entries(figure)
      .filter(([key]) => !consumed.has(key))
      .map(([key, value]) => `${key} ${num(value)}`)
      .join(", ")
    const stable = (stableFigures as ReadonlyArray<string>).includes(name)
    lines.push(`| ${stable ? `**${name}**` : name} | ${d.measured} | ${d.baseline} | ${d.ratio} | ${more} |`)
  }
  return lines.join("\n")
}

export const markdownReport = (results: Results): string => {
  const load = (l: ReadonlyArray<number>) => l.map((v) => v.toFixed(2)).join(", ")
  return [
    `# Holdover benchmark — ${results.run.mode} run`,
    "",
    `${results.date} · ${results.machine.cpus} CPUs · Node ${results.machine.node} · ` +
      `nats-server ${results.machine.natsServer} · source ${results.run.source}` +
      (results.run.sourceAtEnd ? ` (${results.run.sourceAtEnd} at the end)` : "") +
      ` · ${Math.round(results.run.durationS)} s · ` +
      `load average ${load(results.run.loadAverageStart)} at the start, ${load(results.run.loadAverageEnd)} at the end`,
    "",
    "Ratios: throughput / raw throughput (below 1 = slower than raw); time / raw time (above 1 = slower than raw).",
    "",
    markdownTable(results),
    "",
    ...(results.run.notes.length > 0 ? ["Notes:", "", ...results.run.notes.map((n) => `- ${n}`), ""] : []),
    `![chart](${results.run.chart})`,
    "",
  ].join("\n")
}

const escape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

/**
 * Left: each figure with a raw baseline as the fraction of raw speed Holdover reaches (log scale,
 * 1 = as fast as raw). Right: µs per message against recipients (log–log), Holdover and raw.
 */
export const svgChart = (results: Results): string => {
  const bars: Array<{ label: string; speed: number }> = []
  for (const [name, figure] of Object.entries(results.figures)) {
    const r = figure["ratio"]
    // Bytes per message (compression) are a size ratio, not a speed: left out of the bars.
    if (typeof r !== "number" || r <= 0 || name.startsWith("cost_per_msg") || figure["unit"] === "B/msg")
      continue
    const isTime = figure["baseline_ms"] !== undefined
    bars.push({ label: name, speed: isTime ? 1 / r : r })
  }
  const width = 980
  const rowH = 22
  const top = 50
  const leftW = 470
  const height = Math.max(340, top + bars.length * rowH + 60)
  const x0 = 200
  const x1 = leftW - 20
  const minLog = -3 // 0.001 × raw
  const xOf = (speed: number) =>
    x0 + ((Math.log10(Math.max(speed, 10 ** minLog)) - minLog) / -minLog) * (x1 - x0)
  const out: Array<string> = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">Holdover vs raw (${escape(results.machine.natsServer)} nats-server, ${results.machine.cpus} CPUs, ${escape(results.date.slice(0, 10))}, ${results.run.mode})</text>`,
    `<text x="${x0}" y="40">fraction of raw speed (log scale; 1 = raw)</text>`,
  ]
  for (const tick of [0.001, 0.01, 0.1, 1]) {
    const x = xOf(tick)
    out.push(`<line x1="${x}" y1="${top - 5}" x2="${x}" y2="${top + bars.length * rowH}" stroke="#ccc"/>`)
    out.push(`<text x="${x}" y="${top + bars.length * rowH + 15}" text-anchor="middle">${tick}</text>`)
  }
  bars.forEach((bar, i) => {
    const y = top + i * rowH
    out.push(`<text x="${x0 - 6}" y="${y + 14}" text-anchor="end">${escape(bar.label)}</text>`)
    out.push(
      `<rect x="${x0}" y="${y + 3}" width="${Math.max(1, xOf(bar.speed) - x0)}" height="${rowH - 6}" fill="${bar.speed >= 0.5 ? "#4a9" : bar.speed >= 0.1 ? "#e9a23b" : "#d9534f"}"/>`,
    )
    out.push(
      `<text x="${Math.min(x1 - 30, xOf(bar.speed) + 4)}" y="${y + 14}">${bar.speed.toPrecision(2)}</text>`,
    )
  })

  const points = Object.values(results.figures).filter(
    (f) => typeof f["recipients"] === "number" && typeof f["total_us"] === "number",
  )
  const px0 = leftW + 60
  const px1 = width - 20
  const py0 = top
  const py1 = height - 50
  out.push(`<text x="${px0}" y="40">µs per message (enqueue + replay) vs recipients, log–log</text>`)
  if (points.length > 1) {
    const xs = points.map((p) => Math.log10(Number(p["recipients"])))
    const ys = points
      .flatMap((p) => [Number(p["total_us"]), Number(p["raw_total_us"])])
      .map((v) => Math.log10(Math.max(v, 0.1)))
    const [xMin, xMax] = [Math.min(...xs), Math.max(...xs)]
    const [yMin, yMax] = [Math.floor(Math.min(...ys)), Math.ceil(Math.max(...ys))]
    const sx = (v: number) => px0 + ((Math.log10(v) - xMin) / Math.max(1e-9, xMax - xMin)) * (px1 - px0)
    const sy = (v: number) =>
      py1 - ((Math.log10(Math.max(v, 0.1)) - yMin) / Math.max(1e-9, yMax - yMin)) * (py1 - py0)
    out.push(
      `<rect x="${px0}" y="${py0}" width="${px1 - px0}" height="${py1 - py0}" fill="none" stroke="#999"/>`,
    )
    for (let e = yMin; e <= yMax; e++) {
      out.push(`<line x1="${px0}" y1="${sy(10 ** e)}" x2="${px1}" y2="${sy(10 ** e)}" stroke="#eee"/>`)
      out.push(
        `<text x="${px0 - 6}" y="${sy(10 ** e) + 4}" text-anchor="end">${(10 ** e).toLocaleString("en-US")}</text>`,
      )
    }
    for (const p of points) {
      const r = Number(p["recipients"])
      out.push(`<text x="${sx(r)}" y="${py1 + 16}" text-anchor="middle">${r.toLocaleString("en-US")}</text>`)
    }
    const series = (key: string, color: string, label: string, row: number) => {
      const path = points.map(
        (p, i) =>
          `${i === 0 ? "M" : "L"}${sx(Number(p["recipients"])).toFixed(1)},${sy(Number(p[key])).toFixed(1)}`,
      )
      out.push(`<path d="${path.join(" ")}" fill="none" stroke="${color}" stroke-width="2"/>`)
      for (const p of points)
        out.push(
          `<circle cx="${sx(Number(p["recipients"]))}" cy="${sy(Number(p[key]))}" r="3" fill="${color}"/>`,
        )
      out.push(`<rect x="${px0 + 10}" y="${py0 + 8 + row * 16}" width="12" height="4" fill="${color}"/>`)
      out.push(`<text x="${px0 + 28}" y="${py0 + 14 + row * 16}">${escape(label)}</text>`)
    }
    series("total_us", "#d9534f", "Holdover (libs/queue)", 0)
    series("raw_total_us", "#337ab7", "raw JetStream", 1)
    out.push(
      `<text x="${(px0 + px1) / 2}" y="${py1 + 34}" text-anchor="middle">recipients (fixed total of messages)</text>`,
    )
  }
  out.push("</svg>")
  // Coordinates to one decimal (labels never have that many digits).
  return out.join("\n").replace(/(\d+\.\d)\d{7,}/g, "$1") + "\n"
}

/** Writes `<base>.json`, `<base>.md` and `<base>.svg` (latest: a full run; quick; partial: --only). */
export const writeResults = async (
  dir: string,
  base: string,
  results: Results,
): Promise<{ json: string; md: string; svg: string }> => {
  mkdirSync(dir, { recursive: true })
  const paths = {
    json: join(dir, `${base}.json`),
    md: join(dir, `${base}.md`),
    svg: join(dir, `${base}.svg`),
  }
  // Formatted as the repository's `prettier --check` expects, so a recorded results file passes it.
  const json = JSON.stringify(results, null, 2) + "\n"
  const options = await prettier.resolveConfig(paths.json)
  writeFileSync(paths.json, await prettier.format(json, { ...options, parser: "json" }).catch(() => json))
  writeFileSync(paths.md, markdownReport(results))
  writeFileSync(paths.svg, svgChart(results))
  return paths
}
