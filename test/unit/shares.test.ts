// Weights → configured split (compile/shares.ts), the one rule behind the filter's bucket ranges,
// the traffic summary's configuredShare, the release view and the dashboard's percentages.
import { describe, expect, it } from "vitest";
import { BUCKETS } from "../../control-plane/src/compile/murmur3.js";
import { configuredShares, configuredSplit, weightBuckets, weightShare } from "../../control-plane/src/compile/shares.js";

const group = (...weights: number[]) => ({ baseLane: "base", lanes: weights.map((weight, i) => ({ name: `l${i}`, weight })) });

describe("configured split", () => {
  it("weighted lanes own consecutive bucket ranges in lane order from 0, and base gets the rest", () => {
    expect(configuredSplit(group(10, 0, 25.5))).toEqual({
      lanes: [
        { name: "l0", bucketStart: 0, bucketEnd: 1000, share: 0.1 },
        { name: "l1", bucketStart: 1000, bucketEnd: 1000, share: 0 },
        { name: "l2", bucketStart: 1000, bucketEnd: 3550, share: 0.255 },
      ],
      base: { name: "base", share: 0.645 },
    });
    expect(configuredShares(group(10, 0, 25.5))).toEqual({ base: 0.645, l0: 0.1, l1: 0, l2: 0.255 });
    expect(Object.keys(configuredShares(group(30)))).toEqual(["base", "l0"]);
  });

  it("is exact in hundredths of a percent: shares add up to 1 and never leave a float remainder", () => {
    // In floating point 0.07 + 0.07 + 0.07 is 0.21000000000000002, and 100 - (33.33 + 33.33 + 33.33) is 0.010000000000005116.
    expect(configuredShares(group(0.07, 0.07, 0.07)).base).toBe(0.9979);
    expect(configuredShares(group(33.33, 33.33, 33.33)).base).toBe(0.0001);
    expect(configuredSplit(group(33.33, 33.33, 33.33)).lanes.at(-1)!.bucketEnd).toBe(9999);
    for (const weights of [[12.34, 56.78], [0.01], [99.99, 0.01], [50, 50]]) {
      const s = configuredShares(group(...weights));
      expect(Math.round(Object.values(s).reduce((a, b) => a + b, 0) * BUCKETS), weights.join(",")).toBe(BUCKETS);
    }
  });

  it("100% to lanes leaves base nothing, and no group lane gives base everything", () => {
    expect(configuredShares(group(60, 40))).toEqual({ base: 0, l0: 0.6, l1: 0.4 });
    expect(configuredSplit(group(60, 40)).lanes.at(-1)!.bucketEnd).toBe(BUCKETS);
    expect(configuredShares({ baseLane: "stable", lanes: [] })).toEqual({ stable: 1 });
  });

  it("a weight is counted in sticky buckets: weightShare is the share of one lane", () => {
    expect(weightBuckets(12.34)).toBe(1234);
    expect(weightBuckets(100)).toBe(BUCKETS);
    expect(weightShare(10)).toBe(0.1);
    expect(weightShare(12.34)).toBe(0.1234);
    expect(weightShare(0)).toBe(0);
  });

  it("any lane name is a plain key (no inherited properties)", () => {
    const s = configuredShares({ baseLane: "base", lanes: [{ name: "toString", weight: 5 }] });
    expect(s.toString).toBe(0.05);
    expect(s.constructor).toBeUndefined();
  });
});
