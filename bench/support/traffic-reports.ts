// The traffic reports of bench/push-latency's simulated filters: the counter set a sidecar of the
// bench RuleSet reports (its 5 groups: each service in each of its lanes, inbound and outbound, 2xx —
// 60 counters with 11 latency buckets). At its report number s a filter's counter k holds
// s × (k + 1) requests, so the totals the control plane must reach are known exactly: Σ over the
// filters of their last answered s × (k + 1).
import { create, toBinary } from "@bufbuild/protobuf";
import { DecisionSource, Direction, TrafficReportSchema } from "../../control-plane/src/generated/graylane/v1/traffic_pb.js";
import { GROUPS } from "./ruleset.js";

export const REPORT_BOUNDS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];

/** (service suffix, lane, decision source) of the bench groups' lanes. */
const LANES = [["web", "base", DecisionSource.BASE], ["web", "gray", DecisionSource.RULE], ["web", "canary", DecisionSource.WEIGHT],
  ["api", "base", DecisionSource.BASE], ["api", "canary", DecisionSource.WEIGHT], ["api", "blue", DecisionSource.WEIGHT]] as const;

export interface BenchCounter { group: string; lane: string; service: string; direction: Direction }

export const BENCH_COUNTERS: BenchCounter[] = Array.from({ length: GROUPS }, (_, g) => LANES.flatMap(([svc, lane]) =>
  [Direction.INBOUND, Direction.OUTBOUND].map((direction) => ({ group: `shop${g}`, lane, service: `shop${g}-${svc}`, direction })))).flat();

/** The counters and bounds of report number `s` (the same bytes for every filter), to append to a filter's own fields. */
export function countersAt(s: number): Uint8Array {
  return toBinary(TrafficReportSchema, create(TrafficReportSchema, {
    latencyBoundsMs: REPORT_BOUNDS_MS,
    counters: BENCH_COUNTERS.map((c, k) => {
      const requests = BigInt(s * (k + 1));
      const lane = LANES.find(([svc, l]) => c.service.endsWith(svc) && l === c.lane)!;
      return {
        group: c.group, lane: c.lane, route: c.lane, service: c.service, direction: c.direction, source: lane[2], statusClass: 2,
        requests, latencySumUs: requests * 7000n, latencyBuckets: [0n, 0n, requests, 0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n],
      };
    }),
  }));
}

/** A filter's report number `s`: its own fields, then the shared counters (protobuf fields concatenate). */
export function reportBytes(instanceId: string, nodeId: string, s: number, counters: Uint8Array): Buffer {
  const own = toBinary(TrafficReportSchema, create(TrafficReportSchema, { instanceId, nodeId, sequence: BigInt(s) }));
  return Buffer.concat([own, counters]);
}

/** Inbound requests per group the control plane must count when the filters' last answered reports sum to `sumOfLast`. */
export function expectedInbound(sumOfLast: number): Record<string, number> {
  const out: Record<string, number> = {};
  BENCH_COUNTERS.forEach((c, k) => {
    if (c.direction === Direction.INBOUND) out[c.group] = (out[c.group] ?? 0) + sumOfLast * (k + 1);
  });
  return out;
}
