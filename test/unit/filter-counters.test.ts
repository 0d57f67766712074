// Envoy metrics and the cumulative traffic counters the control plane will collect, decoded with the
// generated TypeScript code (so the filter's hand-written encoder cannot drift from traffic.proto).
import { describe, expect, it } from "vitest";
import { fromBinary } from "@bufbuild/protobuf";
import { TrafficReportSchema, Direction, DecisionSource } from "../../control-plane/src/generated/graylane/v1/traffic_pb.js";
import { ManualClock, SharedData } from "../../control-plane/src/wasmhost/index.js";
import { mockGroup, newFilter, routeTo } from "../support/filter.js";

describe("counters", () => {
  it("counts per lane, route, source and status class with latency buckets, cumulatively", async () => {
    const clock = new ManualClock(1_700_000_000_000_000_000n);
    const calls: Array<{ message: Uint8Array; service: string; serviceName: string; method: string; respond: (m: Uint8Array) => void }> = [];
    const f = await newFilter({
      groups: [mockGroup()], clock,
      config: { cluster: "graylane-control-plane", reportIntervalMs: 1000, node: { id: "sidecar-1" } },
      grpc: { onCall: (c: never) => calls.push(c) },
    });
    expect(f.vm.tickPeriodMs).toBe(1000);
    const req = (headers: Record<string, string>, status: number, ms: number) => {
      const s = f.send(headers, routeTo("mocka"));
      clock.advanceMs(ms);
      s.callOnResponseHeaders([[":status", String(status)]]);
      s.complete();
    };
    for (let i = 0; i < 7; i++) req({ "x-asm-prefer-tag": "canary" }, 200, 3);
    for (let i = 0; i < 3; i++) req({ "x-asm-prefer-tag": "canary" }, 503, 30);
    for (let i = 0; i < 5; i++) req({}, 200, 700);

    expect(f.vm.metric("graylane.group.mock.lane.canary.source.override.requests")?.value).toBe(10n);
    expect(f.vm.metric("graylane.group.mock.lane.base.source.base.requests")?.value).toBe(5n);

    f.vm.tick();
    expect(calls).toHaveLength(1);
    expect(calls[0].service).toBe("graylane-control-plane");
    expect(calls[0].serviceName).toBe("graylane.v1.Traffic");
    expect(calls[0].method).toBe("Report");
    const r1 = fromBinary(TrafficReportSchema, calls[0].message);
    expect(r1.sequence).toBe(1n);
    expect(r1.nodeId).toBe("sidecar-1");
    expect(r1.instanceId).toMatch(/^sidecar-1\/\d+\/[0-9a-f]{16}$/);
    const bounds = r1.latencyBoundsMs;
    const find = (r: typeof r1, lane: string, status: number) =>
      r.counters.find((c) => c.lane === lane && c.statusClass === status);
    const ok = find(r1, "canary", 2)!;
    expect(ok).toMatchObject({ group: "mock", route: "canary", service: "mocka", direction: Direction.OUTBOUND, source: DecisionSource.OVERRIDE, requests: 7n });
    expect(ok.latencyBuckets).toHaveLength(bounds.length + 1);
    expect(ok.latencyBuckets[bounds.indexOf(5)]).toBe(7n); // 3 ms falls in (2, 5]
    expect(ok.latencySumUs).toBe(21_000n);
    const failed = find(r1, "canary", 5)!;
    expect(failed.requests).toBe(3n);
    expect(failed.latencyBuckets[bounds.indexOf(50)]).toBe(3n);
    const base = find(r1, "base", 2)!;
    expect(base).toMatchObject({ source: DecisionSource.BASE, requests: 5n });
    expect(base.latencyBuckets[bounds.indexOf(1000)]).toBe(5n);

    // One report in flight at a time; after it completes the next one is cumulative.
    f.vm.tick();
    expect(calls).toHaveLength(1);
    calls[0].respond(new Uint8Array());
    req({ "x-asm-prefer-tag": "canary" }, 200, 1);
    f.vm.tick(); // less than reportIntervalMs since the last report: nothing sent
    expect(calls).toHaveLength(1);
    clock.advanceMs(1000);
    f.vm.tick();
    expect(calls).toHaveLength(2);
    const r2 = fromBinary(TrafficReportSchema, calls[1].message);
    expect(r2.sequence).toBe(2n);
    expect(r2.instanceId).toBe(r1.instanceId);
    expect(find(r2, "canary", 2)!.requests).toBe(8n);
    expect(find(r2, "canary", 5)!.requests).toBe(3n);
  });

  it("sends no periodic report while nothing changed: none from a root context that never counted (an Envoy main thread), a heartbeat every 10 minutes once it did", async () => {
    const clock = new ManualClock(1_700_000_000_000_000_000n);
    const calls: Array<{ message: Uint8Array; respond: (m: Uint8Array) => void; fail?: (code: number) => void }> = [];
    const f = await newFilter({ groups: [mockGroup()], clock, config: { cluster: "cp", reportIntervalMs: 1000, node: { id: "s-1" } }, grpc: { onCall: (c: never) => calls.push(c) } });
    const tickFor = (seconds: number) => { for (let i = 0; i < seconds; i++) { clock.advanceMs(1000); f.vm.tick(); } };
    const req = () => {
      const s = f.send({ "x-asm-prefer-tag": "canary" }, routeTo("mocka"));
      s.callOnResponseHeaders([[":status", "200"]]);
      s.complete();
    };
    tickFor(30);
    expect(calls).toHaveLength(0);
    req();
    tickFor(1);
    expect(calls).toHaveLength(1);
    calls[0]!.respond(new Uint8Array());
    tickFor(60);
    expect(calls).toHaveLength(1); // unchanged since the answered report
    clock.advanceMs(10 * 60 * 1000);
    f.vm.tick();
    expect(calls).toHaveLength(2); // the heartbeat: same counts, next sequence
    const [r1, r2] = calls.map((c) => fromBinary(TrafficReportSchema, c.message));
    expect(r2!.sequence).toBe(2n);
    expect(r2!.counters.map((c) => c.requests)).toEqual(r1!.counters.map((c) => c.requests));
    calls[1]!.respond(new Uint8Array());
    req();
    tickFor(1);
    expect(calls).toHaveLength(3);
  });

  it("worker VMs of one proxy get distinct instance ids even when they read the same clock", async () => {
    // Envoy configures its identical worker VMs within one clock reading; with the clock as the only
    // difference they once got the same id, and their cumulative reports overwrote each other's.
    const clock = new ManualClock(1_700_000_000_000_000_000n);
    const shared = new SharedData(); // one proxy: the shared data of every worker VM
    const ids: string[] = [];
    for (let worker = 0; worker < 3; worker++) {
      const calls: Array<{ message: Uint8Array }> = [];
      const f = await newFilter({ groups: [mockGroup()], clock, shared, config: { cluster: "cp", reportIntervalMs: 1000, node: { id: "sidecar-1" } }, grpc: { onCall: (c: never) => calls.push(c) } });
      f.send({}, routeTo("mocka")).complete(); // something to report
      f.vm.tick();
      ids.push(fromBinary(TrafficReportSchema, calls[0].message).instanceId);
    }
    expect(new Set(ids).size).toBe(3);
    for (const id of ids) expect(id).toMatch(/^sidecar-1\/\d+\/[0-9a-f]{16}$/);
  });

  it("a stream that ends without response headers counts with status class 0", async () => {
    const calls: Array<{ message: Uint8Array }> = [];
    const f = await newFilter({ groups: [mockGroup()], config: { cluster: "cp" }, grpc: { onCall: (c: never) => calls.push(c) } });
    const s = f.send({}, routeTo("mockb"));
    s.complete();
    f.vm.tick();
    const r = fromBinary(TrafficReportSchema, calls[0].message);
    expect(r.counters).toHaveLength(1);
    expect(r.counters[0]).toMatchObject({ service: "mockb", lane: "base", statusClass: 0, requests: 1n });
  });

  it("inbound and edge passes are told apart by direction", async () => {
    const calls: Array<{ message: Uint8Array }> = [];
    const grpc = { onCall: (c: never) => calls.push(c) };
    const inbound = await newFilter({ groups: [mockGroup()], direction: "inbound", service: "mockc", config: { cluster: "cp" }, grpc });
    inbound.exchange({ "my-request-id": "x" });
    inbound.vm.tick();
    const edge = await newFilter({ groups: [mockGroup()], edge: true, config: { cluster: "cp" }, grpc });
    edge.exchange({ ":authority": "mocka" });
    edge.vm.tick();
    expect(fromBinary(TrafficReportSchema, calls[0].message).counters[0].direction).toBe(Direction.INBOUND);
    expect(fromBinary(TrafficReportSchema, calls[1].message).counters[0].direction).toBe(Direction.EDGE);
  });
});
