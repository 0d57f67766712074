// The mesh controller's pure parts (control-plane/src/controller): workload discovery, the lanes it
// adds to a group, the objects wanted per group and namespace, and what a WasmPlugin keeps. The
// controller against a real API server: test/e2e/kube-controller.test.ts.
import { describe, expect, it } from "vitest";
import { parseLaneGroup, type LaneGroup } from "../../control-plane/src/model/lanegroup.js";
import { discoverLanes, withDiscovered, workloadOf, type Workload } from "../../control-plane/src/controller/workloads.js";
import { desiredObjects, serviceNamespace, toApply } from "../../control-plane/src/controller/desired.js";
import { DiscoveredRules } from "../../control-plane/src/controller/discovered-rules.js";
import { discoveredText } from "../../control-plane/src/controller/mesh-controller.js";
import { syncedVerdict } from "../../control-plane/src/controller/synced.js";
import { MemoryRuleSource } from "../support/rulesource.js";

const group = (input: Record<string, unknown>): LaneGroup => {
  const r = parseLaneGroup({ name: "mock", services: [{ name: "mocka" }, { name: "mockb" }, { name: "mockc", hosts: ["mockc.shop.svc.cluster.local"] }], ...input });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
};
const wl = (name: string, labels: Record<string, string>, available = 1, kind: Workload["kind"] = "Deployment"): Workload => ({ kind, namespace: "default", name, labels, available });
const WASM = { url: "oci://registry.example.com/graylane/filter:0.1.0" };

describe("workload discovery", () => {
  const seed004 = group({ autoLanes: true, lanes: [{ name: "canary", labels: { ASM_TRAFFIC_TAG: "canary" } }, { name: "blue" }] });

  it("a lane's services: the group's services with an available workload carrying the lane's labels (per-lane labels, else graylane.io/lane)", () => {
    const workloads = [
      wl("mocka-v1", { app: "mocka" }),
      wl("mocka-v1-canary", { app: "mocka", ASM_TRAFFIC_TAG: "canary" }),
      wl("mockb-canary-rs", { app: "mockb", ASM_TRAFFIC_TAG: "canary" }, 0, "ReplicaSet"), // not available yet
      { ...wl("mockc-blue", { app: "mockc", "graylane.io/lane": "blue" }, 2, "ReplicaSet"), namespace: "shop" }, // mockc's hosts say shop
      wl("other-canary", { app: "other", ASM_TRAFFIC_TAG: "canary" }), // not a service of the group
      wl("mockb-wrongkey", { app: "mockb", "graylane.io/lane": "canary" }), // canary's labels are ASM_TRAFFIC_TAG
      { ...wl("mocka-staging-canary", { app: "mocka", ASM_TRAFFIC_TAG: "canary" }), namespace: "staging" }, // another namespace's mocka
      { ...wl("mockb-staging-canary", { app: "mockb", ASM_TRAFFIC_TAG: "canary" }), namespace: "staging" },
    ];
    expect(discoverLanes(seed004, workloads)).toEqual({ canary: ["mocka"], blue: ["mockc"] });
    // mockc's hosts put it in namespace shop: its workloads count there only.
    expect(discoverLanes(seed004, [wl("c-blue", { app: "mockc", "graylane.io/lane": "blue" })])).toEqual({});
    expect(discoverLanes(seed004, [wl("b", { app: "mockb", ASM_TRAFFIC_TAG: "canary" })], "staging")).toEqual({});
    expect(discoverLanes({ ...seed004, autoLanes: false }, workloads)).toEqual({});
    expect(discoverLanes(group({ autoLanes: true, serviceLabelKey: "svc", laneLabelKey: "track", lanes: [{ name: "blue" }] }), [wl("x", { svc: "mockb", track: "blue" })])).toEqual({ blue: ["mockb"] });
  });

  it("reads Deployments and ReplicaSets as the API server returns them; availability from status", () => {
    expect(workloadOf("Deployment", { metadata: { name: "d", namespace: "shop" }, spec: { template: { metadata: { labels: { app: "a" } } } }, status: { availableReplicas: 2 } }))
      .toEqual({ kind: "Deployment", namespace: "shop", name: "d", labels: { app: "a" }, available: 2 });
    expect(workloadOf("ReplicaSet", { metadata: { name: "r" } }).available).toBe(0);
  });

  it("discovered services join the lane (in the group's order), the spec's stay; nothing discovered leaves the group as it is", () => {
    const g = group({ autoLanes: true, lanes: [{ name: "canary", services: ["mockc"] }] });
    expect(withDiscovered(g, { canary: ["mocka"] }).lanes[0]!.services).toEqual(["mocka", "mockc"]);
    expect(withDiscovered(g, {})).toBe(g);
    expect(g.lanes[0]!.services).toEqual(["mockc"]); // the spec is not touched
    expect(discoveredText({ canary: ["mocka", "mockc"], blue: ["mockb"] })).toBe("blue: mockb; canary: mocka, mockc");
  });

  it("DiscoveredRules: the store's groups with discovery applied; a change is heard only when membership changes", () => {
    const source = new MemoryRuleSource([group({ autoLanes: true, lanes: [{ name: "canary" }] })]);
    const rules = new DiscoveredRules(source);
    const heard: number[] = [];
    rules.onChange((r) => heard.push(r));
    expect(rules.current().groups[0]!.lanes[0]!.services).toEqual([]);
    expect(rules.setDiscovered(new Map([["mock", { canary: ["mockb"] }]]))).toBe(true);
    expect(rules.current().groups[0]!.lanes[0]!.services).toEqual(["mockb"]);
    expect(rules.setDiscovered(new Map([["mock", { canary: ["mockb"] }]]))).toBe(false);
    expect(rules.setDiscovered(new Map())).toBe(true);
    expect(rules.current().groups[0]!.lanes[0]!.services).toEqual([]);
    expect(heard).toHaveLength(2);
  });
});

describe("desired mesh objects", () => {
  it("per service, in the namespace its hosts name; subsets from the lane labels; every object labelled for its group", () => {
    const g = withDiscovered(group({ autoLanes: true, lanes: [{ name: "canary", labels: { ASM_TRAFFIC_TAG: "canary" } }] }), { canary: ["mocka"] });
    const want = desiredObjects([g], { wasm: WASM, namespace: "default" });
    expect([...want.keys()].sort()).toEqual([
      "DestinationRule/default/graylane-mocka", "DestinationRule/default/graylane-mockb", "DestinationRule/shop/graylane-mockc",
      "VirtualService/default/graylane-mocka", "VirtualService/default/graylane-mockb", "VirtualService/shop/graylane-mockc",
      "WasmPlugin/default/graylane-mocka", "WasmPlugin/default/graylane-mockb", "WasmPlugin/istio-system/graylane-gateway", "WasmPlugin/shop/graylane-mockc",
    ]);
    const dr = want.get("DestinationRule/default/graylane-mocka") as { spec: { host: string; subsets: unknown[] }; metadata: { labels: Record<string, string> } };
    expect(dr.spec.subsets).toEqual([{ name: "base", labels: { "graylane.io/lane": "base" } }, { name: "canary", labels: { ASM_TRAFFIC_TAG: "canary" } }]);
    expect(dr.metadata.labels).toEqual({ "app.kubernetes.io/managed-by": "graylane", "graylane.io/group": "mock" });
    expect((want.get("DestinationRule/shop/graylane-mockc") as { spec: { host: string } }).spec.host).toBe("mockc.shop.svc.cluster.local");
    expect((want.get("WasmPlugin/istio-system/graylane-gateway") as { metadata: { labels: Record<string, string> } }).metadata.labels).toEqual({ "app.kubernetes.io/managed-by": "graylane" });
    expect(desiredObjects([], { wasm: WASM }).size).toBe(0);
    expect(serviceNamespace({ name: "a", hosts: ["a.team-x"] }, "d")).toBe("team-x");
    expect(serviceNamespace({ name: "a", hosts: ["a", "api.example.com"] }, "d")).toBe("d");
  });

  it("a WasmPlugin in the cluster keeps the RuleSet it was created with; other objects and new plugins are applied as wanted", () => {
    const want = [...desiredObjects([group({})], { wasm: WASM }).values()];
    const wp = want.find((o) => o.kind === "WasmPlugin")!;
    expect(toApply(wp, undefined)).toBe(wp);
    const kept = toApply(wp, { spec: { pluginConfig: { ruleSet: "OLD" } } }) as unknown as { spec: { pluginConfig: { ruleSet: string; service?: string } } };
    expect(kept.spec.pluginConfig.ruleSet).toBe("OLD");
    expect(kept.spec.pluginConfig.service).toBe((wp as { spec: { pluginConfig: { service?: string } } }).spec.pluginConfig.service);
    const dr = want.find((o) => o.kind === "DestinationRule")!;
    expect(toApply(dr, { spec: { pluginConfig: { ruleSet: "OLD" } } })).toBe(dr);
  });
});

describe("the Synced condition", () => {
  const sub = (ackedVersion: string, extra: Record<string, unknown> = {}) => ({ nodeId: "n", instanceId: `i-${Math.random()}`, connected: true, ackedVersion, connectedAt: "", ...extra });
  const st = (subscribers: unknown[], version = "v3") => ({ version, revision: 3, nodes: [{ nodeId: "n", version, subscribers: subscribers as never }] });
  const revisionOf = (v: string) => ({ v1: 1, v2: 2, v3: 3 } as Record<string, number>)[v];

  it("True when every live subscriber holds a version from the group's revision or later; counts; NACKs named; none live", () => {
    expect(syncedVerdict(2, st([sub("v2"), sub("v3"), sub("v1", { connected: false })]), revisionOf)).toMatchObject({ status: "True", reason: "Synced", synced: 2, live: 2, message: "2 of 2 live subscribers hold revision 2 or later" });
    expect(syncedVerdict(3, st([sub("v2"), sub("v3")]), revisionOf)).toMatchObject({ status: "False", reason: "Pending", synced: 1, live: 2 });
    const nacked = syncedVerdict(3, st([sub("v2", { lastNack: { version: "v3", error: "required feature instance-lane missing", at: "" } }), sub("v3")]), revisionOf);
    expect(nacked).toMatchObject({ status: "False", reason: "Nacked" });
    expect(nacked.message).toContain("NACKed: n: required feature instance-lane missing");
    expect(syncedVerdict(1, st([sub("unknown-version")]), revisionOf).status).toBe("False"); // a version not seen served: not counted
    expect(syncedVerdict(1, st([]), revisionOf)).toMatchObject({ status: "False", reason: "NoSubscribers" });
  });
});
