import { defineConfig } from "vitest/config"

// Shared by every project's vitest.config.ts. The "@holdover/source" condition makes
// workspace packages resolve to their TypeScript sources, so tests need no build step.
export default defineConfig({
  resolve: { conditions: ["@holdover/source"] },
  ssr: { resolve: { conditions: ["@holdover/source"], externalConditions: ["@holdover/source"] } },
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: [new URL("./vitest.global-setup.ts", import.meta.url).pathname],
    passWithNoTests: true,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
})
