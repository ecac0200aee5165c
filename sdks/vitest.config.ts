import { defineConfig, mergeConfig } from "vitest/config"
import shared from "../vitest.shared.ts"

// The SDK tests: the conformance cases against each SDK, and the Python and Go SDKs against a
// real gateway. The drivers spawn the other languages' test runners, which take a while.
export default mergeConfig(
  shared,
  defineConfig({
    test: {
      name: "@holdover/sdks",
      include: ["test/**/*.test.ts"],
      exclude: ["node_modules/**", "python/**", "go/**"],
      testTimeout: 300_000,
      hookTimeout: 120_000,
    },
  }),
)
