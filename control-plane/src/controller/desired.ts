// What the mesh controller wants in the cluster, pure: per lane group, the Istio objects `graylane
// mesh manifests` generates (mesh/istio.ts), each in the namespace of its service, labelled
// `app.kubernetes.io/managed-by: graylane` and `graylane.io/group: <group>`; plus the ingress
// gateway's WasmPlugin, shared by every group (no group label), while any group exists.
import type { LaneGroup } from "../model/lanegroup.js";
import { DEFAULT_GATEWAY, GROUP_LABEL, initialRuleSet, istioObjects, MANAGED_BY, type IstioObject, type IstioOptions } from "../mesh/istio.js";
import { gatewayApiObjects, gatewayRef, type KubeObject } from "../mesh/gateway-api.js";
import { labellingOf, serviceNamespace } from "./workloads.js";

export { MANAGED_BY, serviceNamespace };

/** The object kinds the controller manages: apiVersion, kind and plural, in pruning order (routes before what they route to). */
export const MANAGED_KINDS = [
  { apiVersion: "extensions.istio.io/v1alpha1", kind: "WasmPlugin", plural: "wasmplugins" },
  { apiVersion: "networking.istio.io/v1", kind: "VirtualService", plural: "virtualservices" },
  { apiVersion: "networking.istio.io/v1", kind: "DestinationRule", plural: "destinationrules" },
  { apiVersion: "gateway.networking.k8s.io/v1", kind: "HTTPRoute", plural: "httproutes" },
  { apiVersion: "v1", kind: "Service", plural: "services" },
] as const;

/** The API path of a kind (core v1 under /api), in a namespace or across all of them. */
export function kindPath(apiVersion: string, plural: string, namespace?: string): string {
  const root = apiVersion === "v1" ? "/api/v1" : `/apis/${apiVersion}`;
  return namespace === undefined ? `${root}/${plural}` : `${root}/namespaces/${namespace}/${plural}`;
}

/** A managed object: Istio's, or a lane Service / HTTPRoute of the Gateway API routes. */
export type MeshObject = IstioObject | KubeObject;

export type MeshOptions = Omit<IstioOptions, "namespace" | "services" | "laneLabelKey" | "laneLabels" | "workloadLabel" | "ruleSetGroups" | "initialRuleSet"> & {
  /** Namespace of a service whose hosts name none (`svc.NS.svc.cluster.local`, `svc.NS`); default "default". */
  namespace?: string;
  /** How lanes are routed: Istio DestinationRules and VirtualServices (default), or Gateway API lane Services and HTTPRoutes. */
  routes?: "istio" | "gateway-api";
  /** With gateway-api: the services' and pods' ports (default 80, the same). */
  port?: number;
  targetPort?: number;
};


/** Identity of an object in the cluster. */
export const objectKey = (o: { apiVersion: string; kind: string; metadata?: { namespace?: string; name?: string } }): string =>
  `${o.kind}/${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;

/**
 * Every object the groups want, keyed by objectKey. `groups` are the groups as the RuleSet has them
 * (discovered lanes applied), which is also the initial RuleSet of the WasmPlugins.
 */
export function desiredObjects(groups: LaneGroup[], o: MeshOptions): Map<string, MeshObject> {
  const out = new Map<string, MeshObject>();
  const fallback = o.namespace ?? "default";
  // Compiled once: every WasmPlugin of every group and namespace carries the same one.
  const ruleSet = initialRuleSet(groups);
  for (const g of groups) {
    const byNamespace = new Map<string, string[]>();
    for (const s of g.services) {
      const ns = serviceNamespace(s, fallback);
      byNamespace.set(ns, [...(byNamespace.get(ns) ?? []), s.name]);
    }
    const labelling = labellingOf(g);
    for (const [namespace, services] of byNamespace) {
      const istio = istioObjects([g], { ...o, namespace, services, initialRuleSet: ruleSet, ...labelling });
      const objects: MeshObject[] = o.routes === "gateway-api"
        ? [...istio.filter((x) => x.kind === "WasmPlugin"), ...gatewayApiObjects([g], {
          namespace, services, ...labelling, port: o.port, targetPort: o.targetPort,
          gateway: o.gateway === false ? false : gatewayRef((o.gateway ?? DEFAULT_GATEWAY).gateway),
        })]
        : istio;
      for (const obj of objects) out.set(objectKey(obj), obj);
    }
  }
  return out;
}

/**
 * The object to apply: `want`, except that a WasmPlugin already in the cluster keeps its initial
 * RuleSet. The RuleSet in a WasmPlugin serves only a proxy's first start; rule changes travel over
 * the rule stream, and rewriting a WasmPlugin would restart every filter it selects.
 */
export function toApply(want: MeshObject, live: { spec?: { pluginConfig?: { ruleSet?: unknown } } } | undefined): MeshObject {
  if (want.kind !== "WasmPlugin") return want;
  const kept = live?.spec?.pluginConfig?.ruleSet;
  if (typeof kept !== "string") return want;
  const wp = want as Extract<IstioObject, { kind: "WasmPlugin" }>;
  return { ...wp, spec: { ...wp.spec, pluginConfig: { ...wp.spec.pluginConfig, ruleSet: kept } } };
}

/** The lane group a managed object belongs to (undefined: the shared gateway plugin). */
export function ownerGroup(live: { metadata?: { labels?: Record<string, string> } }): string | undefined {
  return live.metadata?.labels?.[GROUP_LABEL];
}
