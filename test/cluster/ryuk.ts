// Imported before testcontainers: the harness removes what it starts itself (afterAll and a
// process exit hook), so testcontainers' reaper container (an image we could not pull) stays off.
process.env["TESTCONTAINERS_RYUK_DISABLED"] = "true"

export {}
