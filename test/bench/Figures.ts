// The shape of a benchmark run's results (DESIGN.md "Benchmark results file"): named figures,
// each a flat record of numbers (and a unit), plus what each step reports while it runs.
export type Figure = Readonly<Record<string, number | string>>

export type Figures = Record<string, Figure>

export interface StepContext {
  readonly quick: boolean
  /** Prints one progress line. */
  readonly log: (line: string) => void
  /** Records what was scaled down (or skipped) in this run, for the report. */
  readonly note: (line: string) => void
}
