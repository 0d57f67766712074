// The delta algorithm of traffic ingestion, pure (control-plane/src/traffic/deltas.ts): cumulative
// counters to exact deltas. The same through SQLite, gRPC and restarts is
// test/integration/traffic.test.ts.
import { describe, expect, it } from "vitest";
import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { DecisionSource, Direction, type TrafficReport, TrafficReportSchema } from "../../control-plane/src/generated/graylane/v1/traffic_pb.js";
import { type ParsedReport, parseReportBytes, parseReportMessage, ReportDecodeError } from "../../control-plane/src/traffic/report-wire.js";
import {
  boundsKey,
  counterDelta,
  type Counts,
  isZero,
  type LastCounts,
  normalize,
  sequenceVerdict,
} from "../../control-plane/src/traffic/deltas.js";

/** A report parsed from its message and from its bytes (the gRPC path): both must agree. */
function both(r: TrafficReport): ParsedReport {
  const fromMessage = parseReportMessage(r);
  expect(parseReportBytes(toBinary(TrafficReportSchema, r))).toEqual(fromMessage);
  return fromMessage;
}

const BK = boundsKey([10, 100]);
const last = (c: Counts, bk = BK): LastCounts => ({ ...c, boundsKey: bk });

describe("traffic deltas", () => {
  it("a report's sequence: new above the last accepted one, duplicate when equal, stale below", () => {
    expect(sequenceVerdict(1, undefined)).toBe("new");
    expect(sequenceVerdict(8, 7)).toBe("new");
    expect(sequenceVerdict(7, 7)).toBe("duplicate");
    expect(sequenceVerdict(6, 7)).toBe("stale");
  });

  it("one counter per key, the later one winning; buckets padded or folded into the unbounded one", () => {
    const counter = (requests: number, buckets: number[], lane = "canary") => ({
      group: "mock", lane, route: lane, service: "mocka", direction: Direction.INBOUND, source: DecisionSource.WEIGHT, statusClass: 2,
      requests: BigInt(requests), latencySumUs: BigInt(requests * 100), latencyBuckets: buckets.map(BigInt),
    });
    const r = create(TrafficReportSchema, {
      instanceId: "i-1",
      sequence: 1n,
      latencyBoundsMs: [10, 100],
      counters: [counter(5, [5]), counter(9, [1, 2, 3, 4, 5]), counter(3, [1, 1, 1], "base")],
    });
    const counters = [...both(r).counters.values()];
    expect(counters.map((c) => [c.key.lane, { requests: c.requests, sumUs: c.sumUs, buckets: c.buckets }])).toEqual([
      ["canary", { requests: 9, sumUs: 900, buckets: [1, 2, 12] }],
      ["base", { requests: 3, sumUs: 300, buckets: [1, 1, 1] }],
    ]);
    expect(normalize([4], 3)).toEqual([4, 0, 0]);
  });

  it("a gRPC status is its own counter key; every other counter keeps the storage key of before (an upgrade counts nothing twice)", () => {
    const base = { group: "mock", lane: "canary", route: "canary", service: "mocka", direction: Direction.INBOUND, source: DecisionSource.WEIGHT, statusClass: 5, requests: 1n, latencySumUs: 0n, latencyBuckets: [1n] };
    const r = create(TrafficReportSchema, { instanceId: "i-1", sequence: 1n, latencyBoundsMs: [], counters: [
      base, { ...base, grpcStatus: 14, requests: 3n }, { ...base, statusClass: 2, grpcStatus: 0, requests: 7n },
    ] });
    const got = [...both(r).counters.entries()].map(([k, c]) => [k, c.key.grpcStatus, c.requests]);
    expect(got).toEqual([
      ['["mock","canary","canary","mocka",1,6,5]', -1, 1], // the key the control plane stored before gRPC statuses
      ['["mock","canary","canary","mocka",1,6,5,14]', 14, 3],
      ['["mock","canary","canary","mocka",1,6,2,0]', 0, 7],
    ]);
  });

  it("current − last; a key never seen counts from zero", () => {
    const cur: Counts = { requests: 30, sumUs: 3000, buckets: [10, 15, 5] };
    expect(counterDelta(cur, BK, undefined)).toEqual(cur);
    expect(counterDelta(cur, BK, last({ requests: 20, sumUs: 1000, buckets: [10, 8, 2] }))).toEqual({ requests: 10, sumUs: 2000, buckets: [0, 7, 3] });
    expect(isZero(counterDelta(cur, BK, last(cur)))).toBe(true);
    expect(isZero({ requests: 0, sumUs: 0, buckets: [0, 1, 0] })).toBe(false);
  });

  it("a counter below its last value is a reset: the delta is the current value", () => {
    const cur: Counts = { requests: 4, sumUs: 400, buckets: [4, 0, 0] };
    expect(counterDelta(cur, BK, last({ requests: 9, sumUs: 100, buckets: [1, 0, 0] }))).toEqual(cur);
    expect(counterDelta({ ...cur, requests: 10 }, BK, last({ requests: 9, sumUs: 900, buckets: [1, 0, 0] }))).toEqual({ ...cur, requests: 10 });
  });

  it("buckets with other bounds, or a bucket gone down, count afresh while requests are diffed", () => {
    const cur: Counts = { requests: 30, sumUs: 3000, buckets: [10, 15, 5] };
    const prev = { requests: 20, sumUs: 2000, buckets: [10, 8, 2] };
    expect(counterDelta(cur, BK, last(prev, boundsKey([5, 50])))).toEqual({ requests: 10, sumUs: 1000, buckets: [10, 15, 5] });
    expect(counterDelta(cur, BK, last({ ...prev, buckets: [11, 0, 0] }))).toEqual({ requests: 10, sumUs: 1000, buckets: [10, 15, 5] });
  });

  it("any subset of cumulative reports, in order, adds up to the last one delivered", () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let run = 0; run < 50; run++) {
      let cum: Counts = { requests: 0, sumUs: 0, buckets: [0, 0, 0] };
      let stored: LastCounts | undefined;
      const total: Counts = { requests: 0, sumUs: 0, buckets: [0, 0, 0] };
      for (let i = 0; i < 30; i++) {
        const b = cum.buckets.map((n) => n + Math.floor(random() * 5));
        cum = { requests: b.reduce((x, y) => x + y, 0), sumUs: cum.sumUs + Math.floor(random() * 1000), buckets: b };
        if (random() < 0.4) continue; // lost
        const d = counterDelta(cum, BK, stored);
        stored = last(cum);
        total.requests += d.requests;
        total.sumUs += d.sumUs;
        d.buckets.forEach((n, j) => (total.buckets[j]! += n));
      }
      expect(total).toEqual(stored ? { requests: stored.requests, sumUs: stored.sumUs, buckets: stored.buckets } : total);
    }
  });

  it("a report's bytes: unpacked buckets, fields out of order and unknown fields decode as the message does; a truncated report is refused", () => {
    const msg = create(TrafficReportSchema, {
      instanceId: "i-1", nodeId: "n", sequence: 7n, latencyBoundsMs: [10, 100],
      counters: [{ group: "g", lane: "canary", route: "canary", service: "s", direction: Direction.INBOUND, source: DecisionSource.RULE, statusClass: 2, requests: 6n, latencySumUs: 600n, latencyBuckets: [1n, 2n, 3n] }],
    });
    const w = new BinaryWriter();
    w.tag(99, WireType.Varint).uint64(5); // unknown
    w.tag(5, WireType.LengthDelimited).fork();
    w.tag(10, WireType.Varint).uint64(600).tag(2, WireType.LengthDelimited).string("canary");
    for (const b of [1, 2, 3]) w.tag(9, WireType.Varint).uint64(b); // unpacked
    w.tag(1, WireType.LengthDelimited).string("g").tag(3, WireType.LengthDelimited).string("canary").tag(4, WireType.LengthDelimited).string("s");
    w.tag(5, WireType.Varint).int32(Direction.INBOUND).tag(6, WireType.Varint).int32(DecisionSource.RULE).tag(7, WireType.Varint).uint32(2).tag(8, WireType.Varint).uint64(6);
    w.join();
    w.tag(4, WireType.Varint).uint32(10).tag(4, WireType.Varint).uint32(100); // unpacked bounds
    w.tag(2, WireType.Varint).uint64(7).tag(3, WireType.LengthDelimited).string("n").tag(1, WireType.LengthDelimited).string("i-1");
    expect(parseReportBytes(w.finish())).toEqual(both(msg));
    const bytes = toBinary(TrafficReportSchema, msg);
    expect(() => parseReportBytes(bytes.subarray(0, bytes.length - 3))).toThrow(ReportDecodeError);
  });
});
