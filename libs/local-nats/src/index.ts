export { locateNatsServer, startNats } from "./LocalNats.ts"
export type { NatsLauncher, RunningNats, StartOptions } from "./LocalNats.ts"
export { startGateway } from "./LocalGateway.ts"
export type { RunningGateway } from "./LocalGateway.ts"
