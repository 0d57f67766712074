// Weights → the configured split of a group's traffic, written once: the sticky-bucket ranges the
// filter runs (compile), and the configured share per lane that the traffic summary, the release
// view and the dashboard (through GET /v1/lanegroups) show. A weight is a percentage with up to two
// decimals, so it is counted in hundredths of a percent, one sticky bucket each (BUCKETS in all),
// and every sum stays exact. Weighted lanes own consecutive bucket ranges in lane order from 0; the
// base lane gets what they leave. Pure: it imports only murmur3.ts (which imports nothing), so any
// layer may use it without an import cycle.
import { BUCKETS } from "./murmur3.js";

/** What the split reads of a lane group. */
export interface WeightedLanes {
  baseLane: string;
  lanes: ReadonlyArray<{ name: string; weight: number }>;
}

export interface LaneSplit {
  name: string;
  /** The lane's sticky buckets: [bucketStart, bucketEnd). */
  bucketStart: number;
  bucketEnd: number;
  /** Configured share of the group's traffic, 0..1. */
  share: number;
}

export interface ConfiguredSplit {
  /** The weighted lanes in order (weight 0: an empty range). */
  lanes: LaneSplit[];
  /** The base lane's share: what the weights leave. */
  base: { name: string; share: number };
}

/** A weight (percent, two decimals) in sticky buckets. */
export function weightBuckets(weight: number): number {
  return Math.round(weight * 100);
}

/** A weight (percent) as a share, 0..1. */
export function weightShare(weight: number): number {
  return weightBuckets(weight) / BUCKETS;
}

/** The group's configured split: each lane's bucket range and share, and the base lane's share. */
export function configuredSplit(g: WeightedLanes): ConfiguredSplit {
  let bucket = 0;
  const lanes = g.lanes.map((l) => {
    const units = weightBuckets(l.weight);
    const split = { name: l.name, bucketStart: bucket, bucketEnd: bucket + units, share: units / BUCKETS };
    bucket += units;
    return split;
  });
  return { lanes, base: { name: g.baseLane, share: Math.max(0, BUCKETS - bucket) / BUCKETS } };
}

/** Configured share (0..1) per lane name, the base lane first (no prototype: any lane name is a safe key). */
export function configuredShares(g: WeightedLanes): Record<string, number> {
  const split = configuredSplit(g);
  const shares: Record<string, number> = Object.create(null);
  shares[split.base.name] = split.base.share;
  for (const l of split.lanes) shares[l.name] = l.share;
  return shares;
}
