// control-plane/src/mesh/gateway-api.ts: the lane routes as Gateway API objects. The API server's
// own judgement of them (Gateway API's CRDs and CEL rules): test/e2e/kube-controller.test.ts.
import { describe, expect, it } from "vitest";
import { parseLaneGroup, type LaneGroup } from "../../control-plane/src/model/lanegroup.js";
import { gatewayApiObjects, MAX_RULES } from "../../control-plane/src/mesh/gateway-api.js";
import { mockGroup } from "../support/filter.js";

const group = (input: Record<string, unknown>): LaneGroup => {
  const r = parseLaneGroup(input);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
};

describe("Gateway API objects", () => {
  it("a Service per lane of each service (base too), a mesh HTTPRoute per service, an ingress HTTPRoute per service with paths", () => {
    const objs = gatewayApiObjects([group(mockGroup())], { gateway: { name: "public", namespace: "istio-ingress" }, hostnames: ["shop.example.com"], targetPort: 8080 });
    const ingress = objs.find((o) => o.metadata.name === "graylane-mocka-ingress")!;
    expect(ingress.spec).toEqual({
      parentRefs: [{ name: "public", namespace: "istio-ingress" }],
      hostnames: ["shop.example.com"],
      rules: [
        { matches: [{ path: { type: "PathPrefix", value: "/mock" }, headers: [{ type: "Exact", name: "x-graylane-route", value: "canary" }] }], backendRefs: [{ name: "graylane-mocka-canary", port: 80 }] },
        { matches: [{ path: { type: "PathPrefix", value: "/mock" } }], backendRefs: [{ name: "graylane-mocka-base", port: 80 }] },
      ],
    });
    const svc = objs.find((o) => o.metadata.name === "graylane-mockb-base")!;
    expect(svc.spec).toEqual({ selector: { app: "mockb", "graylane.io/lane": "base" }, ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP", appProtocol: "http" }] });
    expect(svc.metadata.labels).toEqual({ "app.kubernetes.io/managed-by": "graylane", "graylane.io/group": "mock", "graylane.io/lane": "base" });
    expect(gatewayApiObjects([group(mockGroup())], { gateway: false }).some((o) => o.metadata.name.endsWith("-ingress"))).toBe(false);
  });

  it("gRPC services get h2c Services; lane labels follow the options; more lanes than a route holds is refused by name", () => {
    const g = group(mockGroup({ services: [{ name: "mocka", protocol: "grpc" }, { name: "mockb" }, { name: "mockc" }] }));
    const objs = gatewayApiObjects([g], { laneLabels: { canary: { ASM_TRAFFIC_TAG: "canary" } }, services: ["mocka"] });
    expect(objs.map((o) => o.metadata.name)).toEqual(["graylane-mocka-base", "graylane-mocka-canary", "graylane-mocka"]);
    expect(objs[1]!.spec).toMatchObject({ selector: { app: "mocka", ASM_TRAFFIC_TAG: "canary" }, ports: [{ name: "grpc", appProtocol: "kubernetes.io/h2c" }] });
    const many = group({ name: "many", services: [{ name: "s" }], lanes: Array.from({ length: MAX_RULES }, (_, i) => ({ name: `l${i}`, services: ["s"] })) });
    expect(() => gatewayApiObjects([many])).toThrow("service s of lane group many has 17 lanes: an HTTPRoute holds at most 16 rules");
  });
});
