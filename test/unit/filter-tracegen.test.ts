// Trace ids made at the edge (DESIGN.md "The edge", generateTraceId): a request of a group that
// carries no trace header gets a new one at the edge, before anything reads it, so later hops can
// restore the lane from trace memory; a generated id is never a sticky key.
import { describe, expect, it } from "vitest";
import { fromBinary } from "@bufbuild/protobuf";
import { TrafficReportSchema } from "../../control-plane/src/generated/graylane/v1/traffic_pb.js";
import { ManualClock, SharedData } from "../../control-plane/src/wasmhost/index.js";
import { mockGroup, newFilter, routeTo, type Filter } from "../support/filter.js";

const HEX32 = /^[0-9a-f]{32}$/;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-00$/;
const toMocka = { ":authority": "mocka", ":path": "/" };
const generated = (f: Filter) => f.vm.metric("graylane.trace_generated")?.value ?? 0n;

/** A weighted mock group: canary 50% of `x-user-id` users (or of trace ids, without a sticky key). */
function weighted(overrides: Record<string, unknown> = {}) {
  return mockGroup({ lanes: [{ name: "canary", services: ["mocka", "mockc"], weight: 50 }], ...overrides });
}

describe("trace ids made at the edge", () => {
  it("a request without the group's trace header gets 128 random bits in lowercase hex, counted", async () => {
    const f = await newFilter({ groups: [mockGroup()], edge: true });
    const s = f.exchange(toMocka);
    expect(s.requestHeader("my-request-id")).toMatch(HEX32);
    expect(s.requestHeaderValues("my-request-id")).toHaveLength(1);
    expect(generated(f)).toBe(1n);
    // an empty header is no trace id either
    expect(f.exchange({ ...toMocka, "my-request-id": "" }).requestHeaderValues("my-request-id")).toEqual([expect.stringMatching(HEX32)]);
    expect(generated(f)).toBe(2n);
  });

  it("traceparent: a valid W3C header, version 00, flags 00 (not sampled), non-zero ids", async () => {
    const f = await newFilter({ groups: [mockGroup({ traceHeader: "traceparent" })], edge: true });
    for (let i = 0; i < 200; i++) {
      const v = f.exchange(toMocka).requestHeader("traceparent")!;
      const m = TRACEPARENT.exec(v);
      expect(m, v).not.toBeNull();
      expect(m![1]).not.toBe("0".repeat(32));
      expect(m![2]).not.toBe("0".repeat(16));
    }
    expect(generated(f)).toBe(200n);
  });

  it("x-b3-traceid: a 128-bit trace id and a 64-bit x-b3-spanid", async () => {
    const f = await newFilter({ groups: [mockGroup({ traceHeader: "x-b3-traceid" })], edge: true });
    const s = f.exchange(toMocka);
    expect(s.requestHeader("x-b3-traceid")).toMatch(HEX32);
    expect(s.requestHeader("x-b3-spanid")).toMatch(/^[0-9a-f]{16}$/);
    expect(s.requestHeader("x-b3-spanid")).not.toBe("0".repeat(16));
    expect(generated(f)).toBe(1n);
  });

  it("a client-sent id is kept, and nothing is counted", async () => {
    for (const [header, value] of [["my-request-id", "client-1"], ["traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"], ["x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"]]) {
      const f = await newFilter({ groups: [mockGroup({ traceHeader: header })], edge: true });
      const s = f.exchange({ ...toMocka, [header]: value });
      expect(s.requestHeaderValues(header)).toEqual([value]);
      expect(s.requestHeader("x-b3-spanid")).toBeUndefined();
      expect(generated(f)).toBe(0n);
    }
  });

  it("generateTraceId false: no header", async () => {
    const f = await newFilter({ groups: [mockGroup({ generateTraceId: false })], edge: true });
    expect(f.exchange(toMocka).requestHeader("my-request-id")).toBeUndefined();
    expect(generated(f)).toBe(0n);
  });

  it("a request of no group gets nothing; neither does any request at a filter that is not the edge", async () => {
    const edge = await newFilter({ groups: [mockGroup()], edge: true });
    const s = edge.exchange({ ":authority": "elsewhere", ":path": "/other" });
    expect(s.requestHeader("my-request-id")).toBeUndefined();
    expect(generated(edge)).toBe(0n);
    const outbound = await newFilter({ groups: [mockGroup()], direction: "outbound" });
    expect(outbound.exchange(toMocka, 200, routeTo("mocka")).requestHeader("my-request-id")).toBeUndefined();
    const inbound = await newFilter({ groups: [mockGroup()], direction: "inbound", service: "mocka" });
    expect(inbound.exchange({ ":path": "/" }).requestHeader("my-request-id")).toBeUndefined();
    expect(generated(outbound) + generated(inbound)).toBe(0n);
  });

  it("the trace header is the destination group's", async () => {
    const shop = { name: "shop", services: [{ name: "web", paths: ["/shop"] }], traceHeader: "traceparent", lanes: [] };
    const f = await newFilter({ groups: [mockGroup(), shop], edge: true });
    for (let i = 0; i < 3; i++) { // alternating, so one kind's id never spoils the other's format
      const s = f.exchange({ ":authority": "gw", ":path": "/shop/cart" });
      expect(s.requestHeader("traceparent")).toMatch(TRACEPARENT);
      expect(s.requestHeader("my-request-id")).toBeUndefined();
      const m = f.exchange(toMocka);
      expect(m.requestHeader("my-request-id")).toMatch(HEX32);
      expect(m.requestHeader("traceparent")).toBeUndefined();
    }
  });

  it("a generated id is never a sticky key: without stickyKey every request keeps today's lane (base), as with generation off", async () => {
    const group = weighted({ stickyKey: undefined });
    const on = await newFilter({ groups: [group], edge: true });
    const off = await newFilter({ groups: [{ ...group, generateTraceId: false }], edge: true });
    for (let i = 0; i < 2000; i++) {
      const a = on.exchange(toMocka);
      const b = off.exchange(toMocka);
      expect(a.requestHeader("my-request-id")).toMatch(HEX32);
      expect(a.requestHeader("x-graylane-lane")).toBe("base"); // a 50% canary keyed by the new id would take half
      expect(b.requestHeader("x-graylane-lane")).toBe("base");
    }
    expect(on.vm.metric("graylane.group.mock.lane.base.source.base.requests")?.value).toBe(2000n);
    expect(on.vm.metric("graylane.group.mock.lane.canary.source.weight.requests")?.value ?? 0n).toBe(0n);
    // A client-sent trace id is still the key, as before.
    for (let i = 0; i < 200; i++) {
      const h = { ...toMocka, "my-request-id": `client-${i}` };
      expect(on.exchange(h).requestHeader("x-graylane-lane")).toBe(off.exchange(h).requestHeader("x-graylane-lane"));
    }
  });

  it("with a sticky key, the lane of each user is the one generation off gives (preview stays deterministic)", async () => {
    const on = await newFilter({ groups: [weighted()], edge: true });
    const off = await newFilter({ groups: [weighted({ generateTraceId: false })], edge: true });
    const lanes = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const h = { ...toMocka, "x-user-id": `u${i}` };
      const lane = on.exchange(h).requestHeader("x-graylane-lane")!;
      expect(lane).toBe(off.exchange(h).requestHeader("x-graylane-lane"));
      expect(on.exchange(h).requestHeader("x-graylane-lane")).toBe(lane);
      lanes.add(lane);
    }
    expect(lanes).toEqual(new Set(["base", "canary"]));
  });

  it("the lane holds at the next hop: edge → mocka inbound remembers the new id → mocka's outbound call with only that header", async () => {
    const shared = new SharedData();
    const clock = new ManualClock(1_700_000_000_000_000_000n);
    const edge = await newFilter({ groups: [weighted()], edge: true, shared, clock });
    const inbound = await newFilter({ groups: [weighted()], direction: "inbound", service: "mocka", shared, clock });
    const outbound = await newFilter({ groups: [weighted()], direction: "outbound", shared, clock });
    let canary = 0;
    for (let i = 0; i < 500; i++) {
      const e = edge.exchange({ ...toMocka, "x-user-id": `u${i}` });
      const lane = e.requestHeader("x-graylane-lane")!;
      const trace = e.requestHeader("my-request-id")!;
      inbound.exchange({ ":path": "/", "x-graylane-lane": lane, "my-request-id": trace });
      // the app forwards only its trace header
      const next = outbound.exchange({ ":authority": "mockc", ":path": "/", "my-request-id": trace }, 200, routeTo("mockc"));
      expect(next.requestHeader("x-graylane-lane")).toBe(lane);
      if (lane === "canary") canary++;
    }
    expect(canary).toBeGreaterThan(150);
  });

  it("the traffic counter keys and counts are those of generation off (a running fleet's counters go on)", async () => {
    const report = async (generateTraceId: boolean) => {
      const clock = new ManualClock(1_700_000_000_000_000_000n);
      const calls: Array<{ message: Uint8Array }> = [];
      const f = await newFilter({
        groups: [weighted({ generateTraceId })], edge: true, clock,
        config: { cluster: "graylane-control-plane", reportIntervalMs: 1000, node: { id: "gateway" } },
        grpc: { onCall: (c: never) => calls.push(c) },
      });
      for (let i = 0; i < 300; i++) {
        const h: Record<string, string> = { ...toMocka };
        if (i % 3 === 0) h["x-user-id"] = `u${i}`;
        if (i % 5 === 0) h["x-asm-prefer-tag"] = "canary";
        if (i % 7 === 0) h["my-request-id"] = `client-${i}`;
        f.exchange(h, i % 11 === 0 ? 503 : 200);
      }
      f.vm.tick();
      expect(calls).toHaveLength(1);
      const counters = fromBinary(TrafficReportSchema, calls[0].message).counters
        .map((c) => ({ group: c.group, lane: c.lane, route: c.route, service: c.service, direction: c.direction, source: c.source, statusClass: c.statusClass, requests: Number(c.requests) }));
      return counters.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    };
    const on = await report(true);
    expect(on.length).toBeGreaterThan(3);
    expect(on).toEqual(await report(false));
  });

  it("10,000 ids are distinct, also across worker VMs configured at the same clock reading", async () => {
    const shared = new SharedData();
    const clock = new ManualClock(1_700_000_000_000_000_000n);
    const w1 = await newFilter({ groups: [mockGroup()], edge: true, shared, clock });
    const w2 = await newFilter({ groups: [mockGroup()], edge: true, shared, clock });
    const ids = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      ids.add(w1.exchange(toMocka).requestHeader("my-request-id")!);
      ids.add(w2.exchange(toMocka).requestHeader("my-request-id")!); // same clock reading as w1's
    }
    expect(ids.size).toBe(10_000);
    // the hex digits are evenly used
    const counts = new Map<string, number>();
    for (const id of ids) for (const c of id) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(16);
    for (const n of counts.values()) expect(Math.abs(n - 20_000) / 20_000).toBeLessThan(0.05);
  });

  it("no memory growth: linear memory after 200,000 generated ids is no larger than after 10,000", async () => {
    for (const traceHeader of ["my-request-id", "traceparent", "x-b3-traceid"]) {
      const f = await newFilter({ groups: [weighted({ traceHeader })], edge: true });
      const run = (from: number, to: number) => {
        for (let i = from; i < to; i++) f.exchange({ ...toMocka, "x-user-id": `u${i % 3000}` });
      };
      run(0, 10_000);
      const after10k = f.vm.memoryBytes();
      run(10_000, traceHeader === "my-request-id" ? 200_000 : 50_000);
      expect(f.vm.memoryBytes()).toBeLessThanOrEqual(after10k);
      expect(f.vm.failed).toBe(false);
    }
  }, 300_000);
});
