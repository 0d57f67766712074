// The real filter.wasm (in the Node host) against the real control-plane gRPC server: the wasm
// module's gRPC stream and calls are bridged to grpc-js over loopback, as Envoy would carry them.
import { afterEach, describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import { startGrpcServer } from "../../control-plane/src/xds/index.js";
import { TrafficIngest } from "../../control-plane/src/traffic/index.js";
import { grpcBridge, WasmVm } from "../../control-plane/src/wasmhost/index.js";
import { RealClock } from "../../control-plane/src/wasmhost/clock.js";
import { MemoryRuleSource } from "../support/rulesource.js";
import { mockGroup, newFilter, routeTo, type Filter } from "../support/filter.js";

const cleanups: Array<() => unknown> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

async function waitFor<T>(what: string, fn: () => T | undefined | false, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function controlPlane(groups: unknown[]) {
  const rules = new MemoryRuleSource(groups);
  const db = new Database(":memory:");
  const traffic = new TrafficIngest({ db, rules });
  const server = await startGrpcServer({ port: 0, rules, traffic });
  cleanups.push(() => server.close(), () => db.close());
  return { rules, traffic, server };
}

async function subscriber(port: number, nodeId: string, extra: Record<string, unknown> = {}): Promise<Filter> {
  const bridge = grpcBridge({ "graylane-control-plane": `127.0.0.1:${port}` });
  cleanups.push(() => bridge.close());
  return newFilter({
    clock: new RealClock() as never,
    grpc: bridge,
    config: { cluster: "graylane-control-plane", node: { id: nodeId }, reportIntervalMs: 100, ...extra },
  });
}

describe("filter.wasm subscribed to the control plane over gRPC", () => {
  it("receives the RuleSet on its first tick, ACKs it, and follows every change", async () => {
    const cp = await controlPlane([mockGroup()]);
    const f = await subscriber(cp.server.port, "sidecar-a");
    expect(f.decide({ "x-asm-prefer-tag": "canary" }, routeTo("mocka")).lane).toBeUndefined(); // no rules yet
    f.vm.tick();
    const v1 = cp.server.status().version;
    await waitFor("ACK of the first version", () => cp.server.status().nodes.find((n) => n.nodeId === "sidecar-a" && n.version === v1));
    expect(f.decide({ "x-asm-prefer-tag": "canary" }, routeTo("mocka")).route).toBe("canary");

    cp.rules.put(mockGroup({ lanes: [{ name: "canary", services: ["mocka", "mockc"] }] }));
    const v2 = cp.server.status().version;
    expect(v2).not.toBe(v1);
    await waitFor("ACK of the change", () => cp.server.status().nodes.find((n) => n.nodeId === "sidecar-a" && n.version === v2));
    expect(f.decide({ "x-asm-prefer-tag": "canary" }, routeTo("mockc")).route).toBe("canary");
    expect((f.vm as WasmVm).metric("graylane.ruleset_applied")?.value).toBe(2n);
  });

  it("keeps routing on the last good RuleSet when the control plane goes away", async () => {
    const cp = await controlPlane([mockGroup()]);
    const f = await subscriber(cp.server.port, "sidecar-b");
    f.vm.tick();
    await waitFor("ACK", () => cp.server.status().nodes.find((n) => n.nodeId === "sidecar-b" && n.version));
    await cp.server.close();
    await waitFor("the stream to close", () => f.vm.logs.some((l) => l.message.includes("rule stream closed")));
    expect(f.decide({ "x-asm-prefer-tag": "canary" }, routeTo("mocka")).route).toBe("canary");
    expect(f.vm.failed).toBe(false);
  });

  it("its traffic reports reach the control plane with exact totals", async () => {
    const cp = await controlPlane([mockGroup()]);
    const f = await subscriber(cp.server.port, "sidecar-c", { service: "mocka", direction: "inbound" });
    f.vm.tick();
    await waitFor("ACK", () => cp.server.status().nodes.find((n) => n.nodeId === "sidecar-c" && n.version));
    for (let i = 0; i < 30; i++) f.exchange({ "x-asm-prefer-tag": i < 10 ? "canary" : "base", "my-request-id": `t-${i}` }, i % 5 === 0 ? 503 : 200);
    await new Promise((r) => setTimeout(r, 120));
    f.vm.tick();
    const totals = await waitFor("the report", () => {
      const t = cp.traffic.totals("mock");
      return t.reduce((n, x) => n + x.requests, 0) === 30 && t;
    });
    const count = (lane: string, status: number) => totals.filter((t) => t.lane === lane && t.statusClass === status).reduce((n, t) => n + t.requests, 0);
    expect(count("canary", 2) + count("canary", 5)).toBe(10);
    expect(count("base", 5)).toBe(4); // i = 10, 15, 20, 25
    expect(count("canary", 5)).toBe(2); // i = 0, 5
  });

  it("report-now: the control plane asks and the filter reports at once, between intervals", async () => {
    const cp = await controlPlane([mockGroup()]);
    const f = await subscriber(cp.server.port, "sidecar-d", { service: "mocka", direction: "inbound", reportIntervalMs: 3_600_000 });
    f.vm.tick(); // opens the stream and sends the first (empty) report
    await waitFor("ACK", () => cp.server.status().nodes.find((n) => n.nodeId === "sidecar-d" && n.version));
    for (let i = 0; i < 7; i++) f.exchange({ "my-request-id": `r-${i}` });
    expect(cp.server.requestReports!()).toBe(1);
    await waitFor("the report", () => cp.traffic.totals("mock").reduce((n, x) => n + x.requests, 0) === 7);
  });
});
