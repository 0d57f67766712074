// control-plane/src/mesh/istio.ts (the CLI: test/integration/mesh-manifests.test.ts): every generated object passes the
// Istio CRD schemas (Istio 1.30.3's, test/support/istio-schemas.ts), the WasmPlugin's pluginConfig is accepted by the
// real filter.wasm, and the VirtualServices route each request the filter decided to the subset
// named by the route header it wrote (its lane, or the fallback the filter chose; base by default).
import { describe, expect, it } from "vitest";
import { compileRuleSet } from "../../control-plane/src/compile/index.js";
import { parseLaneGroup, type LaneGroup } from "../../control-plane/src/model/lanegroup.js";
import {
  istioObjects, lanesOf, routePatches, type HttpRoute, type IstioObject, type IstioOptions,
} from "../../control-plane/src/mesh/istio.js";
import { gatewayConfig, sidecarConfig, type Topology } from "../../control-plane/src/mesh/envoy-config.js";
import { mockGroup, newFilter } from "../support/filter.js";
import { shopGroup } from "../support/lanes.js";
import { byKind, validateIstio } from "../support/istio-schemas.js";

const group = (input: unknown): LaneGroup => {
  const r = parseLaneGroup(input);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
};

const WASM = { url: "oci://registry.example.com/graylane/filter:0.1.0", sha256: "a".repeat(64) };

/** Validates an object against its Istio CRD schema and CEL rules (throws with every problem). */
const validate = (obj: IstioObject): void => validateIstio(obj);

describe("the Istio schema check itself", () => {
  it("refuses what Istio's CRDs refuse, naming the place", () => {
    const dr = { apiVersion: "networking.istio.io/v1", kind: "DestinationRule", metadata: { name: "d" } };
    expect(() => validateIstio({ ...dr, spec: { host: "h", subsets: [{ name: "a", labels: { v: 1 } }] } } as never)).toThrow(/\/spec\/subsets\/0\/labels\/v must be string/);
    expect(() => validateIstio({ ...dr, spec: { host: "h", trafficPolicy: { loadBalancer: { simple: "FASTEST" } } } } as never)).toThrow(/simple must be equal to one of the allowed values/);
    expect(() => validateIstio({ ...dr, apiVersion: "networking.istio.io/v2" } as never)).toThrow(/no Istio CRD schema/);
    expect(() => validateIstio({ ...dr, spec: { host: "h" } } as never)).not.toThrow();
  });
});

/** The first route of a VirtualService matching the request (Istio semantics for what we generate). */
function matchRoute(http: HttpRoute[], path: string, headers: Array<[string, string]>): HttpRoute | undefined {
  const header = (n: string) => headers.find(([k]) => k === n)?.[1];
  return http.find((r) => !r.match || r.match.some((m) =>
    (!m.uri || path.split("?")[0].startsWith((m.uri as { prefix: string }).prefix)) &&
    Object.entries(m.headers ?? {}).every(([n, sm]) => header(n) === (sm as { exact: string }).exact)));
}

/** Where the filter sends lane `lane` for `service`: the lane if it has it, else down its fallback chain. */
function expectedRoute(g: LaneGroup, lane: string, service: string): string {
  let at = lane;
  while (at !== g.baseLane) {
    const l = g.lanes.find((x) => x.name === at)!;
    if (l.services.includes(service)) return at;
    at = l.fallback;
  }
  return g.baseLane;
}

/** The route values the filter writes for `service`, whatever the lane (base excluded), sorted. */
function written(g: LaneGroup, service: string): string[] {
  return [...new Set(g.lanes.map((l) => expectedRoute(g, l.name, service)))].filter((r) => r !== g.baseLane).sort();
}

const cases: Array<{ name: string; group: LaneGroup; opts: IstioOptions }> = [
  { name: "mock (DESIGN.md), base on version: v1", group: group(mockGroup()), opts: { wasm: WASM, laneLabels: { base: { version: "v1" } } } },
  {
    name: "shop: three lanes, chained fallbacks, a mixed-case route header, its own label key",
    group: group(shopGroup({ routeHeader: "X-Shop-Route" })),
    opts: { wasm: WASM, namespace: "shop", laneLabelKey: "example.com/lane", gateway: { gateway: "istio-system/public", namespace: "istio-ingress", selector: { app: "gw" }, hosts: ["shop.example.com"] } },
  },
];

describe("Istio objects", () => {
  for (const { name, group: g, opts } of cases) {
    describe(name, () => {
      const objects = istioObjects([g], opts);

      it("every object passes the Istio CRD schemas, in apply order", () => {
        for (const obj of objects) validate(obj);
        const services = g.services.map((s) => s.name);
        expect(objects.map((o) => `${o.kind}/${o.metadata?.name}`)).toEqual([
          ...services.map((s) => `WasmPlugin/graylane-${s}`), "WasmPlugin/graylane-gateway",
          ...services.map((s) => `DestinationRule/graylane-${s}`),
          ...services.map((s) => `VirtualService/graylane-${s}`),
          `VirtualService/graylane-${g.name}-ingress`,
        ]);
      });

      it("WasmPlugins: FAIL_OPEN, phase, selector, module, the control-plane cluster and the group's RuleSet", () => {
        const plugins = byKind(objects, "WasmPlugin");
        const ruleSet = Buffer.from(compileRuleSet([g]).bytes).toString("base64");
        for (const p of plugins) {
          expect(p.spec).toMatchObject({
            url: WASM.url, sha256: WASM.sha256, pluginName: "graylane", type: "HTTP",
            phase: "STATS", priority: 1000, failStrategy: "FAIL_OPEN",
            pluginConfig: { cluster: "outbound|7071||graylane-control-plane.graylane-system.svc.cluster.local", ruleSet },
          });
        }
        const ns = opts.namespace ?? "default";
        g.services.forEach((s, i) => {
          expect(plugins[i].metadata).toMatchObject({ namespace: ns });
          expect(plugins[i].spec.selector).toEqual({ matchLabels: { app: s.name } });
          expect(plugins[i].spec.pluginConfig).toMatchObject({ service: s.name, node: { id: `${s.name}.${ns}`, workload: s.name, namespace: ns } });
          expect(plugins[i].spec.pluginConfig).not.toHaveProperty("edge");
        });
        const gw = plugins.at(-1)!;
        const gateway = opts.gateway || { namespace: "istio-system", selector: { istio: "ingressgateway" } };
        expect(gw.metadata?.namespace).toBe(gateway.namespace);
        expect(gw.spec.selector).toEqual({ matchLabels: gateway.selector });
        expect(gw.spec.pluginConfig).toMatchObject({ edge: true });
        expect(gw.spec.pluginConfig).not.toHaveProperty("service");
      });

      it("DestinationRules: one subset per lane that has the service, base first, with the lane's labels", () => {
        for (const dr of byKind(objects, "DestinationRule")) {
          const service = dr.metadata!.name!.replace(/^graylane-/, "");
          expect(dr.spec?.host).toBe(`${service}.${opts.namespace ?? "default"}.svc.cluster.local`);
          expect(dr.spec?.subsets?.[0].name).toBe(g.baseLane);
          expect(dr.spec!.subsets!.slice(1).map((s) => s.name).sort()).toEqual(written(g, service));
          expect(dr.spec?.subsets?.map((s) => s.name)).toEqual(lanesOf(g, service));
          for (const s of dr.spec!.subsets!) {
            const want = opts.laneLabels?.[s.name!] ?? { [opts.laneLabelKey ?? "graylane.io/lane"]: s.name! };
            expect(s.labels).toEqual(want);
          }
        }
      });

      it("VirtualServices: header matches are exactly the route values the filter writes for the service; base is the default", () => {
        const header = g.routeHeader.toLowerCase();
        for (const vs of byKind(objects, "VirtualService").filter((v) => !v.spec?.gateways)) {
          const service = vs.metadata!.name!.replace(/^graylane-/, "");
          const http = vs.spec!.http!;
          const lanes = http.slice(0, -1);
          expect(lanes.map((r) => Object.keys(r.match?.[0].headers ?? {}))).toEqual(lanes.map(() => [header]));
          expect(lanes.map((r) => (r.match?.[0].headers?.[header] as { exact: string }).exact).sort()).toEqual(written(g, service));
          for (const r of lanes) expect(r.route).toEqual([{ destination: { host: vs.spec!.hosts![0], subset: (r.match?.[0].headers?.[header] as { exact: string }).exact } }]);
          expect(http.at(-1)).toEqual({ name: g.baseLane, route: [{ destination: { host: vs.spec!.hosts![0], subset: g.baseLane } }] });
        }
      });

      it("the real filter accepts every pluginConfig, and each decision is routed to the subset its route header names", async () => {
        const plugins = byKind(objects, "WasmPlugin");
        const drs = byKind(objects, "DestinationRule");
        const vss = byKind(objects, "VirtualService");
        // A sidecar, outbound: the lane arrives propagated; the destination is the :authority.
        const sidecar = await newFilter({ config: plugins[0].spec.pluginConfig as Record<string, unknown>, direction: "outbound" });
        for (const s of g.services) {
          const vs = vss.find((v) => v.metadata?.name === `graylane-${s.name}`)!;
          const subsets = drs.find((d) => d.metadata?.name === `graylane-${s.name}`)!.spec!.subsets!.map((x) => x.name);
          for (const lane of [g.baseLane, ...g.lanes.map((l) => l.name)]) {
            const d = sidecar.decide({ ":method": "GET", ":path": "/", ":authority": s.name, [g.laneHeader]: lane }, {}, g.laneHeader, g.routeHeader.toLowerCase());
            expect(d.route, `${s.name} in lane ${lane}`).toBe(expectedRoute(g, lane, s.name));
            const hit = matchRoute(vs.spec!.http!, "/", d.stream.requestHeaders);
            expect(hit?.route?.[0].destination).toEqual({ host: vs.spec!.hosts![0], subset: d.route });
            expect(subsets).toContain(d.route);
          }
        }
        // The ingress gateway: the edge decides from the path (override header for the lane).
        const gateway = await newFilter({ config: plugins.at(-1)!.spec.pluginConfig as Record<string, unknown> });
        const ingress = vss.find((v) => v.spec?.gateways)!;
        for (const s of g.services.filter((x) => x.paths.length)) {
          for (const lane of [g.baseLane, ...g.lanes.map((l) => l.name)]) {
            const path = `${s.paths[0]}/x?y=1`;
            const d = gateway.decide({ ":method": "GET", ":path": path, ":authority": "public.example.com", [g.overrideHeader!]: lane }, {}, g.laneHeader, g.routeHeader.toLowerCase());
            expect(d.route, `edge, ${s.name} in lane ${lane}`).toBe(expectedRoute(g, lane, s.name));
            const hit = matchRoute(ingress.spec!.http!, path, d.stream.requestHeaders);
            expect(hit?.route?.[0].destination).toEqual({ host: `${s.name}.${opts.namespace ?? "default"}.svc.cluster.local`, subset: d.route });
          }
        }
      });

      it("route patches: the lane routes only, named graylane-*, for the services and the gateway", () => {
        const header = g.routeHeader.toLowerCase();
        const patches = routePatches([g], opts);
        expect(patches.map((p) => p.service ?? "(ingress)")).toEqual([...g.services.map((s) => s.name), "(ingress)"]);
        for (const p of patches) {
          expect(p.defaultSubset).toBe(g.baseLane);
          for (const r of p.http) {
            expect(r.name).toMatch(/^graylane-/);
            expect(r.route?.[0].destination?.subset).toBe((r.match?.[0].headers?.[header] as { exact: string }).exact);
          }
          if (p.service) expect(p.http.map((r) => r.route?.[0].destination?.subset).sort()).toEqual(written(g, p.service));
        }
      });
    });
  }

  it("a gRPC service (protocol grpc): its DestinationRule upgrades to HTTP/2; HTTP services' do not; the Envoy configs give it HTTP/2 clusters", () => {
    const g = group(mockGroup({ services: [{ name: "mocka", paths: ["/mock"], protocol: "grpc" }, { name: "mockb" }, { name: "mockc", protocol: "http" }] }));
    const objects = istioObjects([g], { wasm: WASM });
    for (const obj of objects) validate(obj);
    const dr = (name: string) => objects.find((o) => o.kind === "DestinationRule" && o.metadata?.name === name) as Extract<IstioObject, { kind: "DestinationRule" }>;
    expect(dr("graylane-mocka").spec.trafficPolicy).toEqual({ connectionPool: { http: { h2UpgradePolicy: "UPGRADE" } } });
    expect(dr("graylane-mockb").spec).not.toHaveProperty("trafficPolicy");
    expect(dr("graylane-mockc").spec).not.toHaveProperty("trafficPolicy");

    const inst = (lane: string, p: number) => ({ lane, version: lane, appPort: p, inboundPort: p + 1, outboundPort: p + 2 });
    const t: Topology = {
      group: "mock", wasmPath: "/f.wasm", gateway: { port: 1 }, controlPlane: { grpcHost: "127.0.0.1", grpcPort: 2 },
      services: [{ name: "mocka", protocol: "grpc", instances: [inst("base", 10), inst("canary", 20)] }, { name: "mockb", instances: [inst("base", 30)] }],
    };
    type Cluster = { name: string; typed_extension_protocol_options?: Record<string, { explicit_http_config: unknown }> };
    const clusters = (cfg: Record<string, unknown>) => (cfg.static_resources as { clusters: Cluster[] }).clusters;
    const h2 = (c: Cluster) => JSON.stringify(c.typed_extension_protocol_options?.["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]?.explicit_http_config) === '{"http2_protocol_options":{}}';
    const http2Of = (cfg: Record<string, unknown>) => clusters(cfg).filter(h2).map((c) => c.name).sort();
    expect(http2Of(sidecarConfig(t, 0, 0))).toEqual(["graylane", "local-app", "mocka-base", "mocka-canary"]);
    expect(http2Of(sidecarConfig(t, 1, 0))).toEqual(["graylane", "mocka-base", "mocka-canary"]); // mockb's app speaks HTTP/1.1
    expect(http2Of(gatewayConfig(t))).toEqual(["graylane", "mocka-base", "mocka-canary"]);
  });

  it("options: v1beta1, label overrides, fail strategy, phase, no gateway, a subset of services", () => {
    const g = group(mockGroup());
    const objects = istioObjects([g], {
      wasm: { url: "file:///var/local/graylane/filter.wasm" }, networkingVersion: "v1beta1", failStrategy: "FAIL_CLOSE",
      phase: "AUTHN", priority: -5, gateway: false, services: ["mocka"], cluster: "graylane", plugin: { reportIntervalMs: 1000 },
      laneLabels: { canary: { version: "v2", track: "canary" } },
    });
    for (const obj of objects) validate(obj);
    expect(objects.map((o) => `${o.apiVersion} ${o.kind}/${o.metadata?.name}`)).toEqual([
      "extensions.istio.io/v1alpha1 WasmPlugin/graylane-mocka",
      "networking.istio.io/v1beta1 DestinationRule/graylane-mocka",
      "networking.istio.io/v1beta1 VirtualService/graylane-mocka",
    ]);
    const [wp, dr] = objects as [Extract<IstioObject, { kind: "WasmPlugin" }>, Extract<IstioObject, { kind: "DestinationRule" }>];
    expect(wp.spec).toMatchObject({ failStrategy: "FAIL_CLOSE", phase: "AUTHN", priority: -5, pluginConfig: { cluster: "graylane", reportIntervalMs: 1000 } });
    expect(wp.spec).not.toHaveProperty("sha256");
    expect(dr.spec?.subsets).toEqual([{ name: "base", labels: { "graylane.io/lane": "base" } }, { name: "canary", labels: { version: "v2", track: "canary" } }]);
  });

  it("strict isolation: one WasmPlugin per service serves every lane: the filter reads the pod's lane label (node metadata LABELS) under laneLabelKey", async () => {
    const g = group(mockGroup({ isolation: "strict", lanes: [{ name: "canary", services: ["mocka", "mockc"] }] }));
    for (const laneLabelKey of [undefined, "example.com/lane"]) {
      const objects = istioObjects([g], { wasm: WASM, gateway: false, services: ["mocka"], ...(laneLabelKey ? { laneLabelKey } : {}) });
      const wp = objects.find((o) => o.kind === "WasmPlugin") as Extract<IstioObject, { kind: "WasmPlugin" }>;
      const dr = objects.find((o) => o.kind === "DestinationRule") as Extract<IstioObject, { kind: "DestinationRule" }>;
      const cfg = wp.spec!.pluginConfig as Record<string, any>;
      expect(cfg.node.lane).toBeUndefined();
      expect(cfg.node.laneLabelKey).toBe(laneLabelKey);
      // A pod of each subset: its labels are what Istio puts in the node metadata's LABELS.
      for (const subset of dr.spec!.subsets!) {
        const { cluster: _, ...local } = cfg; // no control plane here: the initial ruleSet routes
        const sidecar = await newFilter({ config: local, properties: { "node.metadata.LABELS": { app: "mocka", ...subset.labels } } });
        const d = sidecar.decide({ ":authority": "mockc", ":path": "/" });
        expect(d.lane, `${laneLabelKey} ${subset.name}`).toBe(subset.name);
      }
    }
  });

  it("the schema check has teeth: a wrong phase, a bad sha256 or a non-string label is refused", () => {
    const [wp, , , , dr] = istioObjects([group(mockGroup())], { wasm: WASM });
    expect(() => validate({ ...wp, spec: { ...(wp as any).spec, phase: "LATE" } } as IstioObject)).toThrow(/phase/);
    expect(() => validate({ ...wp, spec: { ...(wp as any).spec, sha256: "XYZ" } } as IstioObject)).toThrow(/sha256/);
    expect(() => validate({ ...dr, spec: { host: "x", subsets: [{ name: "a", labels: { v: 1 } }] } } as unknown as IstioObject)).toThrow(/labels/);
  });
});
