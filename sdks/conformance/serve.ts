// Starts the conformance server by itself, for running an SDK's conformance tests by hand:
//   npx node --conditions=@holdover/source sdks/conformance/serve.ts
// prints HOLDOVER_CONFORMANCE_URL=ws://127.0.0.1:PORT and serves until Ctrl-C.
import { startConformanceServer } from "./server.ts"

const server = await startConformanceServer()
console.log(`HOLDOVER_CONFORMANCE_URL=${server.url}`)
const stop = () => void server.close().then(() => process.exit(0))
process.once("SIGINT", stop)
process.once("SIGTERM", stop)
