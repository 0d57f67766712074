import { defineConfig } from "vitest/config";

// Three tiers (DESIGN.md): unit = pure functions and the wasm host in-process (no child processes,
// sockets, Envoy, browser, etcd or Python); integration = a control plane in-process with real gRPC
// and SQLite, the CLI and tools as child processes; e2e = real Envoy, Chromium, etcd, schemathesis,
// soak. e2e suites share ports and Envoy base ids, so they run one file at a time.
export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    projects: [
      { extends: true, test: { name: "unit", include: ["test/unit/**/*.test.ts"] } },
      { extends: true, test: { name: "integration", include: ["test/integration/**/*.test.ts"] } },
      { extends: true, test: { name: "e2e", include: ["test/e2e/**/*.test.ts"], fileParallelism: false } },
    ],
  },
});
