// Istio objects for lane groups, as pure functions returning plain objects (docs/istio.md):
//
// - a WasmPlugin per service (selector `app: <service>`, plugin config `service: <service>`) and one
//   for the ingress gateway (`edge: true`), each carrying the control-plane cluster and an initial
//   RuleSet so the filter routes before the control plane answers;
// - a DestinationRule per service: one subset per lane that has the service (base included), selected
//   by `graylane.io/lane: <lane>` unless the lane's labels are overridden (base on `version: v1`);
// - a VirtualService per service: one route per lane on the route header the filter writes
//   (`<routeHeader>: <lane>` → subset <lane>), then the base subset for everything else;
// - a VirtualService bound to the ingress gateway for the services' `paths`, longest prefix first.
//
// The route header values are exactly what the filter writes for a destination: the lane when that
// lane has the service, else its fallback chain down to base — so a service's header matches are its
// own lanes, and base is the default route. `routePatches` gives the same routes as blocks to insert
// into VirtualServices the user already has.
import type { DestinationRule, HttpRoute, IstioObject, VirtualService, WasmPlugin } from "./istio-types.js";
import { compileRuleSet } from "../compile/index.js";
import type { LaneGroup } from "../model/lanegroup.js";

export type WasmPhase = "AUTHN" | "AUTHZ" | "STATS" | "UNSPECIFIED_PHASE";
export type FailStrategy = "FAIL_OPEN" | "FAIL_CLOSE" | "FAIL_RELOAD";
export type { HttpRoute, IstioObject } from "./istio-types.js";

export const DEFAULT_LANE_LABEL_KEY = "graylane.io/lane";
export const DEFAULT_PHASE: WasmPhase = "STATS";
export const DEFAULT_PRIORITY = 1000;
export const DEFAULT_FAIL_STRATEGY: FailStrategy = "FAIL_OPEN";
export const DEFAULT_CONTROL_PLANE = { host: "graylane-control-plane.graylane-system.svc.cluster.local", port: 7071 };
export const DEFAULT_GATEWAY: GatewayOptions = {
  gateway: "graylane-gateway", namespace: "istio-system", selector: { istio: "ingressgateway" }, hosts: ["*"],
};
/** Root id the filter registers (WasmPlugin.pluginName). */
export const PLUGIN_NAME = "graylane";

export interface WasmSource {
  /** `oci://REGISTRY/REPO:TAG`, `file:///path/filter.wasm` or `https://...`. */
  url: string;
  /** Hex SHA-256: of the image manifest for oci://, of the module for http(s):// and file://. */
  sha256?: string;
  imagePullPolicy?: "IfNotPresent" | "Always";
  imagePullSecret?: string;
}

export interface GatewayOptions {
  /** The Gateway the ingress VirtualService binds to: `name` or `namespace/name`. */
  gateway: string;
  /** Namespace of the gateway's pods (where its WasmPlugin goes). */
  namespace: string;
  /** Labels of the gateway's pods. */
  selector: Record<string, string>;
  /** Hosts of the ingress VirtualService. */
  hosts: string[];
}

export interface IstioOptions {
  wasm: WasmSource;
  /** Namespace of the services and of the generated objects (but the gateway's WasmPlugin); default "default". */
  namespace?: string;
  /** Default "cluster.local". */
  clusterDomain?: string;
  /** Label naming an instance's lane; default graylane.io/lane. */
  laneLabelKey?: string;
  /** Per-lane pod labels replacing `{laneLabelKey: lane}`, e.g. {base: {version: "v1"}}. */
  laneLabels?: Record<string, Record<string, string>>;
  /** Pod label holding the service name, for the WasmPlugin selectors; default "app". */
  workloadLabel?: string;
  phase?: WasmPhase;
  priority?: number;
  failStrategy?: FailStrategy;
  /** The control plane's gRPC Service; the cluster is Istio's `outbound|PORT||HOST`. */
  controlPlane?: { host: string; port: number };
  /** Envoy cluster name of the control plane, instead of the one derived from controlPlane. */
  cluster?: string;
  /** Groups compiled into the initial RuleSet (default: the groups given): what the control plane serves. */
  ruleSetGroups?: LaneGroup[];
  /** The initial RuleSet already compiled (initialRuleSet()), for callers that generate group by group. */
  initialRuleSet?: string;
  /** Extra plugin configuration keys (traceMemory, reportIntervalMs). */
  plugin?: Record<string, unknown>;
  /** The ingress gateway; false: no gateway WasmPlugin or ingress VirtualService. */
  gateway?: GatewayOptions | false;
  /** Only these services get objects (default: all the groups' services). */
  services?: string[];
  /** networking.istio.io version of DestinationRules and VirtualServices; default v1 (Istio ≥ 1.22). */
  networkingVersion?: "v1" | "v1beta1";
}

/** Istio's name for the outbound cluster of a Service port. */
export function istioCluster(host: string, port: number): string {
  return `outbound|${port}||${host}`;
}

export function serviceHost(service: string, o: IstioOptions): string {
  return `${service}.${o.namespace ?? "default"}.svc.${o.clusterDomain ?? "cluster.local"}`;
}

/** The lanes whose instances of `service` receive traffic: base first, then the group's lanes having it. */
export function lanesOf(g: LaneGroup, service: string): string[] {
  return [g.baseLane, ...g.lanes.filter((l) => l.services.includes(service)).map((l) => l.name)];
}

/** Pod labels of a lane's instances. */
export function laneLabels(lane: string, o: Pick<IstioOptions, "laneLabels" | "laneLabelKey">): Record<string, string> {
  return { ...(o.laneLabels?.[lane] ?? { [o.laneLabelKey ?? DEFAULT_LANE_LABEL_KEY]: lane }) };
}

function controlPlaneCluster(o: IstioOptions): string {
  if (o.cluster) return o.cluster;
  const cp = o.controlPlane ?? DEFAULT_CONTROL_PLANE;
  return istioCluster(cp.host, cp.port);
}

/** The labels by which Graylane finds the objects it manages, and the lane group each belongs to. */
export const MANAGED_BY = { key: "app.kubernetes.io/managed-by", value: "graylane" } as const;
export const GROUP_LABEL = "graylane.io/group";

/** The labels of a generated object (of `group`, or shared by every group). */
export function labels(group?: string): Record<string, string> {
  return { [MANAGED_BY.key]: MANAGED_BY.value, ...(group ? { [GROUP_LABEL]: group } : {}) };
}

function inScope(service: string, o: IstioOptions): boolean {
  return !o.services || o.services.includes(service);
}

function wasmPlugin(name: string, namespace: string, selector: Record<string, string>, pluginConfig: Record<string, unknown>,
  o: IstioOptions, group?: string): WasmPlugin {
  const w = o.wasm;
  return {
    apiVersion: "extensions.istio.io/v1alpha1",
    kind: "WasmPlugin",
    metadata: { name, namespace, labels: labels(group) },
    spec: {
      selector: { matchLabels: selector },
      url: w.url,
      ...(w.sha256 ? { sha256: w.sha256 } : {}),
      ...(w.imagePullPolicy ? { imagePullPolicy: w.imagePullPolicy } : {}),
      ...(w.imagePullSecret ? { imagePullSecret: w.imagePullSecret } : {}),
      pluginName: PLUGIN_NAME,
      type: "HTTP",
      phase: o.phase ?? DEFAULT_PHASE,
      priority: o.priority ?? DEFAULT_PRIORITY,
      failStrategy: o.failStrategy ?? DEFAULT_FAIL_STRATEGY,
      pluginConfig,
    },
  };
}

/** base64 of the RuleSet compiled from `groups` (what the filter's `ruleSet` key takes). */
export function initialRuleSet(groups: LaneGroup[]): string {
  return Buffer.from(compileRuleSet(groups).bytes).toString("base64");
}

/** node.laneLabelKey of a sidecar's plugin config: only when it is not the filter's default. */
function laneLabelKeyOf(o: IstioOptions): { laneLabelKey?: string } {
  const key = o.laneLabelKey ?? DEFAULT_LANE_LABEL_KEY;
  return key === DEFAULT_LANE_LABEL_KEY ? {} : { laneLabelKey: key };
}

/** The WasmPlugins: one per service, then the ingress gateway's. */
export function wasmPlugins(groups: LaneGroup[], o: IstioOptions): WasmPlugin[] {
  const ns = o.namespace ?? "default";
  const cluster = controlPlaneCluster(o);
  const ruleSet = o.initialRuleSet ?? initialRuleSet(o.ruleSetGroups ?? groups);
  const out: WasmPlugin[] = [];
  for (const g of groups) {
    for (const s of g.services) {
      if (!inScope(s.name, o)) continue;
      out.push(wasmPlugin(`graylane-${s.name}`, ns, { [o.workloadLabel ?? "app"]: s.name }, {
        // No node.lane: one WasmPlugin serves every lane's pods, so the filter reads the pod's lane
        // label from the node metadata (LABELS) under this key (strict isolation, step 3b).
        service: s.name, node: { id: `${s.name}.${ns}`, workload: s.name, namespace: ns, ...laneLabelKeyOf(o) }, ...o.plugin, cluster, ruleSet,
      }, o, g.name));
    }
  }
  if (o.gateway !== false) {
    const gw = o.gateway ?? DEFAULT_GATEWAY;
    const workload = Object.values(gw.selector).join("-") || "gateway";
    out.push(wasmPlugin("graylane-gateway", gw.namespace, gw.selector, {
      edge: true, node: { id: `${workload}.${gw.namespace}`, workload, namespace: gw.namespace }, ...o.plugin, cluster, ruleSet,
    }, o));
  }
  return out;
}

export function destinationRule(g: LaneGroup, service: string, o: IstioOptions): DestinationRule {
  return {
    apiVersion: "networking.istio.io/v1",
    kind: "DestinationRule",
    metadata: { name: `graylane-${service}`, namespace: o.namespace ?? "default", labels: labels(g.name) },
    spec: {
      host: serviceHost(service, o),
      subsets: lanesOf(g, service).map((lane) => ({ name: lane, labels: laneLabels(lane, o) })),
      // A gRPC service: HTTP/2 to every subset (Istio also takes it from a grpc-* Service port name).
      ...(g.services.find((s) => s.name === service)?.protocol === "grpc"
        ? { trafficPolicy: { connectionPool: { http: { h2UpgradePolicy: "UPGRADE" as const } } } } : {}),
    },
  };
}

/** The routes to a service's lanes on the route header (not base), optionally under a path prefix. */
export function laneRoutes(g: LaneGroup, service: string, o: IstioOptions, prefix?: string, name = (lane: string) => lane): HttpRoute[] {
  const header = g.routeHeader.toLowerCase();
  const host = serviceHost(service, o);
  return lanesOf(g, service).slice(1).map((lane) => ({
    name: name(lane),
    match: [{ ...(prefix !== undefined ? { uri: { prefix } } : {}), headers: { [header]: { exact: lane } } }],
    route: [{ destination: { host, subset: lane } }],
  }));
}

function baseRoute(g: LaneGroup, service: string, o: IstioOptions, name: string, prefix?: string): HttpRoute {
  return {
    name,
    ...(prefix !== undefined ? { match: [{ uri: { prefix } }] } : {}),
    route: [{ destination: { host: serviceHost(service, o), subset: g.baseLane } }],
  };
}

export function virtualService(g: LaneGroup, service: string, o: IstioOptions): VirtualService {
  const host = serviceHost(service, o);
  return {
    apiVersion: "networking.istio.io/v1",
    kind: "VirtualService",
    metadata: { name: `graylane-${service}`, namespace: o.namespace ?? "default", labels: labels(g.name) },
    spec: { hosts: [host], http: [...laneRoutes(g, service, o), baseRoute(g, service, o, g.baseLane)] },
  };
}

/** The services' path prefixes at the gateway, longest first (the edge filter's rule too). */
function ingressPaths(g: LaneGroup, o: IstioOptions): Array<{ service: string; prefix: string; index: number }> {
  return g.services.filter((s) => inScope(s.name, o))
    .flatMap((s) => s.paths.map((prefix, index) => ({ service: s.name, prefix, index })))
    .sort((a, b) => b.prefix.length - a.prefix.length);
}

function ingressRoutes(g: LaneGroup, o: IstioOptions, withBase: boolean, namePrefix = ""): HttpRoute[] {
  return ingressPaths(g, o).flatMap(({ service, prefix, index }) => {
    const suffix = index ? `-${index}` : "";
    return [
      ...laneRoutes(g, service, o, prefix, (lane) => `${namePrefix}${service}-${lane}${suffix}`),
      ...(withBase ? [baseRoute(g, service, o, `${service}-${g.baseLane}${suffix}`, prefix)] : []),
    ];
  });
}

/** The VirtualService bound to the ingress gateway, or undefined when no service has paths. */
export function ingressVirtualService(g: LaneGroup, o: IstioOptions): VirtualService | undefined {
  if (o.gateway === false) return undefined;
  const gw = o.gateway ?? DEFAULT_GATEWAY;
  const http = ingressRoutes(g, o, true);
  if (!http.length) return undefined;
  return {
    apiVersion: "networking.istio.io/v1",
    kind: "VirtualService",
    metadata: { name: `graylane-${g.name}-ingress`, namespace: o.namespace ?? "default", labels: labels(g.name) },
    spec: { hosts: [...gw.hosts], gateways: [gw.gateway], http },
  };
}

function withVersion(obj: IstioObject, o: IstioOptions): IstioObject {
  if (!o.networkingVersion || obj.kind === "WasmPlugin") return obj;
  return { ...obj, apiVersion: `networking.istio.io/${o.networkingVersion}` } as IstioObject;
}

/** Every object, in apply order: WasmPlugins, DestinationRules, VirtualServices, ingress VirtualServices. */
export function istioObjects(groups: LaneGroup[], o: IstioOptions): IstioObject[] {
  const services = groups.flatMap((g) => g.services.filter((s) => inScope(s.name, o)).map((s) => ({ g, service: s.name })));
  return [
    ...wasmPlugins(groups, o),
    ...services.map(({ g, service }) => destinationRule(g, service, o)),
    ...services.map(({ g, service }) => virtualService(g, service, o)),
    ...groups.flatMap((g) => ingressVirtualService(g, o) ?? []),
  ].map((obj) => withVersion(obj, o));
}

/** Route blocks for a VirtualService the user already has (`--patch`); their names start with graylane-. */
export interface RoutePatch {
  /** The service, or undefined for the ingress gateway's VirtualService. */
  service?: string;
  group: string;
  /** The hosts and gateways of the VirtualService to patch. */
  hosts: string[];
  gateways?: string[];
  /** Insert at the top of spec.http, in this order. */
  http: HttpRoute[];
  /** The subset the VirtualService's other routes to the service(s) must name. */
  defaultSubset: string;
}

export function routePatches(groups: LaneGroup[], o: IstioOptions): RoutePatch[] {
  const out: RoutePatch[] = [];
  for (const g of groups) {
    for (const s of g.services) {
      if (!inScope(s.name, o)) continue;
      out.push({ service: s.name, group: g.name, hosts: [serviceHost(s.name, o)], http: laneRoutes(g, s.name, o, undefined, (lane) => `graylane-${lane}`), defaultSubset: g.baseLane });
    }
    if (o.gateway !== false && ingressPaths(g, o).length) {
      const gw = o.gateway ?? DEFAULT_GATEWAY;
      out.push({ group: g.name, hosts: [...gw.hosts], gateways: [gw.gateway], http: ingressRoutes(g, o, false, "graylane-"), defaultSubset: g.baseLane });
    }
  }
  return out;
}
