// `graylane store export` / `import`: every lane group and its history, from one store to another
// (SQLite → Kubernetes, etcd → SQLite, ...). The export is the revision log, oldest first, each
// revision with the whole state after it; the import replays it into an empty store, revision by
// revision, as the puts and deletes that lead from one state to the next, with each revision's
// actor. The imported log therefore holds the same contents in the same order with the same
// actors; its numbers and times are the target's (a revision that changed several groups, a
// rollback, becomes one revision per group). Bodies go through the model on import, so defaults
// added since the export apply.
import { isDeepStrictEqual } from "node:util";
import type { LaneGroup } from "../model/lanegroup.js";
import type { Revision, Store } from "./types.js";

export const EXPORT_FORMAT = "graylane.io/store-export/v1";

export interface StoreExport {
  format: typeof EXPORT_FORMAT;
  exportedAt: string;
  /** The retained revisions, oldest first. */
  revisions: Revision[];
  /** The groups now, with their revisions. */
  groups: Array<{ name: string; revision: number; lanegroup: LaneGroup }>;
}

/** The writes that take the state of one revision to the next: deletes, then puts. */
export interface ReplayStep {
  /** The exported revision (0: the final check against the current groups). */
  from: number;
  actor: string;
  deletes: string[];
  puts: LaneGroup[];
}

/** Every retained revision (the log is paged newest first). */
export function exportStore(store: Store, now = new Date()): StoreExport {
  const revisions: Revision[] = [];
  let before: number | undefined;
  for (;;) {
    const page = store.revisions({ before, limit: 500 });
    if (page.length === 0) break;
    for (const s of page) {
      const r = store.revision(s.revision);
      if (r) revisions.push(r);
    }
    before = page.at(-1)!.revision;
  }
  revisions.sort((a, b) => a.revision - b.revision);
  return { format: EXPORT_FORMAT, exportedAt: now.toISOString(), revisions, groups: store.list().map((g) => ({ name: g.name, revision: g.revision, lanegroup: g.lanegroup })) };
}

/**
 * The writes that replay an export: from an empty state through each revision's state. The first
 * retained revision starts from nothing (older ones may have been pruned), so its whole state is
 * written under its actor. A final check appends whatever the current groups differ by (none for a
 * consistent export).
 */
export function replayPlan(doc: StoreExport): ReplayStep[] {
  const steps: ReplayStep[] = [];
  let state = new Map<string, LaneGroup>();
  const moveTo = (next: Map<string, LaneGroup>, actor: string, from: number) => {
    const puts = [...next].filter(([name, g]) => !isDeepStrictEqual(state.get(name), g)).map(([, g]) => g);
    const deletes = [...state.keys()].filter((name) => !next.has(name));
    if (puts.length || deletes.length) steps.push({ from, actor, deletes, puts });
    state = next;
  };
  for (const r of doc.revisions) moveTo(new Map(r.lanegroups.map((g) => [g.name, g])), r.actor, r.revision);
  moveTo(new Map(doc.groups.map((g) => [g.name, g.lanegroup])), "import", 0);
  return steps;
}

/** Checks an export document's shape; throws naming what is wrong. */
export function readExport(doc: unknown): StoreExport {
  const d = doc as Partial<StoreExport> | undefined;
  if (!d || typeof d !== "object") throw new Error("not a store export: want a JSON object");
  if (d.format !== EXPORT_FORMAT) throw new Error(`/format: want "${EXPORT_FORMAT}", got ${JSON.stringify(d.format)}`);
  if (!Array.isArray(d.revisions)) throw new Error("/revisions: want a list");
  if (!Array.isArray(d.groups)) throw new Error("/groups: want a list");
  d.revisions.forEach((r, i) => {
    if (!r || typeof r.revision !== "number" || typeof r.actor !== "string" || !Array.isArray(r.lanegroups)) throw new Error(`/revisions/${i}: want {revision, actor, lanegroups, ...}`);
  });
  return d as StoreExport;
}

/** Replays an export into an empty store; resolves to the number of revisions written. */
export async function importStore(store: Store, doc: StoreExport, log: (line: string) => void = () => {}): Promise<number> {
  if (store.list().length > 0 || store.revisions({ limit: 1 }).length > 0) {
    throw new Error(`the target store is not empty (${store.list().length} lane groups, revision ${store.current().revision}): import into an empty one`);
  }
  let written = 0;
  for (const step of replayPlan(doc)) {
    for (const name of step.deletes) {
      await store.delete(name, { actor: step.actor });
      written++;
    }
    // A revision that moved a service between groups is valid only as a whole: a put refused
    // against the other groups is tried again after the others, until no put gets through.
    let pending = step.puts;
    while (pending.length) {
      const refused: Array<{ g: LaneGroup; e: Error }> = [];
      for (const g of pending) {
        try {
          await store.put(g, { actor: step.actor });
          written++;
        } catch (e) {
          refused.push({ g, e: e as Error });
        }
      }
      if (refused.length === pending.length) {
        throw new Error(`revision ${step.from}: lane group ${refused[0]!.g.name} refused: ${refused[0]!.e.message}`);
      }
      pending = refused.map((r) => r.g);
    }
  }
  log(`imported ${doc.revisions.length} revisions as ${written} writes; ${store.list().length} lane groups at revision ${store.current().revision}`);
  return written;
}
