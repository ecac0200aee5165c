// `GET /`: a small HTML page for whoever opens the gateway's address in a browser — what is
// here (WebSocket endpoint, demo page, OpenAPI document, metrics, health) and where the docs are.
// Static: it names paths relative to the page, so it holds behind any host name or proxy.
import type { DemoReply } from "./DemoPage.ts"

const docs = [
  ["protocol.md", "the wire contract for client and producer authors"],
  ["semantics.md", "delivery guarantees, priorities, TTL and overflow"],
  ["configuration.md", "every HOLDOVER_* variable of a gateway node"],
  ["cli.md", "the holdover command line"],
  ["deploying.md", "Docker image, Kubernetes, what to monitor"],
] as const

export const landingPage = (demo: boolean): DemoReply => ({
  status: 200,
  headers: { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" },
  body: `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Holdover gateway</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem}code{background:#f3f3f3;padding:0 .2em}</style>
</head>
<body>
<h1>Holdover gateway</h1>
<p>Keeps messages for disconnected WebSocket clients and hands them over in priority order when they reconnect.</p>
<ul>
${
  demo
    ? '<li><a href="demo">Demo page</a> — open it with <code>#token=&lt;JWT&gt;</code> (npm start prints a link with one)</li>'
    : "<li>Demo page: off (<code>HOLDOVER_DEMO=on</code> serves it at <code>/demo</code>)</li>"
}
<li>WebSocket endpoint: <code>/v1/ws</code> (subprotocol <code>holdover.v1</code>)</li>
<li><a href="v1/openapi.json">OpenAPI document</a> of the HTTP API (<code>POST /v1/messages</code>, queues, status)</li>
<li><a href="metrics">Prometheus metrics</a></li>
<li><a href="healthz">Liveness</a> and <a href="readyz">readiness</a></li>
</ul>
<p>Documentation, in the repository's <code>docs/</code> folder:</p>
<ul>
${docs.map(([file, what]) => `<li><code>docs/${file}</code> — ${what}</li>`).join("\n")}
</ul>
<p>The client SDK: <code>libs/client/README.md</code>.</p>
</body>
</html>
`,
})
