// The filter's side of RuleDiscovery.StreamRules in the wasm host: opened on the first tick (never in
// on_configure), ACK and NACK, the last good RuleSet kept, reconnect with backoff.
import { describe, expect, it } from "vitest";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { RuleRequestSchema, RuleResponseSchema } from "../../control-plane/src/generated/graylane/v1/discovery_pb.js";
import { RuleSetSchema } from "../../control-plane/src/generated/graylane/v1/rules_pb.js";
import { ManualClock } from "../../control-plane/src/wasmhost/index.js";
import { base64, compileGroups, mockGroup, newFilter, routeTo } from "../support/filter.js";

type Stream = { service: string; serviceName: string; method: string; sent: Uint8Array[]; send(m: Uint8Array): void; close(status?: number): void };

async function subscribed(config: Record<string, unknown> = {}) {
  const clock = new ManualClock(1_700_000_000_000_000_000n);
  const streams: Stream[] = [];
  const f = await newFilter({
    clock, config: { cluster: "graylane-control-plane", node: { id: "sidecar-7", namespace: "shop" }, service: "mocka", reportIntervalMs: 0, ...config },
    grpc: { onStream: (s: Stream) => streams.push(s) },
  });
  return { f, clock, streams };
}

const requests = (s: Stream) => s.sent.map((m) => fromBinary(RuleRequestSchema, m));
const push = (s: Stream, bytes: Uint8Array, version: string, nonce: string) =>
  s.send(toBinary(RuleResponseSchema, create(RuleResponseSchema, { version, nonce, ruleSet: fromBinary(RuleSetSchema, bytes) })));

describe("rule stream (filter side)", () => {
  it("opens on the first tick, not in on_configure, and says who it is", async () => {
    const { f, streams } = await subscribed();
    expect(streams).toHaveLength(0);
    f.vm.tick();
    expect(streams).toHaveLength(1);
    expect(streams[0]).toMatchObject({ service: "graylane-control-plane", serviceName: "graylane.v1.RuleDiscovery", method: "StreamRules" });
    const [first] = requests(streams[0]);
    expect(first.node).toMatchObject({ id: "sidecar-7", namespace: "shop", service: "mocka", filterVersion: "0.1.0" });
    expect(first.node!.features).toContain("lanes/v1");
    expect(first.instanceId).toMatch(/^sidecar-7\//);
    expect(first.versionInfo).toBe("");
    expect(first.responseNonce).toBe("");
    f.vm.tick();
    expect(streams).toHaveLength(1);
  });

  it("reports the version of an initial RuleSet as the one it has", async () => {
    const initial = compileGroups([mockGroup()]);
    const { f, streams } = await subscribed({ ruleSet: base64(initial.bytes) });
    f.vm.tick();
    expect(requests(streams[0])[0].versionInfo).toBe(initial.version);
  });

  it("applies a pushed RuleSet and ACKs it; NACKs a bad one and keeps the last good", async () => {
    const { f, streams } = await subscribed();
    f.vm.tick();
    const s = streams[0];
    const good = compileGroups([mockGroup()]);
    push(s, good.bytes, good.version, "n-1");
    let [, ack] = requests(s);
    expect(ack).toMatchObject({ versionInfo: good.version, responseNonce: "n-1", errorDetail: "" });
    expect(ack.node).toBeUndefined();
    expect(f.decide({ "x-asm-prefer-tag": "canary" }, routeTo("mocka")).route).toBe("canary");

    const unsupported = compileGroups([mockGroup()]);
    const rs = fromBinary(RuleSetSchema, unsupported.bytes);
    rs.requiredFeatures.push("quantum/v1");
    s.send(toBinary(RuleResponseSchema, create(RuleResponseSchema, { version: "v-bad", nonce: "n-2", ruleSet: rs })));
    const nack = requests(s)[2];
    expect(nack).toMatchObject({ versionInfo: good.version, responseNonce: "n-2" });
    expect(nack.errorDetail).toContain("unsupported required feature quantum/v1");
    expect(f.decide({ "x-asm-prefer-tag": "canary" }, routeTo("mocka")).route).toBe("canary");
    expect(f.vm.failed).toBe(false);

    const next = compileGroups([mockGroup({ lanes: [{ name: "canary", services: ["mocka", "mockc"] }] })]);
    push(s, next.bytes, next.version, "n-3");
    [, , , ack] = requests(s);
    expect(ack).toMatchObject({ versionInfo: next.version, responseNonce: "n-3", errorDetail: "" });
    expect(f.decide({ "x-asm-prefer-tag": "canary" }, routeTo("mockc")).route).toBe("canary");
  });

  it("garbage from the control plane never traps", async () => {
    const { f, streams } = await subscribed();
    f.vm.tick();
    streams[0].send(new Uint8Array([0xff, 0xff, 0xff, 0x01, 0x02]));
    streams[0].send(new Uint8Array([0x1a, 0x03, 0xff, 0xff, 0xff]));
    expect(f.vm.failed).toBe(false);
    const nacks = requests(streams[0]).filter((r) => r.errorDetail !== "");
    expect(nacks).toHaveLength(1); // the second one had a (garbage) RuleSet: refused with a reason
    expect(nacks[0].errorDetail).toMatch(/malformed RuleSet/);
  });

  it("reconnects after the stream closes, with backoff, keeping the rules meanwhile", async () => {
    const { f, clock, streams } = await subscribed();
    f.vm.tick();
    const good = compileGroups([mockGroup()]);
    push(streams[0], good.bytes, good.version, "n-1");
    streams[0].close(14);
    expect(f.decide({ "x-asm-prefer-tag": "canary" }, routeTo("mocka")).route).toBe("canary");
    f.vm.tick();
    expect(streams).toHaveLength(1); // waits at least 250 ms (half the first backoff)
    clock.advanceMs(501);
    f.vm.tick();
    expect(streams).toHaveLength(2);
    expect(requests(streams[1])[0]).toMatchObject({ versionInfo: good.version, responseNonce: "" });
    expect(requests(streams[1])[0].instanceId).toBe(requests(streams[0])[0].instanceId);
    // repeated failures back off further: the second reconnect waits 500-1000 ms
    streams[1].close(14);
    clock.advanceMs(450);
    f.vm.tick();
    expect(streams).toHaveLength(2);
    clock.advanceMs(600);
    f.vm.tick();
    expect(streams).toHaveLength(3);
  });

  it("report-now from the control plane sends the traffic report at once, without an ACK", async () => {
    const calls: Array<{ method: string }> = [];
    const clock = new ManualClock(1_700_000_000_000_000_000n);
    const streams: Stream[] = [];
    const f = await newFilter({
      clock, groups: [mockGroup()],
      config: { cluster: "cp", reportIntervalMs: 3_600_000 },
      grpc: { onStream: (s: Stream) => streams.push(s), onCall: (c: { method: string }) => calls.push(c) },
    });
    f.vm.tick(); // first tick: the stream; no periodic report (nothing counted yet)
    expect(calls).toHaveLength(0);
    streams[0].send(toBinary(RuleResponseSchema, create(RuleResponseSchema, { reportNow: true })));
    expect(calls).toHaveLength(1); // asked for: sent even with nothing new
    expect(calls[0].method).toBe("Report");
    expect(requests(streams[0])).toHaveLength(1); // nothing to ACK
  });
});
