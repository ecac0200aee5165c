// The development demo page (`/demo`): static files from apps/gateway/demo, served as they are.
// Disabled unless the gateway settings enable it; paths outside the folder are refused.
import { existsSync, readFileSync } from "node:fs"
import { extname, join, normalize } from "node:path"
import { fileURLToPath } from "node:url"
import { Context, Effect, Layer } from "effect"
import { apiError, type ApiError } from "./ApiError.ts"
import { GatewayConfig } from "./GatewayConfig.ts"

const root = fileURLToPath(new URL("../demo/", import.meta.url))
const types: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
}

export interface DemoReply {
  readonly status: number
  readonly body: string
  readonly headers: Record<string, string>
}

export class DemoPage extends Context.Service<
  DemoPage,
  {
    readonly enabled: boolean
    readonly serve: (path: string) => Effect.Effect<DemoReply, ApiError>
  }
>()("holdover/DemoPage") {
  static readonly layer = Layer.effect(
    DemoPage,
    Effect.gen(function* () {
      const config = yield* GatewayConfig
      const serve = (path: string) =>
        Effect.suspend(() => {
          if (!config.demo) return Effect.fail(apiError("NOT_FOUND", "the demo page is disabled"))
          const relative = path === "/demo" || path === "/demo/" ? "index.html" : path.slice("/demo/".length)
          const file = normalize(join(root, relative))
          if (!file.startsWith(root) || !existsSync(file))
            return Effect.fail(apiError("NOT_FOUND", `no demo file ${relative}`))
          return Effect.succeed({
            status: 200,
            body: readFileSync(file, "utf8"),
            headers: { "Content-Type": types[extname(file)] ?? "application/octet-stream" },
          })
        })
      return DemoPage.of({ enabled: config.demo, serve })
    }),
  )
}
