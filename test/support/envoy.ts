// A real Envoy process running filter.wasm at the edge, for `make envoy` and the smoke test. (The
// per-instance sidecar and gateway configs of the demo topology come with control-plane/src/mesh.)
import { resolve } from "node:path";
import { envoyBin, startEnvoy, validate, type RunningEnvoy } from "../../control-plane/src/mesh/envoy-process.js";

export const WASM = resolve("filter/build/filter.wasm");

/** An edge listener on a free port: the filter, then routes on the route header to canned answers. */
export function edgeConfig(pluginConfig: Record<string, unknown>, wasm = WASM): string {
  const cfg = {
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
    static_resources: {
      listeners: [{
        name: "edge",
        address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
        enable_reuse_port: false,
        traffic_direction: "OUTBOUND",
        filter_chains: [{ filters: [{
          name: "envoy.filters.network.http_connection_manager",
          typed_config: {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            stat_prefix: "edge",
            route_config: { virtual_hosts: [{ name: "all", domains: ["*"], routes: [
              { match: { prefix: "/", headers: [{ name: "x-graylane-route", string_match: { exact: "canary" } }] },
                direct_response: { status: 200, body: { inline_string: "mocka(v2)" } } },
              { match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "mocka(v1)" } } },
            ] }] },
            http_filters: [
              { name: "envoy.filters.http.wasm", typed_config: {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                config: {
                  name: "graylane", root_id: "graylane",
                  vm_config: { vm_id: "graylane", runtime: "envoy.wasm.runtime.v8", code: { local: { filename: wasm } } },
                  configuration: { "@type": "type.googleapis.com/google.protobuf.StringValue", value: JSON.stringify(pluginConfig) },
                },
              } },
              { name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } },
            ],
          },
        }] }],
      }],
    },
  };
  return JSON.stringify(cfg);
}

export { envoyBin, validate };

export interface EdgeEnvoy extends RunningEnvoy {
  /** http://host:port of the edge listener. */
  listener: string;
}

export async function startEdgeEnvoy(bin: string, config: string): Promise<EdgeEnvoy> {
  const e = await startEnvoy(bin, "edge", config, 1, "info");
  return { ...e, listener: `http://${e.listeners[0]}` };
}
