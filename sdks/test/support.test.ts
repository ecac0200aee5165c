// The drivers' process runner: a test runner that outlives its deadline takes its children with it.
import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { runProcess, waitUntil } from "./support.ts"

/** Whether `pid` is a live process (a zombie waiting to be reaped is not). */
const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.startsWith("Z") !== true
  } catch {
    return false
  }
}

describe("runProcess", () => {
  it("kills the command's whole process group when it outlives its deadline", async () => {
    const result = await runProcess("sh", ["-c", "sleep 60 & echo $!; wait"], { timeoutMs: 1_000 })
    expect(result.code, result.output).toBe("SIGKILL")
    const grandchild = Number(result.output.trim().split("\n")[0])
    expect(grandchild, result.output).toBeGreaterThan(0)
    await waitUntil("the command's child to be killed too", () => !alive(grandchild), 5_000)
  })
})
