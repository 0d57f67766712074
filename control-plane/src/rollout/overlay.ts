// Release overlays (the engine's overlay mode, beside a Kubernetes store): while a release is active
// (progressing, paused, promoted), the weight and match it set for its lane are laid over the lane
// group the spec describes; the filters get the result, the spec itself never changes, so GitOps
// tools see no drift. When the release ends, the lane is what the spec says again.
import type { RuleSource } from "../contracts.js";
import type { LaneGroup } from "../model/lanegroup.js";
import type { ReleaseStore } from "./release-store.js";
import { ACTIVE, type Release } from "./state.js";

/** What an active release sets on its lane. */
export interface LaneOverlay {
  release: string;
  weight: number;
  match?: unknown[];
}

/** group → lane → overlay, from the active releases (the newest one wins a lane). */
export function overlaysOf(releases: Release[]): Map<string, Map<string, LaneOverlay>> {
  const out = new Map<string, Map<string, LaneOverlay>>();
  for (const r of releases) {
    if (!ACTIVE.has(r.status)) continue;
    const lanes = out.get(r.group) ?? new Map<string, LaneOverlay>();
    if (!lanes.has(r.lane)) lanes.set(r.lane, { release: r.name, weight: r.weight, ...(r.laneMatch ? { match: r.laneMatch } : {}) });
    out.set(r.group, lanes);
  }
  return out;
}

/** The group with its lanes' overlays applied (the same object when none applies). */
export function withOverlays(g: LaneGroup, lanes: Map<string, LaneOverlay> | undefined): LaneGroup {
  if (!lanes?.size) return g;
  return {
    ...g,
    lanes: g.lanes.map((l) => {
      const o = lanes.get(l.name);
      return o ? { ...l, weight: o.weight, ...(o.match ? { match: o.match as typeof l.match } : {}) } : l;
    }),
  };
}

/** A RuleSource: `source`'s groups with the active releases' overlays; heard of when either changes. */
export class ReleaseOverlayRules implements RuleSource {
  private overlays = new Map<string, Map<string, LaneOverlay>>();
  private key = "";
  private readonly listeners = new Set<(revision: number) => void>();
  private readonly unsubscribe: Array<() => void> = [];

  constructor(private readonly source: RuleSource, private readonly releases: ReleaseStore) {
    this.refresh();
    this.unsubscribe.push(source.onChange((rev) => this.emit(rev)));
    if (releases.onChange) this.unsubscribe.push(releases.onChange(() => { if (this.refresh()) this.emit(this.source.current().revision); }));
  }

  /** The overlays of a group's lanes (REST shows them beside the spec). */
  of(group: string): Record<string, LaneOverlay> {
    return Object.fromEntries(this.overlays.get(group) ?? []);
  }

  current(): { revision: number; groups: LaneGroup[] } {
    const cur = this.source.current();
    return { revision: cur.revision, groups: cur.groups.map((g) => withOverlays(g, this.overlays.get(g.name))) };
  }

  onChange(listener: (revision: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    for (const u of this.unsubscribe) u();
  }

  /** Re-reads the active releases; true when the overlays changed. */
  private refresh(): boolean {
    const next = overlaysOf(this.releases.list({ status: [...ACTIVE] }));
    const key = JSON.stringify([...next].map(([g, lanes]) => [g, [...lanes]]));
    if (key === this.key) return false;
    this.key = key;
    this.overlays = next;
    return true;
  }

  private emit(revision: number): void {
    for (const l of this.listeners) l(revision);
  }
}
