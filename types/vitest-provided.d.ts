// What vitest.global-setup.ts provides to every test file through `inject(...)`.
import type { NatsLauncher } from "@holdover/local-nats"

declare module "vitest" {
  export interface ProvidedContext {
    natsLauncher: NatsLauncher
  }
}
