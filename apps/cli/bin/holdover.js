#!/usr/bin/env node
// Launcher of the `holdover` command. Node 22.18+ runs the TypeScript entry directly (type
// stripping); a resolve hook adds the "@holdover/source" condition so workspace packages load
// from their sources too. On an older Node it runs the built dist/main.js if there is one.
import { existsSync } from "node:fs"
import * as nodeModule from "node:module"

const source = new URL("../src/main.ts", import.meta.url)
const built = new URL("../dist/main.js", import.meta.url)

if (process.features.typescript && typeof nodeModule.registerHooks === "function") {
  nodeModule.registerHooks({
    resolve: (specifier, context, next) =>
      next(specifier, { ...context, conditions: [...context.conditions, "@holdover/source"] }),
  })
  await import(source.href)
} else if (existsSync(built)) {
  await import(built.href)
} else {
  process.stderr.write(
    `holdover: this Node (${process.version}) cannot run TypeScript; use Node 22.18 or newer ` +
      "(npx holdover uses the repository's Node 24), or run `npm run build` first.\n",
  )
  process.exit(1)
}
