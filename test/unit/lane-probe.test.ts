// The filter's pure lane functions called directly (a test-only wasm built from the same sources),
// for the rows of the shared hash vectors no request can express (raw seeds, empty keys).
import { beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { murmur3_32, stickyBucket } from "../../control-plane/src/compile/index.js";

const vectors = JSON.parse(readFileSync("test/fixtures/hash.json", "utf8")) as {
  murmur3: Array<{ input: string; seed: number; murmur3: number }>;
  buckets: Array<{ salt: string; key: string; murmur3: number; bucket: number }>;
};

let probe: { memory: WebAssembly.Memory; alloc(n: number): number; hash(p: number, l: number, s: number): number };

function hash(bytes: Uint8Array, seed: number): number {
  const p = probe.alloc(bytes.length);
  new Uint8Array(probe.memory.buffer, p, bytes.length).set(bytes);
  return probe.hash(p, bytes.length, seed) >>> 0;
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "graylane-probe-"));
  const out = join(dir, "probe.wasm");
  // An empty asconfig, or asc would also compile the project's entries (the whole filter) into it.
  writeFileSync(join(dir, "asconfig.json"), "{}");
  execFileSync("node_modules/.bin/asc", ["test/assembly/lane-probe.ts", "--config", join(dir, "asconfig.json"), "-o", out, "--runtime", "stub", "-O2"], { stdio: "pipe" });
  const { instance } = await WebAssembly.instantiate(readFileSync(out), { env: { abort: () => { throw new Error("abort"); } } });
  probe = instance.exports as never;
});

describe("murmur3 in the filter and in the control plane", () => {
  const utf8 = (s: string) => new TextEncoder().encode(s);

  for (const row of vectors.murmur3) {
    it(`murmur3(${JSON.stringify(row.input)}, seed ${row.seed}) = ${row.murmur3}`, () => {
      expect(hash(utf8(row.input), row.seed)).toBe(row.murmur3);
      expect(murmur3_32(utf8(row.input), row.seed)).toBe(row.murmur3);
    });
  }

  for (const row of vectors.buckets) {
    it(`bucket(${JSON.stringify(row.salt)}, ${JSON.stringify(row.key)}) = ${row.bucket}`, () => {
      const h = hash(utf8(`${row.salt}:${row.key}`), 0);
      expect(h).toBe(row.murmur3);
      expect(h % 10000).toBe(row.bucket);
      expect(stickyBucket(row.salt, row.key)).toBe(row.bucket);
    });
  }
});
