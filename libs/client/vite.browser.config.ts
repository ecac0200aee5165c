// The SDK as one ES module for browsers without a bundler: the gateway's demo page imports it
// from /demo/dist/holdover-client.js. `npm run -w libs/client build:browser` writes it (as do
// `npm start` and the browser test when it is missing or older than the sources); the output sits
// in a `dist` folder, which git, ESLint and Prettier already ignore.
import { fileURLToPath } from "node:url"
import { defaultClientConditions, defineConfig } from "vite"

export default defineConfig({
  // Workspace packages (@holdover/protocol) are bundled from their TypeScript sources.
  resolve: { conditions: ["@holdover/source", ...defaultClientConditions] },
  build: {
    lib: {
      entry: fileURLToPath(new URL("./src/index.ts", import.meta.url)),
      formats: ["es"],
      fileName: () => "holdover-client.js",
    },
    outDir: fileURLToPath(new URL("../../apps/gateway/demo/dist", import.meta.url)),
    emptyOutDir: true,
    target: "es2022",
    minify: true,
    reportCompressedSize: false,
  },
})
