export { startNats } from "./LocalNats.ts"
export type { NatsLauncher, RunningNats, StartOptions } from "./LocalNats.ts"
export {
  chooseStartServer,
  compareVersions,
  dockerWorks,
  locateFloorNatsServer,
  locateNatsServer,
  pinnedNatsPath,
  pinnedNatsVersion,
} from "./NatsServers.ts"
export type { StartServer } from "./NatsServers.ts"
export { installReleaseArchive, releaseAsset } from "./ReleaseArchive.ts"
export { startGateway } from "./LocalGateway.ts"
export type { RunningGateway } from "./LocalGateway.ts"
export { waitUntil } from "./waitUntil.ts"
export { freePort } from "./freePort.ts"
export { prng } from "./prng.ts"
export { testGateway, testSecret, testToken, unique } from "./TestStack.ts"
