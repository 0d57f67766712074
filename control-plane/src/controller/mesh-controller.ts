// The mesh controller (`graylane serve --store kubernetes --mesh-controller`): keeps the Istio
// objects of every LaneGroup in step with the groups and the workloads.
//
// - Discovery: Deployments and ReplicaSets are watched; an autoLanes group's lanes gain the services
//   with an available workload carrying the lane's labels (workloads.ts). The membership goes to the
//   RuleSet (DiscoveredRules) and to the LaneGroup's `status.discovered`, never into its spec.
// - Objects: per group, what `mesh manifests` generates (desired.ts), applied by server-side apply
//   with field manager `graylane-controller` (force: the controller owns those fields, and takes over
//   objects labelled managed-by graylane); a managed object no group wants any more is deleted.
//   WasmPlugins keep the RuleSet they were created with (toApply).
// - Deletion: a finalizer on each LaneGroup; when one is deleted, its objects (found by the
//   `graylane.io/group` label: no garbage collector is assumed) go first, then the finalizer.
// - Drift: everything is applied again every `resyncMs` and on every change of groups or workloads.
// A reconcile pass never throws: its errors are logged and the next pass tries again.
import type { KubeConfig } from "@kubernetes/client-node";
import type { RuleSource } from "../contracts.js";
import { LANE_GROUP_PATH as LG_PATH } from "../store/kube-resources.js";
import { desiredObjects, kindPath, MANAGED_BY, MANAGED_KINDS, objectKey, ownerGroup, toApply, type MeshObject, type MeshOptions } from "./desired.js";
import type { DiscoveredRules } from "./discovered-rules.js";
import { KubeClient, watchForever } from "./kube-client.js";
import { discoveredText, type WorkloadDiscovery } from "./discovery.js";

export { discoveredText };

export const CONTROLLER_FIELD_MANAGER = "graylane-controller";
export const FINALIZER = "graylane.io/mesh-objects";

export interface MeshControllerOptions {
  mesh: MeshOptions;
  /** Everything is applied again this often (default 30 s). */
  resyncMs?: number;
  log?: (line: string) => void;
}

interface LaneGroupObject {
  metadata: { name: string; resourceVersion?: string; deletionTimestamp?: string; finalizers?: string[] };
  status?: { discovered?: string };
}

export class MeshController {
  private readonly client: KubeClient;
  private readonly log: (line: string) => void;
  private timer: NodeJS.Timeout | undefined;
  private pending: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private watcher: { stop(): void } | undefined;
  private readonly unsubscribe: () => void;
  /** Kinds the API server does not serve (Istio not installed): skipped, checked again each resync. */
  private missingKinds = new Set<string>();
  /** Passes completed (tests wait on it). */
  passes = 0;
  lastError: string | undefined;

  constructor(private readonly kc: KubeConfig, private readonly store: RuleSource, private readonly rules: DiscoveredRules,
    private readonly discovery: WorkloadDiscovery, private readonly opts: MeshControllerOptions) {
    this.client = new KubeClient(kc);
    this.log = opts.log ?? ((line) => console.error(`graylane mesh controller: ${line}`));
    // A spec or a discovery change (DiscoveredRules hears both) is a reason for a pass.
    this.unsubscribe = rules.onChange(() => this.kick());
  }

  start(): void {
    this.watcher = watchForever(this.kc, LG_PATH, () => this.kick());
    this.timer = setInterval(() => this.kick(), this.opts.resyncMs ?? 30_000);
    this.kick();
  }

  /** Runs a pass soon (coalesced: at most one runs, and one more after it). */
  kick(): void {
    if (this.closed || this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      if (this.running) { this.again = true; return; }
      this.running = this.pass().finally(() => {
        this.running = undefined;
        if (this.again) { this.again = false; this.kick(); }
      });
    }, 20);
  }

  /** Resolves after a whole pass that started after this call. */
  async settled(): Promise<void> {
    const target = this.passes + (this.running ? 2 : 1);
    this.kick();
    while (this.passes < target && !this.closed) await new Promise((r) => setTimeout(r, 10));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unsubscribe();
    clearInterval(this.timer);
    clearTimeout(this.pending);
    this.watcher?.stop();
    await this.running;
  }

  private async pass(): Promise<void> {
    try {
      await this.reconcile();
      this.lastError = undefined;
    } catch (e) {
      this.lastError = (e as Error).message;
      this.log(`pass failed, retrying at the next change or resync: ${this.lastError}`);
    } finally {
      this.passes++;
    }
  }

  private async reconcile(): Promise<void> {
    const c = this.client;
    // Discovery first, so the objects and the RuleSet of this pass agree.
    await this.discovery.refresh();
    const specGroups = this.store.current().groups;
    const groups = this.rules.current().groups;

    // Finalizers on the live groups; the discovered membership in their status.
    const objects = (await c.expect<{ items: LaneGroupObject[] }>([200], "GET", LG_PATH)).body.items;
    for (const o of objects) {
      if (o.metadata.deletionTimestamp) continue;
      if (!(o.metadata.finalizers ?? []).includes(FINALIZER)) {
        await c.expect([200, 404, 409], "PATCH", `${LG_PATH}/${o.metadata.name}`,
          { metadata: { finalizers: [...(o.metadata.finalizers ?? []), FINALIZER], resourceVersion: o.metadata.resourceVersion } }, "application/merge-patch+json");
      }
      const text = discoveredText(this.rules.membership(o.metadata.name));
      if ((o.status?.discovered ?? "") !== text && specGroups.some((g) => g.name === o.metadata.name && g.autoLanes)) {
        await c.expect([200, 404], "PATCH", `${LG_PATH}/${o.metadata.name}/status`, { status: { discovered: text } }, "application/merge-patch+json");
      }
    }

    // Apply what is wanted; delete what is managed and no longer wanted.
    const liveGroups = new Set(objects.filter((o) => !o.metadata.deletionTimestamp).map((o) => o.metadata.name));
    const want = desiredObjects(groups.filter((g) => liveGroups.has(g.name)), this.opts.mesh);
    for (const obj of want.values()) await this.apply(obj);
    const remaining = new Set<string>(); // groups that still have objects after pruning
    for (const k of MANAGED_KINDS) {
      const list = await c.request<{ items: MeshObject[] }>("GET", `${kindPath(k.apiVersion, k.plural)}?labelSelector=${encodeURIComponent(`${MANAGED_BY.key}=${MANAGED_BY.value}`)}`);
      if (list.status === 404) { this.missing(k.kind); continue; }
      if (list.status !== 200) throw new Error(`list ${k.plural}: HTTP ${list.status}: ${(list.body as { message?: string })?.message}`);
      this.missingKinds.delete(k.kind);
      for (const live of list.body.items) {
        const key = objectKey({ ...live, kind: k.kind });
        if (want.has(key)) continue;
        const owner = ownerGroup(live);
        const deleted = await c.request("DELETE", `${kindPath(k.apiVersion, k.plural, live.metadata?.namespace)}/${live.metadata?.name}`);
        if (deleted.status >= 300 && deleted.status !== 404) { if (owner) remaining.add(owner); continue; }
        this.log(`deleted ${key}${owner ? ` (lane group ${owner})` : ""}`);
      }
    }

    // A deleted group whose objects are all gone loses its finalizer.
    for (const o of objects) {
      const fins = o.metadata.finalizers ?? [];
      if (!o.metadata.deletionTimestamp || !fins.includes(FINALIZER) || remaining.has(o.metadata.name)) continue;
      await c.expect([200, 404, 409], "PATCH", `${LG_PATH}/${o.metadata.name}`,
        { metadata: { finalizers: fins.filter((f) => f !== FINALIZER), resourceVersion: o.metadata.resourceVersion } }, "application/merge-patch+json");
      this.log(`lane group ${o.metadata.name}: mesh objects removed, finalizer released`);
    }
  }

  /** Server-side apply of one object (a WasmPlugin keeps its live RuleSet). */
  private async apply(obj: MeshObject): Promise<void> {
    const kind = MANAGED_KINDS.find((k) => k.kind === obj.kind)!;
    const ns = obj.metadata?.namespace ?? "default";
    const path = `${kindPath(obj.apiVersion, kind.plural, ns)}/${obj.metadata?.name}`;
    let body: MeshObject = obj;
    if (obj.kind === "WasmPlugin") {
      const live = await this.client.request("GET", path);
      body = toApply(obj, live.status === 200 ? live.body : undefined);
    }
    const r = await this.client.request("PATCH", `${path}?fieldManager=${CONTROLLER_FIELD_MANAGER}&force=true`, body, "application/apply-patch+yaml");
    if (r.status === 404 && /the server could not find the requested resource/.test(String((r.body as { message?: string })?.message))) {
      this.missing(obj.kind);
      return;
    }
    if (r.status >= 300) throw new Error(`apply ${objectKey(obj)}: HTTP ${r.status}: ${(r.body as { message?: string })?.message ?? JSON.stringify(r.body)}`);
  }

  private missing(kind: string): void {
    if (!this.missingKinds.has(kind)) this.log(`${kind} is not served by the API server (Istio's CRDs not installed?): skipped until it is`);
    this.missingKinds.add(kind);
  }
}

