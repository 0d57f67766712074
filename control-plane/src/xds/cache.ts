// Snapshot cache (in the manner of go-control-plane's SnapshotCache): immutable, versioned snapshots
// of what each node receives, recomputed whenever the RuleSource commits a revision. The server only
// reads snapshots and is told when a new one exists; it never compiles anything itself.
//
// A node receives every lane group compiled together, or, when its identity is scoped to a namespace,
// the groups of that namespace; the version is the RuleSet's content hash, so a revision that does
// not change what a node receives (e.g. a no-op PUT, or another namespace's group) produces no push.
import { compileRuleSet, CompileError } from "../compile/index.js";
import type { RuleSource } from "../contracts.js";
import type { Node } from "../generated/graylane/v1/discovery_pb.js";
import type { RuleSet } from "../generated/graylane/v1/rules_pb.js";

export interface Snapshot {
  /** Content hash of the RuleSet (RuleSet.version); what subscribers ACK. */
  readonly version: string;
  /** Store revision the snapshot was computed from (the latest with this content). */
  readonly revision: number;
  readonly ruleSet: RuleSet;
  /** toBinary(RuleSetSchema, ruleSet), encoded once. */
  readonly bytes: Uint8Array;
  /** Lane group names it holds. */
  readonly groups: readonly string[];
  /** Date.now() when computed. */
  readonly createdAt: number;
}

export interface SnapshotCacheOptions {
  /** RuleSet.required_features for every snapshot. */
  requiredFeatures?: string[];
  /**
   * Appended to every version (the override key's fingerprint): a new key changes what filters
   * must hold, so even an up-to-date filter gets a push carrying it.
   */
  versionSuffix?: string;
}

export interface CacheError {
  revision: number;
  message: string;
  at: string;
}

export class SnapshotCache {
  private snap: Snapshot;
  private readonly listeners = new Set<(s: Snapshot) => void>();
  /** Per namespace scope: the snapshot compiled from the full one `from`. */
  private readonly scoped = new Map<string, { from: Snapshot; snap: Snapshot }>();
  private readonly unsubscribe: () => void;
  /** The last revision that could not be compiled (the previous snapshot stays served), if any. */
  lastError: CacheError | undefined;

  constructor(private readonly rules: RuleSource, private readonly opts: SnapshotCacheOptions = {}) {
    // A store whose contents do not compile at start is a bug worth failing loudly on: serving an
    // empty RuleSet instead would wipe every filter's routing.
    this.snap = this.build();
    this.unsubscribe = rules.onChange(() => this.refresh());
  }

  /** The snapshot currently served. */
  current(): Snapshot {
    return this.snap;
  }

  /**
   * The snapshot a node receives: every group, or with a namespace scope only the groups that list
   * that namespace in `namespaces` or list none (cluster-wide groups). Scoped snapshots are compiled
   * once per scope and version.
   */
  snapshotFor(_node?: Node, scope?: string): Snapshot {
    if (scope === undefined) return this.snap;
    const hit = this.scoped.get(scope);
    if (hit && hit.from === this.snap) return hit.snap;
    const groups = this.rules.current().groups.filter((g) => !g.namespaces || g.namespaces.includes(scope));
    const compiled = compileRuleSet(groups, { requiredFeatures: this.opts.requiredFeatures });
    const snap = Object.freeze({
      version: compiled.version + (this.opts.versionSuffix ?? ""),
      revision: this.snap.revision,
      ruleSet: compiled.ruleSet,
      bytes: compiled.bytes,
      groups: Object.freeze(groups.map((g) => g.name)),
      createdAt: Date.now(),
    });
    this.scoped.set(scope, { from: this.snap, snap });
    return snap;
  }

  /**
   * Recomputes from RuleSource.current(). Listeners hear of it only when the version changed. A
   * revision that fails to compile keeps the previous snapshot and is recorded in lastError.
   */
  refresh(): Snapshot {
    let next: Snapshot;
    try {
      next = this.build();
    } catch (e) {
      if (!(e instanceof CompileError)) throw e;
      this.lastError = { revision: this.rules.current().revision, message: e.message, at: new Date().toISOString() };
      return this.snap;
    }
    this.lastError = undefined;
    const changed = next.version !== this.snap.version;
    // Same content, newer revision: keep the old object (identity = content) but track the revision.
    this.snap = changed ? next : Object.freeze({ ...this.snap, revision: next.revision });
    if (changed) for (const l of [...this.listeners]) l(next);
    return this.snap;
  }

  /** Called synchronously with every new snapshot version; returns an unsubscribe function. */
  watch(listener: (s: Snapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.unsubscribe();
    this.listeners.clear();
  }

  private build(): Snapshot {
    const { revision, groups } = this.rules.current();
    const compiled = compileRuleSet(groups, { requiredFeatures: this.opts.requiredFeatures });
    return Object.freeze({
      version: compiled.version + (this.opts.versionSuffix ?? ""),
      revision,
      ruleSet: compiled.ruleSet,
      bytes: compiled.bytes,
      groups: Object.freeze(groups.map((g) => g.name)),
      createdAt: Date.now(),
    });
  }
}
