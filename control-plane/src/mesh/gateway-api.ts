// The lane routes as Gateway API objects (`graylane mesh manifests --gateway-api`), pure: for meshes
// that route by HTTPRoute (GAMMA) instead of Istio VirtualServices.
// - a Service per lane of each service, `graylane-<service>-<lane>`, selecting the service's pods of
//   that lane (base too): HTTPRoutes route to Services, not to subsets;
// - a mesh HTTPRoute per service (parentRef: the service's own Service, GAMMA): a rule per lane on
//   the route header the filter writes, then the base lane for everything else;
// - an ingress HTTPRoute per service with `paths` (parentRef: the Gateway): the same rules under
//   each path prefix.
// The route header values are those of the Istio generator (istio.ts lanesOf): a service's own lanes.
import type { LaneGroup } from "../model/lanegroup.js";
import { labels, laneLabels, lanesOf } from "./istio.js";

export const GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1";
/** Gateway API's limit on rules per HTTPRoute. */
export const MAX_RULES = 16;

export interface GatewayApiOptions {
  /** Namespace of the services and the generated objects; default "default". */
  namespace?: string;
  laneLabelKey?: string;
  laneLabels?: Record<string, Record<string, string>>;
  /** Pod label holding the service name; default "app". */
  workloadLabel?: string;
  /** The services' port (the lane Services' too); default 80. */
  port?: number;
  /** The pods' port; default `port`. */
  targetPort?: number;
  /** The Gateway of the ingress HTTPRoutes; false: none. */
  gateway?: { name: string; namespace?: string } | false;
  /** Hostnames of the ingress HTTPRoutes (none: every hostname of the Gateway's listeners). */
  hostnames?: string[];
  services?: string[];
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  spec: Record<string, unknown>;
}

/** The parentRef of a Gateway named `[namespace/]name`, as Istio's VirtualServices name it. */
export function gatewayRef(gateway: string): { name: string; namespace?: string } {
  const at = gateway.indexOf("/");
  return at < 0 ? { name: gateway } : { namespace: gateway.slice(0, at), name: gateway.slice(at + 1) };
}

/** The Service of one lane of a service. */
export function laneServiceName(service: string, lane: string): string {
  return `graylane-${service}-${lane}`;
}

/** Every object, in apply order: lane Services, then mesh and ingress HTTPRoutes. Throws naming a route over Gateway API's rule limit. */
export function gatewayApiObjects(groups: LaneGroup[], o: GatewayApiOptions = {}): KubeObject[] {
  const ns = o.namespace ?? "default";
  const port = o.port ?? 80;
  const services: KubeObject[] = [];
  const routes: KubeObject[] = [];
  for (const g of groups) {
    for (const s of g.services) {
      if (o.services && !o.services.includes(s.name)) continue;
      const lanes = lanesOf(g, s.name);
      if (lanes.length > MAX_RULES) throw new Error(`service ${s.name} of lane group ${g.name} has ${lanes.length} lanes: an HTTPRoute holds at most ${MAX_RULES} rules`);
      const grpc = s.protocol === "grpc";
      for (const lane of lanes) {
        services.push({
          apiVersion: "v1", kind: "Service",
          metadata: { name: laneServiceName(s.name, lane), namespace: ns, labels: { ...labels(g.name), "graylane.io/lane": lane } },
          spec: {
            selector: { [o.workloadLabel ?? "app"]: s.name, ...laneLabels(lane, o) },
            ports: [{ name: grpc ? "grpc" : "http", port, targetPort: o.targetPort ?? port, protocol: "TCP", appProtocol: grpc ? "kubernetes.io/h2c" : "http" }],
          },
        });
      }
      const header = g.routeHeader.toLowerCase();
      const rules = (paths: string[] | undefined) => [
        ...lanes.slice(1).map((lane) => ({
          matches: (paths ?? [undefined]).map((p) => ({ ...(p ? { path: { type: "PathPrefix", value: p } } : {}), headers: [{ type: "Exact", name: header, value: lane }] })),
          backendRefs: [{ name: laneServiceName(s.name, lane), port }],
        })),
        { ...(paths ? { matches: paths.map((p) => ({ path: { type: "PathPrefix", value: p } })) } : {}), backendRefs: [{ name: laneServiceName(s.name, lanes[0]!), port }] },
      ];
      routes.push({
        apiVersion: GATEWAY_API_VERSION, kind: "HTTPRoute",
        metadata: { name: `graylane-${s.name}`, namespace: ns, labels: labels(g.name) },
        spec: { parentRefs: [{ group: "", kind: "Service", name: s.name, port }], rules: rules(undefined) },
      });
      if (o.gateway !== false && o.gateway && s.paths.length) {
        routes.push({
          apiVersion: GATEWAY_API_VERSION, kind: "HTTPRoute",
          metadata: { name: `graylane-${s.name}-ingress`, namespace: ns, labels: labels(g.name) },
          spec: {
            parentRefs: [{ name: o.gateway.name, ...(o.gateway.namespace ? { namespace: o.gateway.namespace } : {}) }],
            ...(o.hostnames?.length ? { hostnames: o.hostnames } : {}),
            rules: rules([...s.paths].sort((a, b) => b.length - a.length)),
          },
        });
      }
    }
  }
  return [...services, ...routes];
}
