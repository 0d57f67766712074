// The sticky-bucket hash of the control plane against the shared vectors (the filter has its own test).
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { murmur3_32, stickyBucket } from "../../control-plane/src/compile/index.js";

const vectors = JSON.parse(readFileSync("test/fixtures/hash.json", "utf8")) as {
  murmur3: Array<{ input: string; seed: number; murmur3: number }>;
  buckets: Array<{ salt: string; key: string; murmur3: number; bucket: number }>;
};
const utf8 = (s: string) => new TextEncoder().encode(s);

describe("murmur3_32", () => {
  it("has vectors to check", () => {
    expect(vectors.murmur3.length).toBeGreaterThan(0);
    expect(vectors.buckets.length).toBeGreaterThan(0);
  });

  for (const row of vectors.murmur3) {
    it(`murmur3(${JSON.stringify(row.input)}, seed ${row.seed}) = ${row.murmur3}`, () => {
      expect(murmur3_32(utf8(row.input), row.seed)).toBe(row.murmur3);
    });
  }

  it("defaults to seed 0 and returns unsigned 32-bit values", () => {
    expect(murmur3_32(utf8("hello"))).toBe(murmur3_32(utf8("hello"), 0));
    for (let n = 0; n < 64; n++) {
      const h = murmur3_32(new Uint8Array(n).fill(0xff), 0xffffffff);
      expect(Number.isInteger(h) && h >= 0 && h <= 0xffffffff).toBe(true);
    }
  });
});

describe("stickyBucket", () => {
  for (const row of vectors.buckets) {
    it(`bucket(${JSON.stringify(row.salt)}, ${JSON.stringify(row.key)}) = ${row.bucket}`, () => {
      expect(murmur3_32(utf8(`${row.salt}:${row.key}`), 0)).toBe(row.murmur3);
      expect(stickyBucket(row.salt, row.key)).toBe(row.bucket);
    });
  }
});
