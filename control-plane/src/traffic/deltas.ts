// The delta algorithm of Traffic.Report ingestion, pure: a report holds everything one filter
// instance counted since it started; the delta of a counter key is its current value minus the
// last one stored for that instance (a key not seen before counts from 0). Hence, with the
// sequence check (sequenceVerdict):
//   - lost report:       the next one's cumulative values cover it;
//   - repeated report:   sequence == last → ignored ("duplicate");
//   - reordered report:  sequence <  last → ignored ("stale": the newer one already covered it);
//   - filter restart:    a new instance_id, whose counters start from 0;
//   - control-plane restart: the last values are stored, so the next report's delta is exact.
// A counter lower than its last value within one instance (which a filter does not do) is taken as a
// counter reset, Prometheus-style: the delta is the current value. Latency buckets are diffed on
// their own: with other bounds than last time, or a bucket that went down, they count afresh.

/**
 * What one counter counts: a (group, lane, route, service, direction, decision source, status
 * class, gRPC status). grpcStatus is -1 for every response that is not gRPC's.
 */
export interface CounterKey {
  group: string;
  lane: string;
  route: string;
  service: string;
  direction: number;
  source: number;
  statusClass: number;
  grpcStatus: number;
}

/** grpcStatus of a counter that is not a gRPC response's. */
export const NOT_GRPC = -1;

/** Cumulative values (of a report) or differences of them (a delta). */
export interface Counts {
  requests: number;
  sumUs: number;
  /** Exactly bounds.length + 1 latency bucket counts. */
  buckets: number[];
}

/** The values last stored for an instance's counter key. */
export interface LastCounts extends Counts {
  /** boundsKey() of the latency bounds they were counted with. */
  boundsKey: string;
}

export interface Delta extends CounterKey, Counts {
  /** counterKey() of its key, when the caller has it (saves recomputing it). */
  storageKey?: string;
}

/**
 * The storage key of a counter key. The gRPC status is appended only for gRPC responses, so every
 * other counter keeps the key stored before gRPC statuses were counted (traffic_last rows written
 * by an older control plane still take their deltas).
 */
export const counterKey = (k: CounterKey): string =>
  JSON.stringify(k.grpcStatus === NOT_GRPC
    ? [k.group, k.lane, k.route, k.service, k.direction, k.source, k.statusClass]
    : [k.group, k.lane, k.route, k.service, k.direction, k.source, k.statusClass, k.grpcStatus]);

/** The storage key of a list of latency bounds. */
export const boundsKey = (bounds: readonly number[]): string => JSON.stringify(bounds);

/** What a report's sequence is, against the last one accepted from its instance (none: undefined). */
export function sequenceVerdict(sequence: number, last: number | undefined): "new" | "duplicate" | "stale" {
  if (last === undefined || sequence > last) return "new";
  return sequence === last ? "duplicate" : "stale";
}

/** current − last, or current after a reset or for a key without last values. */
export function counterDelta(cur: Counts, curBoundsKey: string, last: LastCounts | undefined): Counts {
  if (!last) return cur;
  const reset = cur.requests < last.requests || cur.sumUs < last.sumUs;
  if (reset) return cur;
  const sameBuckets =
    last.boundsKey === curBoundsKey && last.buckets.length === cur.buckets.length && cur.buckets.every((n, i) => n >= last.buckets[i]!);
  return {
    requests: cur.requests - last.requests,
    sumUs: cur.sumUs - last.sumUs,
    buckets: sameBuckets ? cur.buckets.map((n, i) => n - last.buckets[i]!) : cur.buckets,
  };
}

export const isZero = (d: Counts): boolean => d.requests === 0 && d.sumUs === 0 && d.buckets.every((n) => n === 0);

/** Exactly n buckets: missing ones are 0, extra ones go to the last (unbounded) bucket. */
export function normalize(b: readonly number[], n: number): number[] {
  const out = new Array<number>(n).fill(0);
  b.forEach((x, i) => (out[Math.min(i, n - 1)]! += x));
  return out;
}

/** Element-wise sum; the longer array's length. */
export function addArrays(a: readonly number[], b: readonly number[]): number[] {
  const out = a.length >= b.length ? [...a] : [...b];
  const other = a.length >= b.length ? b : a;
  other.forEach((x, i) => (out[i]! += x));
  return out;
}

/** Adds b into `into` element-wise. */
export function addInto(into: number[], b: readonly number[]): void {
  for (let i = 0; i < b.length; i++) into[i] = (into[i] ?? 0) + b[i]!;
}
