// Quantiles from latency histograms (the filter's buckets: upper bounds in ms, one more unbounded
// bucket), possibly mixing histograms with different bounds.
//
// Within a bucket [lo, hi] requests are assumed uniformly spread, so the quantile is interpolated
// linearly inside the bucket that holds it (like Prometheus' histogram_quantile; the first bucket
// starts at 0). The unbounded last bucket cannot be interpolated: its requests count as if they
// took exactly the largest finite bound, so a quantile landing there reports that bound (a lower
// bound of the true value), again as histogram_quantile does.

export interface Histogram {
  /** Upper bounds in ms, ascending. */
  bounds: readonly number[];
  /** bounds.length + 1 counts (not cumulative across buckets). */
  counts: readonly number[];
}

interface Segment {
  lo: number;
  hi: number; // === lo: a point mass (the unbounded bucket)
  count: number;
}

/** The q-quantile (0 < q ≤ 1) in ms of the union of the histograms, or null when they are empty. */
export function quantile(hists: readonly Histogram[], q: number): number | null {
  const segs: Segment[] = [];
  let total = 0;
  for (const h of hists) {
    for (let i = 0; i < h.counts.length; i++) {
      const count = h.counts[i]!;
      if (count <= 0) continue;
      const lo = i === 0 ? 0 : h.bounds[i - 1] ?? h.bounds[h.bounds.length - 1] ?? 0;
      const hi = i < h.bounds.length ? h.bounds[i]! : lo;
      segs.push({ lo, hi: Math.max(lo, hi), count });
      total += count;
    }
  }
  if (total === 0) return null;
  const target = Math.min(1, Math.max(0, q)) * total;

  const points = [...new Set(segs.flatMap((s) => [s.lo, s.hi]))].sort((a, b) => a - b);
  // cdf(x, inclusive): mass at or below x (inclusive) or strictly below x (point masses at x excluded).
  const cdf = (x: number, inclusive: boolean): number => {
    let c = 0;
    for (const s of segs) {
      if (s.hi === s.lo) {
        if (inclusive ? s.lo <= x : s.lo < x) c += s.count;
      } else if (x >= s.hi) c += s.count;
      else if (x > s.lo) c += (s.count * (x - s.lo)) / (s.hi - s.lo);
    }
    return c;
  };
  let prevX = 0;
  let prevC = cdf(0, true);
  if (prevC >= target && target > 0) return 0;
  for (const x of points) {
    if (x <= prevX) continue;
    const below = cdf(x, false); // the cdf is linear on (prevX, x)
    if (below >= target) return prevX + ((target - prevC) / (below - prevC)) * (x - prevX);
    const at = cdf(x, true);
    if (at >= target) return x;
    prevX = x;
    prevC = at;
  }
  return prevX;
}
