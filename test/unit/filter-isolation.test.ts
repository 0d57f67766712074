// Strict isolation (DESIGN.md decision step 3b, lane group field `isolation`): in a strict group, a
// request with no override, propagated lane or remembered trace that leaves (outbound side) an
// instance of a lane other than base is in that instance's lane, counted as source `instance`. The
// instance lane is plugin config node.lane, else the node metadata LABELS' lane label (Istio), read
// once per configuration.
import { describe, expect, it } from "vitest";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { DecisionSource, Direction, TrafficReportSchema } from "../../control-plane/src/generated/graylane/v1/traffic_pb.js";
import { RuleRequestSchema, RuleResponseSchema } from "../../control-plane/src/generated/graylane/v1/discovery_pb.js";
import { RuleSetSchema } from "../../control-plane/src/generated/graylane/v1/rules_pb.js";
import { ManualClock, SharedData } from "../../control-plane/src/wasmhost/index.js";
import { base64, compileGroups, mockGroup, newFilter, routeTo, type FilterOptions } from "../support/filter.js";
import { decidedBy } from "../support/lanes.js";

/** mock with canary on mocka and mockc (mockb has no canary instance: it falls back to base). */
const strict = (overrides: Record<string, unknown> = {}) => mockGroup({
  isolation: "strict",
  lanes: [
    { name: "canary", services: ["mocka", "mockc"], match: [{ headers: { grayrelease: { exact: "version2" } } }] },
    { name: "dev", services: ["mockc"], fallback: "canary" },
  ],
  ...overrides,
});
const toMockc = routeTo("mockc");
const sidecar = (lane: string | undefined, groups: unknown[] = [strict()], extra: Partial<FilterOptions> = {}) =>
  newFilter({ groups, ...extra, config: { ...(lane === undefined ? {} : { node: { lane } }), ...(extra.config ?? {}) } });

describe("strict isolation: decision step 3b", () => {
  it("a sidecar of a canary instance: a request without lane headers leaving it is canary, source instance", async () => {
    const f = await sidecar("canary");
    let r!: ReturnType<typeof f.decide>;
    expect(decidedBy(f, () => { r = f.decide({ ":path": "/" }, toMockc); })).toBe("canary/instance");
    expect(r.lane).toBe("canary");
    expect(r.route).toBe("canary");
    expect(r.stream.requestHeader("baggage")).toBe("graylane=canary");
    expect(f.vm.metric("graylane.group.mock.lane.canary.source.instance.requests")?.value).toBe(1n);
    // the destination's lane routing still applies: mockb has no canary instance, so base serves it
    const b = f.decide({}, routeTo("mockb"));
    expect([b.lane, b.route]).toEqual(["canary", "base"]);
    // a lane whose fallback is another lane: dev instance → dev lane, route down the chain
    const d = await sidecar("dev");
    expect(d.decide({}, routeTo("mocka"))).toMatchObject({ lane: "dev", route: "canary" });
  });

  it("a permissive group (the default) is unchanged: base, no instance stat defined", async () => {
    const f = await sidecar("canary", [strict({ isolation: undefined })]);
    expect(decidedBy(f, () => f.decide({}, toMockc))).toBe("base/base");
    expect(f.vm.metric("graylane.group.mock.lane.canary.source.instance.requests")).toBeUndefined();
    const p = await sidecar("canary", [strict({ isolation: "permissive" })]);
    expect(decidedBy(p, () => p.decide({}, toMockc))).toBe("base/base");
  });

  it("override, propagated lane (header, baggage) and trace memory still win; instance beats rules and weights", async () => {
    const shared = new SharedData();
    const f = await sidecar("canary", [strict({ overrideHeader: "x-asm-prefer-tag" })], { shared });
    expect(decidedBy(f, () => f.decide({ "x-asm-prefer-tag": "dev" }, toMockc))).toBe("dev/override");
    expect(decidedBy(f, () => f.decide({ "x-graylane-lane": "base" }, toMockc))).toBe("base/header");
    expect(decidedBy(f, () => f.decide({ baggage: "graylane=dev" }, toMockc))).toBe("dev/baggage");
    // trace memory: the inbound side remembered base for t-1
    const inbound = await newFilter({ groups: [strict()], direction: "inbound", service: "mockb", shared });
    expect(decidedBy(inbound, () => inbound.decide({ "my-request-id": "t-1" }))).toBe("base/base");
    expect(decidedBy(f, () => f.decide({ "my-request-id": "t-1" }, toMockc))).toBe("base/trace");
    // unknown trace: instance
    expect(decidedBy(f, () => f.decide({ "my-request-id": "t-2" }, toMockc))).toBe("canary/instance");
    // the instance beats a rule naming another lane, and a weight
    const w = await sidecar("dev", [strict({ lanes: [
      { name: "canary", services: ["mocka", "mockc"], weight: 100, match: [{ headers: { grayrelease: { exact: "version2" } } }] },
      { name: "dev", services: ["mockc"] },
    ] })]);
    expect(decidedBy(w, () => w.decide({ grayrelease: "version2" }, toMockc))).toBe("dev/instance");
    expect(decidedBy(w, () => w.decide({ "x-user-id": "u1" }, toMockc))).toBe("dev/instance");
  });

  it("a base instance, no node lane, or a lane that is not the group's: no step (rules go on)", async () => {
    for (const lane of ["base", undefined, "ghost", ""]) {
      const f = await sidecar(lane);
      expect(decidedBy(f, () => f.decide({}, toMockc)), String(lane)).toBe("base/base");
      expect(decidedBy(f, () => f.decide({ grayrelease: "version2" }, toMockc)), String(lane)).toBe("canary/rule");
    }
    // a group whose base lane has another name: that name is base too
    const f = await sidecar("stable", [strict({ baseLane: "stable" })]);
    expect(decidedBy(f, () => f.decide({}, toMockc))).toBe("stable/base");
  });

  it("the inbound side and the edge take no step: it is the instance a request leaves that counts", async () => {
    const inbound = await newFilter({ groups: [strict()], direction: "inbound", service: "mockc", config: { node: { lane: "canary" } } });
    expect(decidedBy(inbound, () => inbound.decide({}))).toBe("base/base");
    const edge = await newFilter({ groups: [strict()], edge: true, config: { node: { lane: "canary" } } });
    expect(decidedBy(edge, () => edge.decide({ ":authority": "mockc", ":path": "/" }))).toBe("base/base");
  });

  it("Istio: the lane label of the node metadata LABELS, read once at configure; node.lane wins", async () => {
    const labels = { app: "mockc", "graylane.io/lane": "canary", version: "v2" };
    const f = await newFilter({ groups: [strict()], properties: { "node.metadata.LABELS": labels } });
    expect(decidedBy(f, () => f.decide({}, toMockc))).toBe("canary/instance");
    // read at configure: a later change of the property changes nothing until the next configure
    f.vm.properties.set("node.metadata.LABELS", { ...labels, "graylane.io/lane": "dev" });
    expect(decidedBy(f, () => f.decide({}, toMockc))).toBe("canary/instance");
    expect(f.vm.configure(JSON.stringify({ ruleSet: base64(compileGroups([strict()]).bytes) }))).toBe(true);
    expect(decidedBy(f, () => f.decide({}, toMockc))).toBe("dev/instance");
    // node.lane, when set, wins over the labels
    const g = await newFilter({ groups: [strict()], properties: { "node.metadata.LABELS": labels }, config: { node: { lane: "dev" } } });
    expect(decidedBy(g, () => g.decide({}, toMockc))).toBe("dev/instance");
    // another label key (IstioOptions.laneLabelKey), and no such label
    const k = await newFilter({ groups: [strict()], properties: { "node.metadata.LABELS": { "example.com/lane": "dev" } }, config: { node: { laneLabelKey: "example.com/lane" } } });
    expect(decidedBy(k, () => k.decide({}, toMockc))).toBe("dev/instance");
    const none = await newFilter({ groups: [strict()], properties: { "node.metadata.LABELS": { app: "mockc" } } });
    expect(decidedBy(none, () => none.decide({}, toMockc))).toBe("base/base");
    // malformed LABELS bytes: no lane, no trap
    const bad = await newFilter({ groups: [strict()], properties: { "node.metadata.LABELS": new Uint8Array([9, 0, 0, 0, 1]) } });
    expect(decidedBy(bad, () => bad.decide({}, toMockc))).toBe("base/base");
    expect(bad.vm.failed).toBe(false);
  });

  it("node.laneLabelKey must be a non-empty string", async () => {
    await expect(newFilter({ config: { node: { laneLabelKey: "" } } })).rejects.toThrow(/node.laneLabelKey: want a label key/);
    await expect(newFilter({ config: { node: { laneLabelKey: 3 } } })).rejects.toThrow(/node.laneLabelKey: want a string/);
  });

  it("the instance lane resolves again when a new RuleSet adds or drops the lane", async () => {
    const f = await sidecar("dev", [strict({ lanes: [{ name: "canary", services: ["mockc"] }] })]);
    expect(decidedBy(f, () => f.decide({}, toMockc))).toBe("base/base");
    expect(f.vm.configure(JSON.stringify({ node: { lane: "dev" }, ruleSet: base64(compileGroups([strict()]).bytes) }))).toBe(true);
    expect(decidedBy(f, () => f.decide({}, toMockc))).toBe("dev/instance");
  });

  it("its limit: a base-only hop in the middle drops the lane, unless trace memory restores it", async () => {
    // canary mocka → base mockb (no canary instance, a base sidecar) → mockc, the app forwarding no header.
    const shared = new SharedData();
    const mocka = await sidecar("canary", [strict()], { shared });
    const mockbIn = await newFilter({ groups: [strict()], direction: "inbound", service: "mockb", shared });
    const mockbOut = await sidecar("base", [strict()], { shared });
    // Leaving canary mocka for mockb: canary lane, routed to base mockb (it has no canary instance).
    expect(mocka.decide({}, routeTo("mockb"))).toMatchObject({ lane: "canary", route: "base" });
    // mockb's app forwards nothing: at mockb's outbound side the lane is gone (base instance, no step).
    expect(decidedBy(mockbOut, () => mockbOut.decide({}, toMockc))).toBe("base/base");
    // With a trace id forwarded, mockb's inbound side remembers canary and its outbound side restores it.
    expect(decidedBy(mockbIn, () => mockbIn.decide({ "x-graylane-lane": "canary", "my-request-id": "t-9" }))).toBe("canary/header");
    expect(decidedBy(mockbOut, () => mockbOut.decide({ "my-request-id": "t-9" }, toMockc))).toBe("canary/trace");
  });

  it("counted as DECISION_SOURCE_INSTANCE in the traffic report, apart from the other sources", async () => {
    const calls: Array<{ message: Uint8Array }> = [];
    const f = await newFilter({
      groups: [strict()], clock: new ManualClock(1_700_000_000_000_000_000n),
      config: { cluster: "cp", reportIntervalMs: 1000, node: { id: "s-1", lane: "canary" } },
      grpc: { onCall: (c: never) => calls.push(c) },
    });
    for (let i = 0; i < 3; i++) f.decide({}, toMockc);
    f.decide({ "x-graylane-lane": "canary" }, toMockc);
    f.decide({ "x-graylane-lane": "base" }, toMockc);
    f.vm.tick();
    const r = fromBinary(TrafficReportSchema, calls[0].message);
    const rows = r.counters.map((c) => [c.source, c.lane, c.route, c.direction, c.requests]).sort();
    expect(rows).toEqual([
      [DecisionSource.HEADER, "base", "base", Direction.OUTBOUND, 1n],
      [DecisionSource.HEADER, "canary", "canary", Direction.OUTBOUND, 1n],
      [DecisionSource.INSTANCE, "canary", "canary", Direction.OUTBOUND, 3n],
    ].sort());
  });
});

describe("strict isolation: safe upgrades (required_features)", () => {
  it("the filter advertises instance-lane; it applies a RuleSet requiring it, and NACKs one requiring an unknown feature", async () => {
    const streams: Array<{ sent: Uint8Array[]; send(m: Uint8Array): void }> = [];
    const f = await newFilter({ clock: new ManualClock(1_700_000_000_000_000_000n), config: { cluster: "cp", node: { id: "s-1", lane: "canary" }, reportIntervalMs: 0 }, grpc: { onStream: (s: never) => streams.push(s) } });
    f.vm.tick();
    const first = fromBinary(RuleRequestSchema, streams[0].sent[0]);
    expect(first.node!.features).toContain("instance-lane");
    expect(first.node!.lane).toBe("canary");
    const c = compileGroups([strict()]);
    const rs = fromBinary(RuleSetSchema, c.bytes);
    expect(rs.requiredFeatures).toEqual(["instance-lane"]);
    streams[0].send(toBinary(RuleResponseSchema, create(RuleResponseSchema, { version: c.version, nonce: "n-1", ruleSet: rs })));
    const ack = fromBinary(RuleRequestSchema, streams[0].sent[1]);
    expect(ack).toMatchObject({ versionInfo: c.version, responseNonce: "n-1", errorDetail: "" });
    expect(f.decide({}, toMockc).lane).toBe("canary");
    // An older filter lacks the feature as this one lacks "instance-lane/v2": it NACKs, keeps its rules.
    rs.requiredFeatures.push("instance-lane/v2");
    streams[0].send(toBinary(RuleResponseSchema, create(RuleResponseSchema, { version: "v-2", nonce: "n-2", ruleSet: rs })));
    const nack = fromBinary(RuleRequestSchema, streams[0].sent[2]);
    expect(nack).toMatchObject({ versionInfo: c.version, responseNonce: "n-2" });
    expect(nack.errorDetail).toContain("unsupported required feature instance-lane/v2");
  });

  it("required_features lists instance-lane only when some group is strict", () => {
    expect(fromBinary(RuleSetSchema, compileGroups([strict()]).bytes).requiredFeatures).toEqual(["instance-lane"]);
    expect(fromBinary(RuleSetSchema, compileGroups([strict({ isolation: "permissive" })]).bytes).requiredFeatures).toEqual([]);
    expect(fromBinary(RuleSetSchema, compileGroups([mockGroup()]).bytes).requiredFeatures).toEqual([]);
  });
});
