// The traffic counter key (lane/counters.ts counterKey) through the test entry: the decision source
// INSTANCE (8) does not fit the key's 3 source bits, so its fourth bit sits at key bit 56. The keys
// of the sources 0-7 must be exactly those of the filter before the instance step (issue 14, item 5:
// a running fleet's cumulative counters are not counted twice after an upgrade).
import { beforeAll, describe, expect, it } from "vitest";
import { LaneProbe } from "../support/lane-probe.js";

let probe: LaneProbe;
beforeAll(async () => { probe = await LaneProbe.load(); });

/** The key as the filter computed it before DecisionSource INSTANCE existed. */
const before = (g: number, l: number, r: number, s: number, d: number, src: number, st: number) =>
  (BigInt(g) << 44n) | (BigInt(l) << 32n) | (BigInt(r) << 20n) | (BigInt(s) << 8n) | (BigInt(d & 3) << 6n) | (BigInt(src & 7) << 3n) | BigInt(st & 7);

describe("traffic counter key", () => {
  it("sources 0-7: the key of the filter before the instance step; source 8: bit 56 more; the source reads back", () => {
    const x = probe.x;
    for (const [g, l, r, s] of [[1, 2, 3, 4], [4095, 4095, 4095, 4095], [7, 1, 1, 200]]) {
      for (let d = 0; d < 4; d++) {
        for (let src = 0; src <= 8; src++) {
          for (const st of [0, 2, 5]) {
            const k = BigInt.asUintN(64, x.counterKeyOf(g, l, r, s, d, src, st));
            if (src < 8) expect(k).toBe(before(g, l, r, s, d, src, st));
            else expect(k).toBe(before(g, l, r, s, d, 0, st) | (1n << 56n));
            expect(BigInt.asUintN(64, x.counterKeySource(BigInt.asIntN(64, k)))).toBe(BigInt(src));
          }
        }
      }
    }
  });
});
