// The filter's pure lane functions called directly (a test-only wasm built from the same sources),
// for the rows of the shared hash vectors no request can express (raw seeds, empty keys). Each
// vector row is checked here once, against both the filter's and the control plane's murmur3.
import { beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
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
  // Built by make from test/assembly/lane-probe.ts.
  const { instance } = await WebAssembly.instantiate(readFileSync("filter/build/test/lane-probe.wasm"), { env: { abort: () => { throw new Error("abort"); } } });
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

  it("has vectors to check", () => {
    expect(vectors.murmur3.length).toBeGreaterThan(0);
    expect(vectors.buckets.length).toBeGreaterThan(0);
  });

  it("defaults to seed 0 and returns unsigned 32-bit values", () => {
    expect(murmur3_32(utf8("hello"))).toBe(murmur3_32(utf8("hello"), 0));
    for (let n = 0; n < 64; n++) {
      const bytes = new Uint8Array(n).fill(0xff);
      const h = murmur3_32(bytes, 0xffffffff);
      expect(Number.isInteger(h) && h >= 0 && h <= 0xffffffff).toBe(true);
      expect(hash(bytes, 0xffffffff)).toBe(h);
    }
  });
});
