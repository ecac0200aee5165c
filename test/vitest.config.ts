import { defineConfig, mergeConfig } from "vitest/config"
import shared from "../vitest.shared.ts"

export default mergeConfig(
  shared,
  defineConfig({
    test: {
      name: "@holdover/e2e",
      include: ["**/*.test.ts"],
      exclude: ["node_modules/**"],
      passWithNoTests: true,
    },
  }),
)
