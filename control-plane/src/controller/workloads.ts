// Workload discovery (ASM's autoUpdate), pure: which services of a lane group have an available
// workload in which lane. A workload is a Deployment or a ReplicaSet (Argo Rollouts' canary
// ReplicaSets, Kruise Rollout's extra Deployment); it counts once at least one replica is available.
// A lane's workloads are those whose pod template carries the lane's labels (`labels` of the lane,
// else `{laneLabelKey: lane}`), and the service is the pod template's `serviceLabelKey` label.
import type { LaneGroup } from "../model/lanegroup.js";
import { DEFAULT_LANE_LABEL_KEY, laneLabels } from "../mesh/istio.js";

export const DEFAULT_SERVICE_LABEL_KEY = "app";

/** How a group's pods are labelled (its fields with their defaults), as the mesh generators take it. */
export function labellingOf(g: LaneGroup): { laneLabelKey: string; laneLabels: Record<string, Record<string, string>>; workloadLabel: string } {
  return {
    laneLabelKey: g.laneLabelKey ?? DEFAULT_LANE_LABEL_KEY,
    laneLabels: Object.fromEntries(g.lanes.filter((l) => l.labels).map((l) => [l.name, l.labels!])),
    workloadLabel: g.serviceLabelKey ?? DEFAULT_SERVICE_LABEL_KEY,
  };
}

export interface Workload {
  kind: "Deployment" | "ReplicaSet";
  namespace: string;
  name: string;
  /** The pod template's labels. */
  labels: Record<string, string>;
  /** status.availableReplicas (0 when absent). */
  available: number;
}

/** A Deployment or ReplicaSet object (apps/v1) as the API server returns it. */
export function workloadOf(kind: Workload["kind"], obj: {
  metadata?: { name?: string; namespace?: string };
  spec?: { template?: { metadata?: { labels?: Record<string, string> } } };
  status?: { availableReplicas?: number };
}): Workload {
  return {
    kind,
    namespace: obj.metadata?.namespace ?? "default",
    name: obj.metadata?.name ?? "",
    labels: obj.spec?.template?.metadata?.labels ?? {},
    available: obj.status?.availableReplicas ?? 0,
  };
}

/** The namespace of a group's service: from a host `NAME.NS[.svc[.DOMAIN]]`, else the default. */
export function serviceNamespace(service: { name: string; hosts: string[] }, fallback: string): string {
  for (const h of service.hosts) {
    const parts = h.toLowerCase().split(".");
    if (parts.length >= 2 && parts[0] === service.name && (parts.length === 2 || parts[2] === "svc")) return parts[1]!;
  }
  return fallback;
}

/**
 * Per lane of `g` (not base), the group's services that have an available workload in that lane,
 * in the service's own namespace (`defaultNamespace` when its hosts name none), sorted; lanes with
 * none are absent. Empty unless the group has autoLanes.
 */
export function discoverLanes(g: LaneGroup, workloads: Iterable<Workload>, defaultNamespace = "default"): Record<string, string[]> {
  if (!g.autoLanes) return {};
  const labelling = labellingOf(g);
  const serviceKey = labelling.workloadLabel;
  const namespaces = new Map(g.services.map((s) => [s.name, serviceNamespace(s, defaultNamespace)]));
  const out: Record<string, Set<string>> = {};
  const available = [...workloads].filter((w) => w.available > 0);
  for (const lane of g.lanes) {
    const selector = laneLabels(lane.name, labelling); // the DestinationRule subset's labels too
    for (const w of available) {
      const service = w.labels[serviceKey];
      // A workload of another namespace is another service that happens to share the name.
      if (service === undefined || namespaces.get(service) !== w.namespace) continue;
      if (!Object.entries(selector).every(([k, v]) => w.labels[k] === v)) continue;
      (out[lane.name] ??= new Set()).add(service);
    }
  }
  return Object.fromEntries(Object.entries(out).map(([lane, s]) => [lane, [...s].sort()]));
}

/**
 * The group as the RuleSet and the mesh objects see it: each lane's services are those its spec
 * lists plus the discovered ones (the spec itself is never changed).
 */
export function withDiscovered(g: LaneGroup, discovered: Record<string, string[]>): LaneGroup {
  if (Object.keys(discovered).length === 0) return g;
  return {
    ...g,
    lanes: g.lanes.map((l) => {
      const more = (discovered[l.name] ?? []).filter((s) => !l.services.includes(s));
      if (more.length === 0) return l;
      // In the group's service order, as a written spec would be.
      const all = new Set([...l.services, ...more]);
      return { ...l, services: g.services.map((s) => s.name).filter((s) => all.has(s)) };
    }),
  };
}
