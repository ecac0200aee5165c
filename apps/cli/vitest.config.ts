import { defineConfig, mergeConfig } from "vitest/config"
import shared from "../../vitest.shared.ts"

export default mergeConfig(
  shared,
  defineConfig({
    test: {
      name: "@holdover/cli",
      // After the shared setup (a nats-server launcher): the command's bundle, built once.
      globalSetup: [new URL("./test/bundle.setup.js", import.meta.url).pathname],
    },
  }),
)
