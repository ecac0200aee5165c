export { locateNatsServer, startNats } from "./LocalNats.ts"
export type { NatsLauncher, RunningNats, StartOptions } from "./LocalNats.ts"
