// Polls a condition until it holds or the deadline passes — tests await a state, never sleep.
export const waitUntil = async (
  description: string,
  condition: () => boolean,
  timeoutMs = 5_000,
): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${description}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** Resolves with the first value `register` passes to its callback. */
export const nextEvent = <A>(register: (listener: (value: A) => void) => () => void): Promise<A> =>
  new Promise((resolve) => {
    const off = register((value) => {
      off()
      resolve(value)
    })
  })
