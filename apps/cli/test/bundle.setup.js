// vitest globalSetup of the CLI's tests: builds the command's bundle (bin/bundle.js) once, before
// any test runs it. Otherwise the first `holdover` call of a run on a fresh install builds it and
// says so on stderr — in whichever test file happened to be first, which asserts an empty stderr.
import { ensureBundle } from "../bin/bundle.js"

export default async function setup() {
  await ensureBundle()
}
