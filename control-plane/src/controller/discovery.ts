// Workload discovery as a running part (workloads.ts is its pure half): watches Deployments and
// ReplicaSets and hands the lanes they give to DiscoveredRules. It runs on every replica, since it
// only reads and each replica serves rule streams of its own; only the active replica records the
// `discover` revisions. Runs are serialized and coalesced: a change during a run gets one more run,
// so an older listing never overwrites a newer one.
import type { KubeConfig } from "@kubernetes/client-node";
import type { RuleSource } from "../contracts.js";
import { diff } from "../store/diff.js";
import type { Store } from "../store/types.js";
import type { DiscoveredRules } from "./discovered-rules.js";
import { KubeClient, watchForever } from "./kube-client.js";
import { discoverLanes, withDiscovered, workloadOf, type Workload } from "./workloads.js";

const WORKLOAD_KINDS = [{ kind: "Deployment", plural: "deployments" }, { kind: "ReplicaSet", plural: "replicasets" }] as const;

/** "canary: mocka, mockc; blue: mockb" ("" when nothing was discovered). */
export function discoveredText(m: Record<string, string[]>): string {
  return Object.entries(m).sort(([a], [b]) => (a < b ? -1 : 1)).map(([lane, s]) => `${lane}: ${s.join(", ")}`).join("; ");
}

export interface DiscoveryOptions {
  /** Namespace of a service whose hosts name none. */
  defaultNamespace?: string;
  /** Whether this replica records revisions (the active one). */
  isActive?: () => boolean;
  log?: (line: string) => void;
}

export class WorkloadDiscovery {
  private readonly client: KubeClient;
  private readonly log: (line: string) => void;
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;
  private readonly watchers: Array<{ stop(): void }> = [];
  private readonly unsubscribe: () => void;
  private closed = false;

  constructor(private readonly kc: KubeConfig, private readonly store: RuleSource & Pick<Store, "recordDiscovery">, private readonly rules: DiscoveredRules, private readonly opts: DiscoveryOptions = {}) {
    this.client = new KubeClient(kc);
    this.log = opts.log ?? ((line) => console.error(`graylane discovery: ${line}`));
    // A new or changed group may already have workloads.
    this.unsubscribe = store.onChange(() => void this.refresh());
  }

  start(): void {
    for (const w of WORKLOAD_KINDS) this.watchers.push(watchForever(this.kc, `/apis/apps/v1/${w.plural}`, () => void this.refresh()));
    void this.refresh();
  }

  /** A run that starts after this call (coalesced with others asked for meanwhile); never rejects. */
  refresh(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (!this.running) {
      this.running = this.run().finally(() => { this.running = undefined; });
      return this.running;
    }
    this.next ??= this.running.then(() => {
      this.next = undefined;
      return this.refresh();
    });
    return this.next;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unsubscribe();
    for (const w of this.watchers) w.stop();
    await this.running;
  }

  private async run(): Promise<void> {
    try {
      const workloads: Workload[] = [];
      for (const w of WORKLOAD_KINDS) {
        const list = await this.client.expect<{ items: unknown[] }>([200], "GET", `/apis/apps/v1/${w.plural}`);
        for (const item of list.body.items) workloads.push(workloadOf(w.kind, item as never));
      }
      const groups = this.store.current().groups;
      const found = new Map(groups.map((g) => [g.name, discoverLanes(g, workloads, this.opts.defaultNamespace ?? "default")]));
      const had = new Map(groups.map((g) => [g.name, this.rules.membership(g.name)]));
      if (!this.rules.setDiscovered(found)) return;
      this.log(`discovered: ${groups.map((g) => `${g.name} {${discoveredText(found.get(g.name)!)}}`).join(" ")}`);
      if (!(this.opts.isActive?.() ?? true)) return;
      // Each change of what a group's filters get is a revision (actor `controller`): the log says
      // when a canary's workload put its service into the lane, and when it left.
      for (const g of groups) {
        const patch = diff(withDiscovered(g, had.get(g.name) ?? {}), withDiscovered(g, found.get(g.name) ?? {}));
        if (patch.length) await this.store.recordDiscovery?.(g.name, patch, "controller");
      }
    } catch (e) {
      this.log(`failed, trying again at the next change: ${(e as Error).message}`);
    }
  }
}
