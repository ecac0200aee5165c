// A gateway's V8 seen from outside, through the inspector protocol (the process is started with
// `--inspect=127.0.0.1:<port>`): force a full garbage collection, read the heap in use, write a
// heap snapshot. The soak step reads memory after a collection so that growth means retained
// objects, not garbage not collected yet; snapshots are for finding what is retained.
import { createWriteStream } from "node:fs"
import WebSocket from "ws"

interface Reply {
  readonly id?: number
  readonly method?: string
  readonly params?: { readonly chunk?: string; readonly scriptId?: string; readonly url?: string }
  readonly result?: Record<string, unknown>
  readonly error?: { readonly message: string }
}

export class Inspector {
  private readonly ws: WebSocket
  private next = 1
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>()
  private onEvent: ((reply: Reply) => void) | undefined

  private constructor(ws: WebSocket) {
    this.ws = ws
    ws.on("message", (data) => {
      const reply = JSON.parse(data.toString()) as Reply
      if (reply.id === undefined) return this.onEvent?.(reply)
      const waiter = this.pending.get(reply.id)
      this.pending.delete(reply.id)
      if (reply.error) waiter?.reject(new Error(reply.error.message))
      else waiter?.resolve(reply)
    })
    ws.on("close", () => {
      for (const waiter of this.pending.values()) waiter.reject(new Error("the inspector connection closed"))
      this.pending.clear()
    })
  }

  /** Connects to the inspector listening on 127.0.0.1:`port` (retried for up to 10 s while the process starts). */
  static async connect(port: number): Promise<Inspector> {
    const deadline = Date.now() + 10_000
    for (;;) {
      try {
        const targets = (await fetch(`http://127.0.0.1:${port}/json/list`, {
          signal: AbortSignal.timeout(2_000),
        }).then((r) => r.json())) as Array<{ webSocketDebuggerUrl: string }>
        const url = targets[0]?.webSocketDebuggerUrl
        if (!url) throw new Error("no inspector target")
        const ws = new WebSocket(url, { maxPayload: 1 << 30 })
        await new Promise<void>((resolve, reject) => {
          ws.once("open", resolve)
          ws.once("error", reject)
        })
        return new Inspector(ws)
      } catch (error) {
        if (Date.now() > deadline) throw error
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    }
  }

  private call(method: string, params: Record<string, unknown> = {}, timeoutMs = 60_000): Promise<Reply> {
    const id = this.next++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new Error(`${method}: no answer in ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(id, {
        resolve: (reply) => {
          clearTimeout(timer)
          resolve(reply)
        },
        reject: (error) => {
          clearTimeout(timer)
          reject(error)
        },
      })
      this.ws.send(JSON.stringify({ id, method, params }))
    })
  }

  /** A full, compacting collection; then the bytes the heap still holds. */
  async heapAfterGc(): Promise<number> {
    await this.call("HeapProfiler.collectGarbage")
    const usage = await this.call("Runtime.getHeapUsage")
    return Number(usage.result?.["usedSize"] ?? 0)
  }

  /** Writes a heap snapshot (loadable in Chrome DevTools' Memory tab) to `path`. */
  async snapshot(path: string): Promise<void> {
    const file = createWriteStream(path)
    this.onEvent = (event) => {
      if (event.method === "HeapProfiler.addHeapSnapshotChunk" && event.params?.chunk)
        file.write(event.params.chunk)
    }
    try {
      await this.call("HeapProfiler.takeHeapSnapshot", { reportProgress: false }, 300_000)
    } finally {
      this.onEvent = undefined
      await new Promise<void>((resolve) => file.end(resolve))
    }
  }

  /** The URL of every script the process has loaded, by script id (heap snapshots name closures' scripts by id). */
  async scripts(): Promise<Map<string, string>> {
    const urls = new Map<string, string>()
    this.onEvent = (event) => {
      if (event.method === "Debugger.scriptParsed" && event.params?.scriptId)
        urls.set(event.params.scriptId, event.params.url ?? "")
    }
    try {
      await this.call("Debugger.enable")
      await this.call("Debugger.disable")
    } finally {
      this.onEvent = undefined
    }
    return urls
  }

  close(): void {
    this.ws.close()
  }
}
