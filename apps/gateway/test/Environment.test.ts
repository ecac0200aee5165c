// docs/configuration.md and the variable tables the node reads from must say the same: every
// variable, its default and its meaning, in both places.
import { readFileSync } from "node:fs"
import { priorities } from "@holdover/protocol"
import { describe, expect, it } from "vitest"
import { environmentVariables, variables } from "@holdover/gateway"

const docs = readFileSync(new URL("../../../docs/configuration.md", import.meta.url), "utf8")

const unquoted = (cell: string) => cell.trim().replace(/^`(.*)`$/, "$1")

/** The docs' rows, `<PRIORITY>` rows once per priority with the defaults of the priority table. */
const documented = () => {
  const perPriority = new Map<string, Record<string, string>>()
  for (const match of docs.matchAll(/^\| (critical|high|normal|low) \| (.+?) \| (.+?) \| (.+?) \|$/gm))
    perPriority.set(match[1]!, {
      MAX_AGE: match[2]!.trim(),
      CAPACITY: match[3]!.replace(/\s/g, ""),
      OVERFLOW: match[4]!.trim(),
    })
  const rows = new Map<string, { shown: string; meaning: string }>()
  for (const match of docs.matchAll(/^\| `(HOLDOVER_[A-Z_<>]+)` \| (.+?) \| (.+) \|$/gm)) {
    const [, name, shown, meaning] = match as unknown as [string, string, string, string]
    const pattern = /^HOLDOVER_<PRIORITY>_(\w+)$/.exec(name)
    if (pattern === null) rows.set(name, { shown: unquoted(shown), meaning })
    else
      for (const priority of priorities)
        rows.set(`HOLDOVER_${priority.toUpperCase()}_${pattern[1]}`, {
          shown: perPriority.get(priority)?.[pattern[1]!] ?? `(no ${priority} row)`,
          meaning,
        })
  }
  return rows
}

describe("the environment variables", () => {
  it("are those of docs/configuration.md, with the same defaults and meanings", () => {
    const table = new Map(variables.map((v) => [v.name, { shown: v.shown, meaning: v.meaning }]))
    const docsRows = documented()
    expect([...docsRows.keys()].filter((name) => !table.has(name))).toEqual([])
    expect([...table.keys()].filter((name) => !docsRows.has(name))).toEqual([])
    expect(Object.fromEntries(docsRows)).toEqual(Object.fromEntries(table))
  })

  it("show defaults that read back as the defaults the node uses", () => {
    for (const v of variables.filter((v) => v.shown !== "—" && v.shown !== "none"))
      expect(v.parse(v.shown), v.name).toEqual(v.default)
  })

  it("are named once each, the ones the node was found reading without a list entry included", () => {
    expect(new Set(environmentVariables).size).toBe(environmentVariables.length)
    expect(environmentVariables).toEqual(
      expect.arrayContaining([
        "HOLDOVER_HOST",
        "HOLDOVER_SESSION_ADMISSION_CONCURRENCY",
        "HOLDOVER_SHED_EVENT_LOOP_DELAY",
        "HOLDOVER_JS_API_CONCURRENCY",
        "HOLDOVER_NATS_URL",
      ]),
    )
  })
})
