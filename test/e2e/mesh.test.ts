// control-plane/src/mesh: every generated sidecar and gateway config passes `envoy --mode validate`
// (with filter.wasm loaded on V8), and the routes carry what the filter needs.
import { describe, expect, it } from "vitest";
import { resolve } from "node:path";
import { gatewayConfig, meshConfigs, sidecarConfig, type Topology } from "../../control-plane/src/mesh/envoy-config.js";
import { envoyBin, validate } from "../support/envoy.js";

let port = 20000;
const topology: Topology = {
  group: "mock",
  services: ["mocka", "mockb", "mockc"].map((name) => ({
    name, hosts: name === "mocka" ? ["mocka", "mocka.default.svc.cluster.local"] : undefined, paths: name === "mocka" ? ["/mock"] : undefined,
    instances: [{ lane: "base", version: "v1" }, { lane: "canary", version: "v2" }].map((l) => ({ ...l, appPort: port++, inboundPort: port++, outboundPort: port++ })),
  })),
  gateway: { port: 18080 },
  controlPlane: { grpcHost: "127.0.0.1", grpcPort: 17071 },
  wasmPath: resolve("filter/build/filter.wasm"),
  plugin: { reportIntervalMs: 1000 },
};

describe("mesh configs", () => {
  it("every generated config passes envoy --mode validate", () => {
    const configs = meshConfigs(topology);
    expect(configs.map((c) => c.id)).toEqual(["mocka-base-0", "mocka-canary-1", "mockb-base-0", "mockb-canary-1", "mockc-base-0", "mockc-canary-1", "gateway"]);
    for (const c of configs) {
      const r = validate(envoyBin(), JSON.stringify(c.config));
      expect(r.ok, `${c.id}: ${r.output}`).toBe(true);
    }
  });

  it("sidecar: inbound to the app, outbound per destination on the route header, base by default", () => {
    const cfg = sidecarConfig(topology, 1, 0) as any;
    const [inbound, outbound] = cfg.static_resources.listeners;
    expect(inbound.traffic_direction).toBe("INBOUND");
    expect(outbound.traffic_direction).toBe("OUTBOUND");
    const plugin = JSON.parse(inbound.filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.config.configuration.value);
    expect(plugin).toMatchObject({ cluster: "graylane", service: "mockb", node: { id: "mockb-base-0", lane: "base" } });
    const vhosts = outbound.filter_chains[0].filters[0].typed_config.route_config.virtual_hosts;
    const c = vhosts.find((v: any) => v.name === "mockc");
    expect(c.domains).toEqual(["mockc"]);
    expect(c.routes.map((r: any) => [r.route.cluster, r.match.headers?.[0]?.string_match.exact ?? null, r.metadata.filter_metadata.graylane.service]))
      .toEqual([["mockc-canary", "canary", "mockc"], ["mockc-base", null, "mockc"]]);
    // only failures that cannot have reached the app are retried (an app closing an idle keep-alive)
    for (const r of [...c.routes, ...inbound.filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes])
      expect(r.route.retry_policy).toEqual({ retry_on: "connect-failure,refused-stream,reset-before-request", num_retries: 2 });
    const clusters = cfg.static_resources.clusters.map((x: any) => x.name);
    expect(clusters).toEqual(["local-app", "mocka-base", "mocka-canary", "mockb-base", "mockb-canary", "mockc-base", "mockc-canary", "graylane"]);
    const cp = cfg.static_resources.clusters.at(-1);
    expect(cp.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].explicit_http_config).toHaveProperty("http2_protocol_options");
  });

  it("gateway: edge, path routes with graylane.service metadata", () => {
    const cfg = gatewayConfig(topology) as any;
    const l = cfg.static_resources.listeners[0];
    expect(l.address.socket_address.port_value).toBe(18080);
    const hcm = l.filter_chains[0].filters[0].typed_config;
    expect(JSON.parse(hcm.http_filters[0].typed_config.config.configuration.value)).toMatchObject({ edge: true, cluster: "graylane" });
    expect(hcm.route_config.virtual_hosts[0].routes.map((r: any) => [r.match.prefix, r.route.cluster, r.metadata.filter_metadata.graylane.service]))
      .toEqual([["/mock", "mocka-canary", "mocka"], ["/mock", "mocka-base", "mocka"]]);
  });
});
