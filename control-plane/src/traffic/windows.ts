// The recent past in memory, per second, for windowed summaries (pure: no I/O). Only what summaries
// read is kept: inbound and edge deltas, without route and decision source. A window reaching
// further back than memory (a restart, or beyond the retention) is completed from the minute
// rollups, at minute granularity for that older part: windowPlan() says where the two meet.
import { Direction } from "../generated/graylane/v1/traffic_pb.js";
import { addInto, boundsKey, type Delta } from "./deltas.js";

export const SECOND = 1000;
export const MINUTE = 60_000;

/** Requests and latency buckets of one (group, service, lane, direction, status class, gRPC status, bounds). */
export interface Agg {
  group: string;
  service: string;
  lane: string;
  direction: number;
  statusClass: number;
  /** -1: not a gRPC response. */
  grpcStatus: number;
  boundsKey: string;
  requests: number;
  buckets: number[];
}

/** Per bounds and counter storage key: the aggregate it adds to (memoized: the same few keys every second). */
const aggKeys = new Map<string, Map<string, string>>();

function computeAggKey(d: Delta, bk: string): string {
  return JSON.stringify([d.group, d.service, d.lane, d.direction, d.statusClass, d.grpcStatus, bk]);
}

function aggKey(d: Delta, bk: string): string {
  if (d.storageKey === undefined) return computeAggKey(d, bk);
  let byKey = aggKeys.get(bk);
  if (!byKey) {
    if (aggKeys.size >= 100) aggKeys.clear();
    aggKeys.set(bk, (byKey = new Map()));
  }
  let k = byKey.get(d.storageKey);
  if (k === undefined) {
    if (byKey.size >= 100_000) byKey.clear();
    byKey.set(d.storageKey, (k = computeAggKey(d, bk)));
  }
  return k;
}

export class SecondWindows {
  /** second (epoch s) → agg key → aggregate */
  private readonly seconds = new Map<number, Map<string, Agg>>();
  /** The newest second added to (older ones are dropped when a new second starts). */
  private latest = -Infinity;

  constructor(private readonly retentionMs: number) {}

  /** Adds a report's deltas at time `now` (ms) and forgets seconds older than the retention. */
  add(now: number, deltas: readonly Delta[], bounds: readonly number[]): void {
    const sec = Math.floor(now / SECOND);
    let m = this.seconds.get(sec);
    if (!m) this.seconds.set(sec, (m = new Map()));
    const bk = boundsKey(bounds);
    for (const d of deltas) {
      if (d.direction !== Direction.INBOUND && d.direction !== Direction.EDGE) continue; // summaries read only these
      const k = aggKey(d, bk);
      let a = m.get(k);
      if (!a) {
        m.set(
          k,
          (a = { group: d.group, service: d.service, lane: d.lane, direction: d.direction, statusClass: d.statusClass, grpcStatus: d.grpcStatus, boundsKey: bk, requests: 0, buckets: d.buckets.map(() => 0) }),
        );
      }
      a.requests += d.requests;
      addInto(a.buckets, d.buckets);
    }
    if (sec > this.latest) {
      this.latest = sec;
      const oldest = Math.floor((now - this.retentionMs) / SECOND);
      for (const s of this.seconds.keys()) if (s < oldest) this.seconds.delete(s);
    }
  }

  /** The aggregates of `group` in the seconds from `fromMs` on. */
  *since(group: string, fromMs: number): Iterable<Agg> {
    const first = Math.floor(fromMs / SECOND);
    for (const [sec, m] of this.seconds) {
      if (sec < first) continue;
      for (const a of m.values()) if (a.group === group) yield a;
    }
  }
}

/**
 * Where a window [now − windowMs, now] is read from: memory is complete from `boundary` on (the first
 * minute edge after both the process start and the retention limit); the minutes [fromMinute,
 * toMinute) before it come from the rollups (none when fromMinute ≥ toMinute).
 */
export function windowPlan(now: number, windowMs: number, memoryStartedAt: number, retentionMs: number): { fromMinute: number; toMinute: number; memoryFrom: number } {
  const from = now - Math.max(0, windowMs);
  const boundary = Math.ceil(Math.max(memoryStartedAt, now - retentionMs) / MINUTE) * MINUTE;
  return from < boundary
    ? { fromMinute: Math.floor(from / MINUTE), toMinute: boundary / MINUTE, memoryFrom: boundary }
    : { fromMinute: 0, toMinute: 0, memoryFrom: from };
}
