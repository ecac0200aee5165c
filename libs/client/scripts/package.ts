// Builds the SDK's npm package into dist/npm (what `npm pack` ships; `prepack` runs this):
// index.js, one ES module with the workspace's @holdover/protocol bundled in and `effect` left
// as a dependency, and the type declarations tsc emits for the client and for protocol, the
// latter copied beside them so the package names no unpublished workspace package.
import { execFileSync } from "node:child_process"
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"
import { build } from "vite"

const root = fileURLToPath(new URL("..", import.meta.url))
const out = `${root}dist/npm`
const protocolDist = fileURLToPath(new URL("../../protocol/dist", import.meta.url))

rmSync(out, { recursive: true, force: true })
execFileSync(
  process.execPath,
  [createRequire(import.meta.url).resolve("typescript/bin/tsc"), "-b", `${root}tsconfig.lib.json`],
  { stdio: "inherit" },
)
// Declarations only, with workspace and `.ts` specifiers rewritten: the JavaScript is the bundle.
const declarations = (from: string, to: string, protocol: string) => {
  mkdirSync(to, { recursive: true })
  for (const name of readdirSync(from).filter((file) => file.endsWith(".d.ts"))) {
    const text = readFileSync(`${from}/${name}`, "utf8")
      .replaceAll('from "@holdover/protocol"', `from "${protocol}"`)
      .replace(/from "(\.\/[^"]+)\.ts"/g, 'from "$1.js"')
      .replace(/\/\/# sourceMappingURL=.*$/m, "")
    writeFileSync(`${to}/${name}`, text)
  }
}
declarations(`${root}dist`, out, "./protocol/index.js")
declarations(protocolDist, `${out}/protocol`, "./index.js")

await build({
  configFile: false,
  logLevel: "warn",
  resolve: { conditions: ["@holdover/source"] },
  build: {
    lib: { entry: `${root}src/index.ts`, formats: ["es"], fileName: () => "index.js" },
    outDir: out,
    emptyOutDir: false,
    target: "es2022",
    minify: false,
    sourcemap: true,
    reportCompressedSize: false,
    rolldownOptions: { external: [/^effect($|\/)/] },
  },
})
