// The LaneGroup's Synced condition (`--store kubernetes`): True when every live subscriber holds a
// RuleSet compiled from at least the revision that last changed the group, with the counts and the
// NACK errors in its message. Versions are content hashes, so the revision behind each version is
// remembered as it is served (the latest revision with that content). Written at most once a second
// per object, and only when it changed.
import type { RuleServerStatus, RuleStatusSource } from "../contracts.js";
import type { Store } from "../store/index.js";
import { LANE_GROUP_PATH as LG_PATH } from "../store/kube-resources.js";
import type { KubeClient } from "./kube-client.js";

export interface SyncedVerdict {
  status: "True" | "False";
  reason: "Synced" | "Pending" | "Nacked" | "NoSubscribers";
  message: string;
  synced: number;
  live: number;
}

/** The verdict for a group last changed at `groupRevision`; `revisionOf` maps a served version to its revision. */
export function syncedVerdict(groupRevision: number, st: RuleServerStatus, revisionOf: (version: string) => number | undefined): SyncedVerdict {
  let live = 0;
  let synced = 0;
  const nacks: string[] = [];
  for (const node of st.nodes) {
    for (const s of node.subscribers) {
      if (!s.connected) continue;
      live++;
      const r = s.ackedVersion ? revisionOf(s.ackedVersion) : undefined;
      if (r !== undefined && r >= groupRevision) synced++;
      // A NACK of a version that carries this change is this change's problem.
      const nr = s.lastNack && revisionOf(s.lastNack.version);
      if (s.lastNack && nr !== undefined && nr >= groupRevision && s.ackedVersion !== st.version) nacks.push(`${node.nodeId}: ${s.lastNack.error}`);
    }
  }
  if (live === 0) return { status: "False", reason: "NoSubscribers", message: `no live subscriber (revision ${groupRevision})`, synced, live };
  const counts = `${synced} of ${live} live subscribers hold revision ${groupRevision} or later`;
  if (synced === live) return { status: "True", reason: "Synced", message: counts, synced, live };
  if (nacks.length) return { status: "False", reason: "Nacked", message: `${counts}; NACKed: ${[...new Set(nacks)].slice(0, 5).join("; ")}`, synced, live };
  return { status: "False", reason: "Pending", message: counts, synced, live };
}

interface LaneGroupObject {
  metadata: { name: string; resourceVersion?: string; generation?: number; deletionTimestamp?: string };
  status?: { conditions?: Array<{ type: string; status: string; reason?: string; message?: string; lastTransitionTime: string; observedGeneration?: number }> };
}

export class SyncedStatus {
  private readonly revisions = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(private readonly client: KubeClient, private readonly store: Store, private readonly rules: RuleStatusSource, private readonly everyMs = 1000) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One pass: the conditions that changed are written (errors are left to the next pass). */
  async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const st = this.rules.status();
      this.revisions.set(st.version, Math.max(this.revisions.get(st.version) ?? 0, st.revision));
      if (this.revisions.size > 1000) this.revisions.delete(this.revisions.keys().next().value!);
      const objects = (await this.client.request<{ items: LaneGroupObject[] }>("GET", LG_PATH)).body?.items ?? [];
      for (const o of objects) {
        const g = this.store.get(o.metadata.name);
        if (!g || o.metadata.deletionTimestamp) continue;
        const v = syncedVerdict(g.revision, st, (version) => this.revisions.get(version));
        const conditions = o.status?.conditions ?? [];
        const had = conditions.find((c) => c.type === "Synced");
        if (had && had.status === v.status && had.reason === v.reason && had.message === v.message && had.observedGeneration === o.metadata.generation) continue;
        const synced = {
          type: "Synced", status: v.status, reason: v.reason, message: v.message,
          lastTransitionTime: had?.status === v.status ? had.lastTransitionTime : new Date().toISOString().replace(/\.\d+Z$/, "Z"),
          ...(o.metadata.generation !== undefined ? { observedGeneration: o.metadata.generation } : {}),
        };
        // The precondition keeps another writer's conditions (the store's Ready): a conflict waits a pass.
        await this.client.request("PATCH", `${LG_PATH}/${o.metadata.name}/status`,
          { metadata: { resourceVersion: o.metadata.resourceVersion }, status: { conditions: [...conditions.filter((c) => c.type !== "Synced"), synced] } }, "application/merge-patch+json");
      }
    } catch {
      // the next pass tries again
    } finally {
      this.running = false;
    }
  }
}
