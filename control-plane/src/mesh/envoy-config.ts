// Envoy configurations for a Graylane mesh on one host, as pure functions of a topology: one sidecar
// per app instance (inbound listener → the app, outbound listener → one cluster per service and
// lane, routed on the route header the filter writes) and an ingress gateway (`edge: true`). Every
// route carries `graylane.service` metadata, the destination the filter decides for; every listener
// sets `traffic_direction`. The filter on both listeners of a sidecar shares one VM (one `vm_id`),
// so the inbound side's trace memory is what the outbound side reads.

export interface MeshInstance {
  /** The lane this instance belongs to ("base" for the base version). */
  lane: string;
  /** Shown by the mock apps, e.g. "v1". */
  version: string;
  appPort: number;
  inboundPort: number;
  outboundPort: number;
  /** Envoy admin port; 0 or absent: any free port (find it with --admin-address-path). */
  adminPort?: number;
}

export interface MeshService {
  name: string;
  /** `:authority` values (without port) that reach the service; default [name]. */
  hosts?: string[];
  /** Path prefixes the gateway routes to the service. */
  paths?: string[];
  /** "grpc": HTTP/2 clusters to the service's instances (and to the app behind each sidecar). Default "http". */
  protocol?: "http" | "grpc";
  instances: MeshInstance[];
}

export interface Topology {
  /** Lane group name (for reports and the node identities). */
  group: string;
  services: MeshService[];
  gateway: { port: number; adminPort?: number };
  controlPlane: {
    grpcHost: string;
    grpcPort: number;
    /** TLS to the control plane: the CA that signed its certificate, and a client certificate for mTLS. */
    tls?: { caFile: string; sni?: string; certFile?: string; keyFile?: string };
  };
  /** Listen and connect address; default 127.0.0.1. */
  host?: string;
  /** Default "base". */
  baseLane?: string;
  /** Default "x-graylane-route". */
  routeHeader?: string;
  /** filter.wasm path as Envoy should load it. */
  wasmPath: string;
  /** Extra plugin configuration keys for every filter (traceMemory, reportIntervalMs, ruleSet). */
  plugin?: Record<string, unknown>;
}

export const CONTROL_PLANE_CLUSTER = "graylane";
const LOCAL_APP_CLUSTER = "local-app";

export type EnvoyConfig = Record<string, unknown>;

export function clusterName(service: string, lane: string): string {
  return `${service}-${lane}`;
}

export function instanceId(service: string, inst: MeshInstance, index: number): string {
  return `${service}-${inst.lane}-${index}`;
}

/** Lanes present in a service's instances, base first. */
export function serviceLanes(t: Topology, svc: MeshService): string[] {
  const base = t.baseLane ?? "base";
  const lanes = [...new Set(svc.instances.map((i) => i.lane))].filter((l) => l !== base).sort();
  return [base, ...lanes];
}

/** The sidecar of `services[serviceIndex].instances[instanceIndex]`. */
export function sidecarConfig(t: Topology, serviceIndex: number, instanceIndex: number): EnvoyConfig {
  const svc = t.services[serviceIndex];
  const inst = svc.instances[instanceIndex];
  const host = t.host ?? "127.0.0.1";
  const id = instanceId(svc.name, inst, instanceIndex);
  const plugin = {
    ...t.plugin,
    cluster: CONTROL_PLANE_CLUSTER,
    node: { id, workload: svc.name, lane: inst.lane },
    service: svc.name,
  };
  const inbound = listener(`inbound-${svc.name}`, host, inst.inboundPort, "INBOUND", t.wasmPath, plugin, [{
    name: "local", domains: ["*"],
    routes: [{ match: { prefix: "/" }, route: { cluster: LOCAL_APP_CLUSTER, timeout: "15s", retry_policy: RETRY_POLICY }, metadata: serviceMetadata(svc.name) }],
  }]);
  const outbound = listener(`outbound-${svc.name}`, host, inst.outboundPort, "OUTBOUND", t.wasmPath, plugin,
    t.services.map((dest) => ({
      name: dest.name,
      domains: dest.hosts ?? [dest.name],
      routes: laneRoutes(t, dest, { prefix: "/" }),
    })));
  return {
    node: { id, cluster: svc.name },
    admin: admin(host, inst.adminPort),
    static_resources: {
      listeners: [inbound, outbound],
      clusters: [
        withProtocol(staticCluster(LOCAL_APP_CLUSTER, host, [inst.appPort]), svc.protocol),
        ...laneClusters(t),
        controlPlaneCluster(t),
      ],
    },
  };
}

/** The ingress gateway: `edge: true`, routes on the services' path prefixes (longest first). */
export function gatewayConfig(t: Topology): EnvoyConfig {
  const host = t.host ?? "127.0.0.1";
  const plugin = { ...t.plugin, cluster: CONTROL_PLANE_CLUSTER, node: { id: "gateway", workload: "gateway" }, edge: true };
  const prefixes = t.services.flatMap((svc) => (svc.paths ?? []).map((p) => ({ svc, p })))
    .sort((a, b) => b.p.length - a.p.length);
  const routes = prefixes.flatMap(({ svc, p }) => laneRoutes(t, svc, { prefix: p }));
  const gw = listener("gateway", host, t.gateway.port, "OUTBOUND", t.wasmPath, plugin, [{ name: "gateway", domains: ["*"], routes }]);
  return {
    node: { id: "gateway", cluster: "gateway" },
    admin: admin(host, t.gateway.adminPort),
    static_resources: { listeners: [gw], clusters: [...laneClusters(t), controlPlaneCluster(t)] },
  };
}

/** Every config of the topology: [id, config], the gateway last. */
export function meshConfigs(t: Topology): Array<{ id: string; config: EnvoyConfig }> {
  const out: Array<{ id: string; config: EnvoyConfig }> = [];
  t.services.forEach((svc, s) => svc.instances.forEach((inst, i) => out.push({ id: instanceId(svc.name, inst, i), config: sidecarConfig(t, s, i) })));
  out.push({ id: "gateway", config: gatewayConfig(t) });
  return out;
}

// ---- pieces ----

/**
 * Retry only what cannot have reached the app: a refused connection, a refused stream, or a
 * reused keep-alive connection that the app closed just before the request went out (Node closes
 * idle connections after 5 s by default; Envoy keeps them for an hour). Istio's default policy
 * retries the same way, twice.
 */
const RETRY_POLICY = { retry_on: "connect-failure,refused-stream,reset-before-request", num_retries: 2 };

/**
 * `graylane.service`: the destination the filter decides for. `graylane.lane`: the lane this route
 * sends to; when it equals the filter's decided route the filter skips clear_route_cache (Envoy
 * would re-match the same route).
 */
function serviceMetadata(service: string, lane?: string) {
  return { filter_metadata: { graylane: lane === undefined ? { service } : { service, lane } } };
}

/** One route per non-base lane on the route header, then the base lane. */
function laneRoutes(t: Topology, svc: MeshService, match: { prefix: string }) {
  const header = t.routeHeader ?? "x-graylane-route";
  const [base, ...lanes] = serviceLanes(t, svc);
  return [
    ...lanes.map((lane) => ({
      match: { ...match, headers: [{ name: header, string_match: { exact: lane } }] },
      route: { cluster: clusterName(svc.name, lane), timeout: "15s", retry_policy: RETRY_POLICY },
      metadata: serviceMetadata(svc.name, lane),
    })),
    { match, route: { cluster: clusterName(svc.name, base), timeout: "15s", retry_policy: RETRY_POLICY }, metadata: serviceMetadata(svc.name, base) },
  ];
}

function laneClusters(t: Topology) {
  const host = t.host ?? "127.0.0.1";
  return t.services.flatMap((svc) => serviceLanes(t, svc).map((lane) =>
    withProtocol(staticCluster(clusterName(svc.name, lane), host, svc.instances.filter((i) => i.lane === lane).map((i) => i.inboundPort)), svc.protocol)));
}

const HTTP2_OPTIONS = {
  "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    explicit_http_config: { http2_protocol_options: {} },
  },
};

/** A cluster speaking the service's protocol upstream: HTTP/2 for gRPC (Envoy's default is HTTP/1.1). */
function withProtocol<C extends object>(cluster: C, protocol: MeshService["protocol"]): C {
  return protocol === "grpc" ? { ...cluster, typed_extension_protocol_options: HTTP2_OPTIONS } : cluster;
}

function staticCluster(name: string, host: string, ports: number[]) {
  return {
    name, type: "STATIC", connect_timeout: "1s",
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: ports.map((port) => ({ endpoint: { address: { socket_address: { address: host, port_value: port } } } })) }],
    },
  };
}

function controlPlaneCluster(t: Topology) {
  const tls = t.controlPlane.tls;
  return {
    ...staticCluster(CONTROL_PLANE_CLUSTER, t.controlPlane.grpcHost, [t.controlPlane.grpcPort]),
    ...(tls ? {
      transport_socket: {
        name: "envoy.transport_sockets.tls",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
          sni: tls.sni ?? t.controlPlane.grpcHost,
          common_tls_context: {
            alpn_protocols: ["h2"],
            validation_context: { trusted_ca: { filename: tls.caFile } },
            ...(tls.certFile && tls.keyFile ? { tls_certificates: [{ certificate_chain: { filename: tls.certFile }, private_key: { filename: tls.keyFile } }] } : {}),
          },
        },
      },
    } : {}),
    typed_extension_protocol_options: HTTP2_OPTIONS, // gRPC from Wasm needs HTTP/2
  };
}

function admin(host: string, port = 0) {
  return { address: { socket_address: { address: host, port_value: port } } };
}

function listener(name: string, host: string, port: number, direction: "INBOUND" | "OUTBOUND", wasmPath: string,
  plugin: Record<string, unknown>, virtualHosts: unknown[]) {
  return {
    name,
    address: { socket_address: { address: host, port_value: port } },
    enable_reuse_port: false,
    traffic_direction: direction,
    filter_chains: [{ filters: [{
      name: "envoy.filters.network.http_connection_manager",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        stat_prefix: name,
        strip_any_host_port: true,
        route_config: { name, virtual_hosts: virtualHosts },
        http_filters: [
          { name: "envoy.filters.http.wasm", typed_config: {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            config: {
              name: "graylane", root_id: "graylane",
              vm_config: { vm_id: "graylane", runtime: "envoy.wasm.runtime.v8", code: { local: { filename: wasmPath } } },
              configuration: { "@type": "type.googleapis.com/google.protobuf.StringValue", value: JSON.stringify(plugin) },
            },
          } },
          { name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } },
        ],
      },
    }] }],
  };
}
