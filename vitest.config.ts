// The nats-server locators only (not the package index: it pulls in workspace packages that a fresh
// clone has not built yet, and the config must load before anything is built).
import { locateFloorNatsServer } from "./libs/local-nats/src/NatsServers.ts"
import { defineConfig, type TestProjectConfiguration } from "vitest/config"

// `npm test` runs every project's tests in one vitest process (one summary) on the pinned current
// nats-server (deploy/nats-server.version), and the queue and gateway suites a second time on the
// compatibility floor, nats-server 2.9 (Debian 12's package) — the "@nats-2.9" projects. Those run
// when a 2.9 server is found (HOLDOVER_NATS_FLOOR_BIN, PATH, /usr/sbin) and always under CI=true,
// where a missing one fails the run. `nx run-many -t test` runs each project on the current server.
const compatibility = ["libs/queue", "apps/gateway"]
const floor = locateFloorNatsServer()
const runFloor = floor !== undefined || process.env["CI"] === "true"
if (!runFloor)
  console.error(
    "[nats] no nats-server 2.9 found: the compatibility suites (queue, gateway on 2.9) are skipped; apt-get install nats-server to run them",
  )

const floorProjects: Array<TestProjectConfiguration> = compatibility.map((dir) => ({
  extends: `./${dir}/vitest.config.ts`,
  root: `./${dir}`,
  test: { name: `@holdover/${dir.split("/")[1]}@nats-2.9` },
}))

export default defineConfig({
  test: {
    projects: [
      "libs/*/vitest.config.ts",
      "apps/*/vitest.config.ts",
      "test/vitest.config.ts",
      "sdks/vitest.config.ts",
      ...(runFloor ? floorProjects : []),
    ],
    reporters: ["default", "./scripts/summary-reporter.ts"],
  },
})
