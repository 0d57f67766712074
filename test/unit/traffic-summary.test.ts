// Traffic summaries and totals shaped from aggregated counts, and the in-memory seconds they are
// read from, pure (control-plane/src/traffic/summary.ts, windows.ts). With SQLite, restarts and
// the rules: test/integration/traffic.test.ts.
import { describe, expect, it } from "vitest";
import { DecisionSource, Direction } from "../../control-plane/src/generated/graylane/v1/traffic_pb.js";
import { boundsKey, type Delta } from "../../control-plane/src/traffic/deltas.js";
import { aggOfRollup, type GroupConfig, type RollupRow, summarize, totalsOf } from "../../control-plane/src/traffic/summary.js";
import { type Agg, MINUTE, SecondWindows, windowPlan } from "../../control-plane/src/traffic/windows.js";

const BOUNDS = [10, 100];
const BK = boundsKey(BOUNDS);
const CONFIG: GroupConfig = { services: ["web", "api"], lanes: ["base", "canary"], shares: { base: 0.8, canary: 0.2 } };

const agg = (service: string, lane: string, requests: number, o: Partial<Agg> = {}): Agg => ({
  group: "shop", service, lane, direction: Direction.INBOUND, statusClass: 2, grpcStatus: -1, boundsKey: BK, requests, buckets: [requests, 0, 0], ...o,
});

describe("traffic summary", () => {
  it("a row per configured service × lane, in configured order, then traffic of unconfigured ones by name", () => {
    const s = summarize("shop", 60_000, [agg("zeta", "base", 1), agg("web", "old", 1), agg("alpha", "base", 1)], CONFIG);
    expect(s.services.map((r) => `${r.service}/${r.lane}`)).toEqual([
      "web/base", "web/canary", "web/old", "api/base", "api/canary", "alpha/base", "zeta/base",
    ]);
    expect(s.services.find((r) => r.service === "api" && r.lane === "canary")).toEqual({
      service: "api", lane: "canary", requests: 0, observedShare: 0, configuredShare: 0.2, errorRate: 0, grpcStatuses: {}, p50Ms: null, p99Ms: null,
    });
    expect(s.services.find((r) => r.lane === "old")!.configuredShare).toBe(0);
  });

  it("observed share of the service's inbound requests, error rate of 5xx, percentiles; outbound ignored", () => {
    const s = summarize(
      "shop",
      60_000,
      [
        agg("web", "base", 60, { buckets: [60, 0, 0] }),
        agg("web", "base", 20, { buckets: [0, 20, 0] }), // the same key from another origin: merged
        agg("web", "canary", 15, { buckets: [0, 15, 0] }),
        agg("web", "canary", 5, { statusClass: 5, buckets: [0, 0, 5] }),
        agg("web", "canary", 1000, { direction: Direction.OUTBOUND }),
      ],
      CONFIG,
    );
    const row = (lane: string) => s.services.find((r) => r.service === "web" && r.lane === lane)!;
    expect(row("base")).toMatchObject({ requests: 80, observedShare: 0.8, configuredShare: 0.8, errorRate: 0, p50Ms: 6.667 });
    expect(row("canary")).toMatchObject({ requests: 20, observedShare: 0.2, configuredShare: 0.2, errorRate: 0.25, p99Ms: 100 });
    expect(s.edge).toEqual([]);
  });

  it("gRPC statuses per row by name; a gRPC server error (class 5) counts in the error rate, a caller's error does not", () => {
    const s = summarize("shop", 60_000, [
      agg("api", "canary", 60, { grpcStatus: 0 }),
      agg("api", "canary", 30, { grpcStatus: 14, statusClass: 5 }), // UNAVAILABLE: 503
      agg("api", "canary", 10, { grpcStatus: 5, statusClass: 4 }), // NOT_FOUND: 404
      agg("api", "canary", 0, { grpcStatus: 13, statusClass: 5 }), // nothing counted: not shown
      agg("api", "base", 40),
    ], CONFIG);
    const row = (lane: string) => s.services.find((r) => r.service === "api" && r.lane === lane)!;
    expect(row("canary")).toMatchObject({ requests: 100, errorRate: 0.3, grpcStatuses: { OK: 60, UNAVAILABLE: 30, NOT_FOUND: 10 } });
    expect(row("base").grpcStatuses).toEqual({});
  });

  it("edge decisions per lane, in lane order", () => {
    const edge = (lane: string, n: number) => agg("web", lane, n, { direction: Direction.EDGE });
    const s = summarize("shop", 60_000, [edge("canary", 3), edge("base", 7), edge("canary", 2), edge("blue", 1)], CONFIG);
    expect(s.edge).toEqual([{ lane: "base", requests: 7 }, { lane: "canary", requests: 5 }, { lane: "blue", requests: 1 }]);
    expect(s.services.every((r) => r.requests === 0)).toBe(true);
  });

  it("totals: per counter key over every minute, sorted, with their bounds", () => {
    const row = (lane: string, requests: number, o: Partial<RollupRow> = {}): RollupRow => ({
      service: "web", lane, route: lane, direction: Direction.INBOUND, source: DecisionSource.WEIGHT, statusClass: 2, grpcStatus: -1, boundsKey: BK,
      requests, latencySumUs: requests * 10, buckets: [requests, 0, 0], ...o,
    });
    const totals = totalsOf("shop", [row("canary", 2), row("base", 5), row("canary", 3), row("canary", 1, { statusClass: 5 })]);
    expect(totals.map((t) => [t.lane, t.statusClass, t.requests, t.latencySumUs, t.buckets])).toEqual([
      ["base", 2, 5, 50, [5, 0, 0]],
      ["canary", 2, 5, 50, [5, 0, 0]],
      ["canary", 5, 1, 10, [1, 0, 0]],
    ]);
    expect(totals[0]).toMatchObject({ group: "shop", service: "web", route: "base", bounds: BOUNDS });
    expect(aggOfRollup("shop", row("base", 5))).toEqual(agg("web", "base", 5));
  });
});

describe("traffic windows", () => {
  const t0 = Date.UTC(2025, 0, 1, 12, 0, 30); // half a minute past

  it("a window older than the process reads rollups up to the first minute edge after start, memory after", () => {
    const now = t0 + 5 * MINUTE;
    expect(windowPlan(now, 10 * MINUTE, t0, 15 * MINUTE)).toEqual({
      fromMinute: Math.floor((now - 10 * MINUTE) / MINUTE),
      toMinute: Math.ceil(t0 / MINUTE),
      memoryFrom: Math.ceil(t0 / MINUTE) * MINUTE,
    });
    // Within what memory holds: memory only.
    expect(windowPlan(now, 2 * MINUTE, t0, 15 * MINUTE)).toEqual({ fromMinute: 0, toMinute: 0, memoryFrom: now - 2 * MINUTE });
    // Beyond the retention of a long-running process: rollups up to the edge after now − retention.
    const later = t0 + 60 * MINUTE;
    expect(windowPlan(later, 30 * MINUTE, t0, 15 * MINUTE)).toMatchObject({ toMinute: Math.ceil((later - 15 * MINUTE) / MINUTE) });
  });

  it("memory keeps inbound and edge deltas of each second for the retention time", () => {
    const w = new SecondWindows(60_000);
    const d = (lane: string, requests: number, direction: number = Direction.INBOUND, group = "shop"): Delta => ({
      group, lane, route: lane, service: "web", direction, source: DecisionSource.WEIGHT, statusClass: 2, grpcStatus: -1, requests, sumUs: 0, buckets: [requests, 0, 0],
    });
    w.add(t0, [d("base", 5), d("base", 1), d("canary", 2, Direction.OUTBOUND), d("base", 9, Direction.INBOUND, "other")], BOUNDS);
    w.add(t0 + 1500, [d("base", 3), d("canary", 4, Direction.EDGE)], BOUNDS);
    const sum = (from: number) => [...w.since("shop", from)].map((a) => `${a.lane}:${a.direction}:${a.requests}`);
    expect(sum(t0)).toEqual(["base:1:6", "base:1:3", "canary:3:4"]);
    expect(sum(t0 + 1000)).toEqual(["base:1:3", "canary:3:4"]);
    w.add(t0 + 61_000, [], BOUNDS); // the first second is now older than the retention
    expect(sum(0)).toEqual(["base:1:3", "canary:3:4"]);
  });
});
