import { defineConfig } from "vitest/config"

// `npm test` runs every project's tests in one vitest process (one summary); `nx run-many -t test`
// or `nx affected -t test` run the same suites project by project.
export default defineConfig({
  test: {
    projects: ["libs/*/vitest.config.ts", "apps/*/vitest.config.ts", "test/vitest.config.ts"],
    reporters: ["default", "./scripts/summary-reporter.ts"],
  },
})
