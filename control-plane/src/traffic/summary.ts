// Summaries and totals shaped from aggregated counts (pure: the caller reads them from memory and
// the minute rollups). A summary is counted on each service's inbound side, per service and lane:
// requests, observed share of the service's requests vs the configured share, error rate (5xx, gRPC
// responses classed by their grpc-status), the gRPC statuses, p50/p99 from the latency buckets; plus
// the requests decided at the edge, per lane.
import type { TrafficRow, TrafficSummary } from "../contracts.js";
import { Direction } from "../generated/graylane/v1/traffic_pb.js";
import { NOT_GRPC, type CounterKey } from "./deltas.js";
import { quantile, type Histogram } from "./histogram.js";
import type { Agg } from "./windows.js";

/** A group's services and lanes (base first: the display order) and configured share per lane (0..1). */
export interface GroupConfig {
  services: string[];
  lanes: string[];
  shares: Record<string, number>;
}

/** One minute rollup row, as storage returns it. */
export interface RollupRow {
  service: string;
  lane: string;
  route: string;
  direction: number;
  source: number;
  statusClass: number;
  /** -1: not a gRPC response. */
  grpcStatus: number;
  /** The latency bounds as their storage key (JSON). */
  boundsKey: string;
  requests: number;
  latencySumUs: number;
  buckets: number[];
}

/** Total of one counter key over every retained minute rollup. */
export interface TrafficTotal extends CounterKey {
  requests: number;
  latencySumUs: number;
  /** Latency bucket counts, with the bounds they belong to. */
  bounds: number[];
  buckets: number[];
}

/** The aggregate a rollup row adds to a summary (route and source are not needed there). */
export const aggOfRollup = (group: string, row: RollupRow): Agg => ({
  group,
  service: row.service,
  lane: row.lane,
  direction: row.direction,
  statusClass: row.statusClass,
  grpcStatus: row.grpcStatus,
  boundsKey: row.boundsKey,
  requests: row.requests,
  buckets: row.buckets,
});

/**
 * The summary of `group` from aggregates of any origin (memory seconds, minute rollups), merged per
 * (service, lane, direction, status class, bounds). Every configured service × lane has a row, with
 * or without traffic; rows go in the configured order, then by name.
 */
export function summarize(group: string, windowMs: number, aggregates: Iterable<Agg>, config: GroupConfig): TrafficSummary {
  const aggs = new Map<string, Agg>();
  for (const a of aggregates) {
    const k = JSON.stringify([a.service, a.lane, a.direction, a.statusClass, a.grpcStatus, a.boundsKey]);
    let t = aggs.get(k);
    if (!t) aggs.set(k, (t = { ...a, requests: 0, buckets: a.buckets.map(() => 0) }));
    t.requests += a.requests;
    for (let i = 0; i < a.buckets.length && i < t.buckets.length; i++) t.buckets[i]! += a.buckets[i]!;
  }

  const inbound = [...aggs.values()].filter((a) => a.direction === Direction.INBOUND);
  const cells = new Map<string, { service: string; lane: string; aggs: Agg[] }>();
  const cell = (service: string, lane: string) => {
    const k = JSON.stringify([service, lane]);
    let c = cells.get(k);
    if (!c) cells.set(k, (c = { service, lane, aggs: [] }));
    return c;
  };
  for (const s of config.services) for (const l of config.lanes) cell(s, l);
  for (const a of inbound) cell(a.service, a.lane).aggs.push(a);

  const serviceTotals = new Map<string, number>();
  for (const a of inbound) serviceTotals.set(a.service, (serviceTotals.get(a.service) ?? 0) + a.requests);

  const laneOrder = new Map(config.lanes.map((l, i) => [l, i]));
  const serviceOrder = new Map(config.services.map((s, i) => [s, i]));
  const order = (m: Map<string, number>, k: string) => m.get(k) ?? Number.MAX_SAFE_INTEGER;
  const rows: TrafficRow[] = [...cells.values()]
    .sort(
      (a, b) =>
        order(serviceOrder, a.service) - order(serviceOrder, b.service) ||
        cmp(a.service, b.service) ||
        order(laneOrder, a.lane) - order(laneOrder, b.lane) ||
        cmp(a.lane, b.lane),
    )
    .map((c) => {
      const requests = c.aggs.reduce((n, a) => n + a.requests, 0);
      const errors = c.aggs.filter((a) => a.statusClass === 5).reduce((n, a) => n + a.requests, 0);
      const total = serviceTotals.get(c.service) ?? 0;
      const grpcStatuses: Record<string, number> = {};
      for (const a of c.aggs) {
        if (a.grpcStatus === NOT_GRPC || a.requests === 0) continue;
        const name = grpcStatusName(a.grpcStatus);
        grpcStatuses[name] = (grpcStatuses[name] ?? 0) + a.requests;
      }
      const hists: Histogram[] = c.aggs.map((a) => ({ bounds: JSON.parse(a.boundsKey) as number[], counts: a.buckets }));
      return {
        service: c.service,
        lane: c.lane,
        requests,
        observedShare: total > 0 ? requests / total : 0,
        configuredShare: config.shares[c.lane] ?? 0,
        errorRate: requests > 0 ? errors / requests : 0,
        grpcStatuses,
        p50Ms: round3(quantile(hists, 0.5)),
        p99Ms: round3(quantile(hists, 0.99)),
      };
    });

  const edge = new Map<string, number>();
  for (const a of aggs.values()) if (a.direction === Direction.EDGE) edge.set(a.lane, (edge.get(a.lane) ?? 0) + a.requests);
  return {
    group,
    windowMs,
    services: rows,
    edge: [...edge.entries()]
      .sort(([a], [b]) => order(laneOrder, a) - order(laneOrder, b) || cmp(a, b))
      .map(([lane, requests]) => ({ lane, requests })),
  };
}

/** Totals per counter key of `group` over rollup rows, sorted by service, lane, route, direction, source, status. */
export function totalsOf(group: string, rows: Iterable<RollupRow>): TrafficTotal[] {
  const out = new Map<string, TrafficTotal>();
  for (const row of rows) {
    const k = JSON.stringify([row.service, row.lane, row.route, row.direction, row.source, row.statusClass, row.grpcStatus, row.boundsKey]);
    let t = out.get(k);
    if (!t) {
      out.set(
        k,
        (t = {
          group,
          lane: row.lane,
          route: row.route,
          service: row.service,
          direction: row.direction,
          source: row.source,
          statusClass: row.statusClass,
          grpcStatus: row.grpcStatus,
          requests: 0,
          latencySumUs: 0,
          bounds: JSON.parse(row.boundsKey) as number[],
          buckets: row.buckets.map(() => 0),
        }),
      );
    }
    t.requests += row.requests;
    t.latencySumUs += row.latencySumUs;
    row.buckets.forEach((n, i) => (t.buckets[i]! += n));
  }
  return [...out.values()].sort(
    (a, b) =>
      cmp(a.service, b.service) || cmp(a.lane, b.lane) || cmp(a.route, b.route) ||
      a.direction - b.direction || a.source - b.source || a.statusClass - b.statusClass || a.grpcStatus - b.grpcStatus,
  );
}

/** gRPC status codes by number (google.rpc.Code). */
export const GRPC_STATUS_NAMES = [
  "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
  "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
] as const;

export const grpcStatusName = (code: number): string => GRPC_STATUS_NAMES[code] ?? `CODE_${code}`;

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const round3 = (x: number | null): number | null => (x === null ? null : Math.round(x * 1000) / 1000);
