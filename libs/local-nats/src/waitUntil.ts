// The deadline helper of every test suite: re-check a condition until it holds, or fail with
// what was being waited for. Never sleep-then-assert; wait for the state, bounded in time.
export const waitUntil = async (
  description: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  intervalMs = 20,
): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${description}`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}
