// vitest globalSetup for projects whose tests need a real nats-server: finds (or, on
// Debian/Ubuntu as root, installs) nats-server once per run and hands the launcher to the
// test files through `inject("natsLauncher")`. Each test file then starts its own server on a
// free loopback port with a fresh data directory (see libs/local-nats), removed afterwards.
import { locateNatsServer } from "./libs/local-nats/src/index.ts"
import type { TestProject } from "vitest/node"

export default function setup(project: TestProject): void {
  project.provide("natsLauncher", locateNatsServer({ install: true }))
}
