#!/usr/bin/env node
// Launcher of the `holdover` command: runs the bundle (bin/bundle.js), building it first when it
// is missing or older than the sources.
import { bundle, ensureBundle } from "./bundle.js"

await ensureBundle()
await import(new URL(`file://${bundle}`).href)
