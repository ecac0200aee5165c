// One lint config for the workspace. Module boundaries (what may import what) are enforced
// here with no-restricted-imports, mirroring the Nx tags in each package.json:
//   libs never import apps; only libs/queue (and tests) talk to NATS; protocol and client are
//   browser-safe and import nothing Node-only.
import js from "@eslint/js"
import tseslint from "typescript-eslint"

const apps = {
  group: ["@holdover/gateway", "@holdover/gateway/*", "@holdover/cli", "@holdover/cli/*"],
  message: "libs never import apps",
}
const nats = { group: ["@nats-io/*"], message: "only libs/queue talks to NATS" }
const nodeOnly = {
  group: [
    "node:*",
    "ws",
    "@holdover/queue",
    "@holdover/local-nats",
    "@effect/platform-node",
    "@effect/platform-node/*",
  ],
  message: "browser-safe code imports nothing Node-only",
}

export default tseslint.config(
  {
    ignores: [
      "**/dist/**",
      "**/out-tsc/**",
      "**/node_modules/**",
      "**/.nx/**",
      "**/coverage/**",
      "test/bench/results/**",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
      "require-yield": "off",
    },
  },
  {
    files: ["libs/**/src/**/*.ts"],
    rules: { "no-restricted-imports": ["error", { patterns: [apps, nats] }] },
  },
  { files: ["libs/queue/src/**/*.ts"], rules: { "no-restricted-imports": ["error", { patterns: [apps] }] } },
  {
    files: ["libs/protocol/src/**/*.ts", "libs/client/src/**/*.ts"],
    rules: { "no-restricted-imports": ["error", { patterns: [apps, nats, nodeOnly] }] },
  },
  { files: ["apps/**/src/**/*.ts"], rules: { "no-restricted-imports": ["error", { patterns: [nats] }] } },
  {
    files: ["scripts/**/*.ts", "**/*.js", "**/*.mjs"],
    languageOptions: { globals: { process: "readonly", console: "readonly", URL: "readonly" } },
  },
)
