// The shared Store contract (test/support/store-conformance.ts) on the SQLite store, each case on
// a fresh file: the same cases test/e2e/kube-store.test.ts runs on the Kubernetes store.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { SqliteStore } from "../../control-plane/src/store/index.js";
import { storeConformance } from "../support/store-conformance.js";

const dir = mkdtempSync(join(tmpdir(), "graylane-conformance-"));
let n = 0;
let file = join(dir, "0.db");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

storeConformance("SqliteStore", {
  reset: async () => { file = join(dir, `${++n}.db`); },
  open: async ({ now }) => new SqliteStore(file, { now }),
});
