// The `holdover` command runs from one bundled ES module, dist/holdover.js: the CLI with effect,
// @effect/platform-node and the workspace's protocol inside (`ws` and Node's own modules stay
// imports). Loading it takes about 0.2 s; running the TypeScript sources (type stripping ~40
// files and effect's hundreds of modules) took 0.8–3 s per call. `ensureBundle` (re)builds it
// with Vite when it is missing or older than a source file it is made of (`npm start` does it
// ahead); concurrent builds each write their own directory and rename, so a reader never sees a
// half-written file.
import { existsSync, readdirSync, renameSync, rmSync, statSync } from "node:fs"
import { builtinModules } from "node:module"
import { fileURLToPath } from "node:url"

const cli = fileURLToPath(new URL("..", import.meta.url))
const sources = [`${cli}src`, fileURLToPath(new URL("../../../libs/protocol/src", import.meta.url))]
export const bundle = `${cli}dist/holdover.js`

const newestMtime = (dir) =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .reduce((newest, entry) => Math.max(newest, statSync(`${entry.parentPath}/${entry.name}`).mtimeMs), 0)

export const bundleIsCurrent = () =>
  existsSync(bundle) && statSync(bundle).mtimeMs > Math.max(...sources.map(newestMtime))

export const buildBundle = async () => {
  const { build } = await import("vite")
  const outDir = `${cli}dist/.build-${process.pid}`
  await build({
    configFile: false,
    logLevel: "warn",
    root: cli,
    // Workspace packages from their TypeScript sources (an SSR build takes its conditions from `ssr`).
    ssr: {
      noExternal: true,
      target: "node",
      resolve: { conditions: ["@holdover/source", "node", "import"] },
    },
    build: {
      ssr: `${cli}src/main.ts`,
      outDir,
      emptyOutDir: true,
      target: "node20",
      minify: false,
      reportCompressedSize: false,
      rolldownOptions: {
        external: [...builtinModules, /^node:/, "ws"],
        output: { entryFileNames: "holdover.js" },
      },
    },
  })
  renameSync(`${outDir}/holdover.js`, bundle)
  rmSync(outDir, { recursive: true, force: true })
}

export const ensureBundle = async () => {
  if (bundleIsCurrent()) return
  process.stderr.write("holdover: building the command (dist/holdover.js, once per source change)…\n")
  await buildBundle()
}
