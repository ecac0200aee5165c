// Keeps a welcomed session honest: a `ping` every `heartbeatMs` (the server answers `pong`), and
// a watchdog that declares the session dead when no frame at all has arrived for twice that —
// a half-open TCP connection otherwise looks alive for minutes. The watchdog is one timer re-armed
// lazily from the time of the last frame, not reset on every frame (cheap at 100 000 frames/s).
// A watchdog that fires late means this side was frozen (a busy event loop, a throttled
// background tab), so the server's answer may be sitting unread: it pings once more and judges
// after another `heartbeatMs` instead of dropping a healthy session. `stop` clears everything.

export class Heartbeat {
  #ping: ReturnType<typeof setInterval> | undefined
  #watchdog: ReturnType<typeof setTimeout> | undefined
  #lastFrameAt = 0

  /** Starts both timers; a `heartbeatMs` that is not positive disables the heartbeat. */
  start(heartbeatMs: number, ping: () => void, dead: (reason: string) => void): void {
    this.stop()
    this.#lastFrameAt = Date.now()
    if (!(heartbeatMs > 0)) return
    const deadline = 2 * heartbeatMs
    const arm = (delayMs: number) => {
      const dueAt = Date.now() + delayMs
      this.#watchdog = setTimeout(() => check(dueAt), delayMs)
    }
    const check = (dueAt: number) => {
      const now = Date.now()
      const silentMs = now - this.#lastFrameAt
      if (silentMs < deadline) return arm(deadline - silentMs)
      if (now - dueAt > heartbeatMs / 2) {
        ping()
        return arm(heartbeatMs)
      }
      this.stop()
      dead(`no frame within ${deadline} ms (2 × heartbeatMs)`)
    }
    this.#ping = setInterval(ping, heartbeatMs)
    arm(deadline)
  }

  /** A frame arrived: the session is alive. */
  touch(): void {
    this.#lastFrameAt = Date.now()
  }

  stop(): void {
    clearInterval(this.#ping)
    clearTimeout(this.#watchdog)
    this.#ping = undefined
    this.#watchdog = undefined
  }
}
