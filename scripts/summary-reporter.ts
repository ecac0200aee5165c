// Prints one plain closing line, "Tests: N passed, N failed, N skipped", after the default
// reporter's summary, so that CI logs state the totals in a runner-independent form.
import type { Reporter, TestModule } from "vitest/node"

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0
    let failed = unhandledErrors.length
    let skipped = 0
    for (const module of testModules) {
      // A file that failed outside its tests (an import, a beforeAll) counts as one failure,
      // even when its tests then show as skipped.
      const tests = [...module.children.allTests()]
      if (module.state() === "failed" && !tests.some((test) => test.result().state === "failed")) failed++
      for (const test of tests) {
        const state = test.result().state
        if (state === "passed") passed++
        else if (state === "failed") failed++
        else skipped++
      }
    }
    console.log(`\nTests: ${passed} passed, ${failed} failed, ${skipped} skipped`)
  }
}
