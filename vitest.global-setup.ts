// vitest globalSetup for projects whose tests need a real nats-server: finds once per project the
// server its tests run on and hands the launcher to the test files through
// `inject("natsLauncher")`. Each test file then starts its own server on a free loopback port
// with a fresh data directory (see libs/local-nats), removed afterwards.
//
// Projects run on the pinned current server (installed from its Go module when Go is there, see
// scripts/install-nats-server.sh); the "@nats-2.9" compatibility projects (vitest.config.ts) run
// on the floor server, nats-server 2.9.
import { locateFloorNatsServer, locateNatsServer } from "./libs/local-nats/src/NatsServers.ts"
import type { TestProject } from "vitest/node"

const announced = new Set<string>()

export default function setup(project: TestProject): void {
  const floor = project.name.endsWith("@nats-2.9")
  const launcher = floor ? locateFloorNatsServer() : locateNatsServer({ install: true })
  if (launcher === undefined)
    throw new Error(
      `${project.name}: no nats-server 2.9 found for the compatibility suites (apt-get install nats-server, or set HOLDOVER_NATS_FLOOR_BIN)`,
    )
  const described =
    launcher.kind === "binary"
      ? `nats-server ${launcher.version} (${launcher.path})`
      : `Docker ${launcher.image}`
  if (!announced.has(described)) {
    announced.add(described)
    console.error(`[nats] ${floor ? "compatibility suites" : "tests"} run on ${described}`)
  }
  project.provide("natsLauncher", launcher)
}
