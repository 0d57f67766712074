// The rules the filters get when workload discovery is on: the store's lane groups with each
// autoLanes group's discovered lane membership applied (workloads.ts withDiscovered). The store's
// specs are never changed; a discovery change is pushed like a revision (same revision number,
// new content, so a new RuleSet version).
import type { RuleSource } from "../contracts.js";
import type { LaneGroup } from "../model/lanegroup.js";
import { withDiscovered } from "./workloads.js";

export class DiscoveredRules implements RuleSource {
  /** group → lane → services discovered */
  private discovered = new Map<string, Record<string, string[]>>();
  private readonly listeners = new Set<(revision: number) => void>();
  private readonly unsubscribe: () => void;

  constructor(private readonly source: RuleSource) {
    this.unsubscribe = source.onChange((revision) => this.emit(revision));
  }

  current(): { revision: number; groups: LaneGroup[] } {
    const cur = this.source.current();
    return { revision: cur.revision, groups: cur.groups.map((g) => withDiscovered(g, this.discovered.get(g.name) ?? {})) };
  }

  onChange(listener: (revision: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** What discovery found per group (lane → services); the groups without an entry have none. */
  membership(group: string): Record<string, string[]> {
    return this.discovered.get(group) ?? {};
  }

  /** Replaces the discovered membership; listeners hear of it only when it changed. */
  setDiscovered(next: Map<string, Record<string, string[]>>): boolean {
    const key = (m: Map<string, Record<string, string[]>>) => JSON.stringify([...m.entries()].filter(([, v]) => Object.keys(v).length).sort());
    if (key(next) === key(this.discovered)) return false;
    this.discovered = new Map(next);
    this.emit(this.source.current().revision);
    return true;
  }

  close(): void {
    this.unsubscribe();
  }

  private emit(revision: number): void {
    for (const l of this.listeners) l(revision);
  }
}
