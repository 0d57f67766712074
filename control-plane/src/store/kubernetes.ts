// The Store on a Kubernetes API server (`graylane serve --store kubernetes`, in-cluster or with
// `--kubeconfig FILE`): lane groups are cluster-scoped LaneGroup objects (metadata.name = the group's
// name, spec = the rest of its document), and the revision log is cluster-scoped LaneGroupRevision
// objects `rev-<12 digits>`, one per revision, immutable once written (deploy/crds/).
//
// Why a CRD for revisions, not ConfigMaps in a namespace: the log is cluster-wide like the groups
// it describes, needs no namespace to exist first, is typed by its own schema (kubectl get
// lanegrouprevisions prints revision, op, groups, actor), and RBAC can let auditors read it without
// reading every ConfigMap of a namespace, or let the control plane write it without writing any.
//
// The LaneGroup objects are the truth for what is there now; each revision records, per changed
// group, the content before and after and the object's resourceVersion right after the change. A
// write from REST updates the object with a resourceVersion precondition (the version this replica
// last recorded, so an unrecorded kubectl edit is never overwritten: the API server answers 409, the
// edit is recorded, and the write is checked again), then creates revision n+1, which fails if
// another replica took n first (create is the compare-and-swap, like etcd's head). A watch on
// LaneGroups turns every change made elsewhere (kubectl apply/edit/delete, GitOps) into a revision
// whose actor is the field manager the API server recorded in managedFields (`kubectl` when
// none); a change whose content equals what is recorded (a status or label write) is none. A
// restart compares the objects with the log and records what changed while no replica watched.
//
// Reads are served from this process's mirror, kept current by watches on both kinds, so they stay
// synchronous. Stored bodies (objects and revisions) are re-parsed through the model when read, so
// defaults added later apply to old objects. Only the last `retain` revisions are kept (default
// 1000); older ones are deleted, and a group untouched since keeps its ETag through status.revision.
import {
  ApiException, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions, VersionApi, Watch,
} from "@kubernetes/client-node";
import { parseLaneGroup, type LaneGroup } from "../model/lanegroup.js";
import { checkExpected, putChange, rollbackPlan, validateAmong, type Validation } from "./checks.js";
import { diff } from "./diff.js";
import {
  ACTOR_ANNOTATION, API_GROUP, API_VERSION, FIELD_MANAGER, GROUP_VERSION, LANE_GROUP, LANE_GROUP_PATH, LANE_GROUP_REVISION,
  LaneGroupRevisionSpec, type LaneGroupStatus, type RevisionChange,
} from "./kube-resources.js";
import {
  ConflictError, NotFoundError, StoreError, ValidationError,
  type GroupChange, type ListRevisionsOptions, type PutResult, type Revision, type RevisionOp,
  type RevisionSummary, type Store, type StoredGroup, type WriteOptions,
} from "./types.js";
import type { PatchOp } from "./diff.js";

export interface KubernetesStoreOptions {
  /** A kubeconfig file; without one: in-cluster config when in a pod, else the default kubeconfig. */
  kubeconfig?: string;
  /** A ready KubeConfig (takes precedence). */
  kubeConfig?: KubeConfig;
  /** Revisions kept (default 1000); older LaneGroupRevisions are deleted. */
  retain?: number;
  now?: () => Date;
  /** How long a write retries after losing a race to another writer (default 20 attempts). */
  retries?: number;
}

interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    resourceVersion?: string;
    generation?: number;
    deletionTimestamp?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    managedFields?: Array<{ manager?: string; operation?: string; time?: string; subresource?: string; fieldsV1?: unknown }>;
    [k: string]: unknown;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

/** One revision as the mirror holds it: bodies re-parsed. */
interface Rev extends LaneGroupRevisionSpec {
  changes: Array<RevisionChange & { before?: LaneGroup; after?: LaneGroup }>;
}

const pad = (n: number) => String(n).padStart(12, "0");
const revName = (n: number) => `rev-${pad(n)}`;
const LG_PATH = LANE_GROUP_PATH;
const REV_PATH = `/apis/${API_GROUP}/${API_VERSION}/${LANE_GROUP_REVISION.plural}`;

/** A body as the model reads it now (defaults added since it was written apply); as is if it no longer parses. */
function reparse(body: unknown): LaneGroup {
  const r = parseLaneGroup(body);
  return r.ok ? r.value : (body as LaneGroup);
}

const same = (a: unknown, b: unknown) => diff(a, b).length === 0;

function apiStatus(e: unknown): number | undefined {
  return e instanceof ApiException ? e.code : undefined;
}

function apiMessage(e: unknown): string {
  if (e instanceof ApiException) {
    const body = typeof e.body === "string" ? (() => { try { return JSON.parse(e.body as string); } catch { return undefined; } })() : e.body;
    return (body as { message?: string } | undefined)?.message ?? `HTTP ${e.code}: ${String(e.body).trim().slice(0, 300)}`;
  }
  return (e as Error).message ?? String(e);
}

/** The field manager of an object's latest spec change (managedFields), if the API server recorded one. */
function newestManager(obj: KubeObject): string | undefined {
  let best: { manager: string; time: string } | undefined;
  for (const f of obj.metadata.managedFields ?? []) {
    if (f.subresource || !f.manager) continue;
    if (!JSON.stringify(f.fieldsV1 ?? {}).includes('"f:spec"')) continue;
    const time = f.time ?? "";
    if (!best || time >= best.time) best = { manager: f.manager, time };
  }
  return best?.manager;
}

/** Who made an object's latest spec change (see the header): this control plane's actor annotation, the field manager, or `kubectl`. */
export function actorOf(obj: KubeObject): string {
  const manager = newestManager(obj);
  if (!manager) return "kubectl";
  if (manager === FIELD_MANAGER) return obj.metadata.annotations?.[ACTOR_ANNOTATION] ?? FIELD_MANAGER;
  return manager;
}

export class KubernetesStore implements Store {
  readonly kubeConfig: KubeConfig;
  private readonly api: CustomObjectsApi;
  private readonly now: () => Date;
  private readonly retain: number;
  private readonly retries: number;
  private readonly listeners = new Set<(revision: number) => void>();
  private readonly revs = new Map<number, Rev>();
  private readonly groups = new Map<string, StoredGroup>();
  /** The LaneGroup objects as last seen (deleting ones excluded). */
  private readonly objects = new Map<string, KubeObject>();
  /** Objects being deleted (deletionTimestamp set, finalizers pending): name → finalizers. */
  private readonly terminating = new Map<string, string[]>();
  /**
   * Per group, the object version the mirror has reviewed (recorded, or found equal to what is
   * recorded, or refused as invalid): the precondition of every write, so a change nobody here has
   * seen yet is never overwritten.
   */
  private readonly reviewedRv = new Map<string, string>();
  /** Who the admission webhook saw submit a spec, per group (newest last), until the watch records it. */
  private readonly admissions = new Map<string, Array<{ body: LaneGroup; user: string; at: number }>>();
  private latest = 0;
  private pendingRevs: Rev[] = [];
  /** Writes and reconciliations run one at a time, in order. */
  private chain: Promise<unknown> = Promise.resolve();
  /** The running watch per path (a reconnect replaces it). */
  private readonly watches = new Map<string, AbortController>();
  private closed = false;

  private constructor(kc: KubeConfig, opts: KubernetesStoreOptions) {
    this.kubeConfig = kc;
    this.api = kc.makeApiClient(CustomObjectsApi);
    this.now = opts.now ?? (() => new Date());
    this.retain = Math.max(1, opts.retain ?? 1000);
    this.retries = opts.retries ?? 20;
  }

  /** Connects, reads the log and the objects, records what changed unwatched, starts the watches. */
  static async open(opts: KubernetesStoreOptions = {}): Promise<KubernetesStore> {
    let kc = opts.kubeConfig;
    if (!kc) {
      kc = new KubeConfig();
      try {
        if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
        else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
        else kc.loadFromDefault();
      } catch (e) {
        throw new Error(`--store kubernetes: cannot load ${opts.kubeconfig ? `kubeconfig ${opts.kubeconfig}` : "the in-cluster or default kubeconfig"}: ${(e as Error).message}`);
      }
      if (!kc.getCurrentCluster()) throw new Error(`--store kubernetes: ${opts.kubeconfig ?? "the kubeconfig"} names no current cluster`);
    }
    const store = new KubernetesStore(kc, opts);
    try {
      await store.load();
    } catch (e) {
      await store.close();
      const server = kc.getCurrentCluster()?.server ?? "?";
      const status = apiStatus(e);
      const hint = status === 404 ? " (are the CRDs installed? kubectl apply -f deploy/crds/)" : status === 403 ? " (RBAC: the control plane needs lanegroups and lanegrouprevisions)" : "";
      throw new Error(`--store kubernetes: ${server}: ${apiMessage(e)}${hint}`);
    }
    return store;
  }

  // ---- RuleSource ----

  current(): { revision: number; groups: LaneGroup[] } {
    return { revision: this.latest, groups: this.list().map((g) => g.lanegroup) };
  }

  onChange(listener: (revision: number) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  // ---- reads (from the mirror) ----

  list(): StoredGroup[] {
    return [...this.groups.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  get(name: string): StoredGroup | undefined {
    return this.groups.get(name);
  }

  revisions(opts: ListRevisionsOptions = {}): RevisionSummary[] {
    const limit = Math.max(1, Math.min(opts.limit ?? 100, 1000));
    const out: RevisionSummary[] = [];
    for (let n = Math.min(this.latest, (opts.before ?? Infinity) - 1); n >= 1 && out.length < limit; n--) {
      const r = this.revs.get(n);
      if (!r) break; // below the retention line
      if (opts.group !== undefined && !r.changes.some((c) => c.group === opts.group)) continue;
      out.push(summary(r));
    }
    return out;
  }

  revision(n: number): Revision | undefined {
    const r = this.revs.get(n);
    if (!r) return undefined;
    return { ...summary(r), diff: toDiff(r), lanegroups: this.stateAt(n).map((g) => g.lanegroup) };
  }

  async ping(): Promise<boolean> {
    try {
      await this.kubeConfig.makeApiClient(VersionApi).getCode();
      return true;
    } catch {
      return false;
    }
  }

  // ---- writes ----

  validate(input: unknown): Validation {
    return validateAmong(this.list(), input);
  }

  put(input: unknown, opts: WriteOptions): Promise<PutResult> {
    return this.serial(async () => {
      for (let attempt = 0; ; attempt++) {
        const { group, created, change } = putChange(this.list(), input, opts.expectedRevision);
        const before = this.groups.get(group.name);
        if (!this.objects.has(group.name)) this.notTerminating(group.name);
        const { name: _name, ...spec } = input as Record<string, unknown>;
        let obj: KubeObject;
        try {
          obj = this.objects.has(group.name) ? await this.replaceObject(group.name, spec, opts.actor) : await this.createObject(group.name, spec, opts.actor);
        } catch (e) {
          if (apiStatus(e) === 409 && attempt < this.retries) { await this.resync(); continue; }
          throw this.refused(e, group.name);
        }
        this.seen(obj);
        const n = await this.record(change.action, opts.actor, undefined, [this.changeOf(group.name, before, group, obj)]);
        return { revision: n, created, group: this.groups.get(group.name) ?? { name: group.name, revision: n, lanegroup: group } };
      }
    });
  }

  delete(name: string, opts: WriteOptions): Promise<{ revision: number }> {
    return this.serial(async () => {
      for (let attempt = 0; ; attempt++) {
        const before = this.get(name);
        if (!before) {
          if (opts.expectedRevision !== undefined && opts.expectedRevision !== 0) throw new ConflictError(opts.expectedRevision, 0, name);
          throw new NotFoundError(`lane group ${name} does not exist`);
        }
        checkExpected(name, before.revision, opts.expectedRevision);
        try {
          await this.deleteObject(name);
        } catch (e) {
          if ((apiStatus(e) === 409 || apiStatus(e) === 404) && attempt < this.retries) { await this.resync(); continue; }
          throw this.refused(e, name);
        }
        const n = await this.record("delete", opts.actor, undefined, [this.changeOf(name, before, undefined, undefined)]);
        return { revision: n };
      }
    });
  }

  rollback(target: number, opts: { actor: string }): Promise<{ revision: number; groups: string[] }> {
    return this.serial(async () => {
      for (let attempt = 0; ; attempt++) {
        if (!Number.isInteger(target) || !this.revs.has(target)) {
          const oldest = Math.min(...this.revs.keys());
          const kept = Number.isInteger(target) && target >= 1 && target < oldest ? ` (only revisions from ${oldest} are kept)` : "";
          throw new NotFoundError(`revision ${target} does not exist${kept}`, "/revision");
        }
        const { wanted, changes } = rollbackPlan(this.list(), this.stateAt(target));
        const done: RevisionChange[] = [];
        try {
          for (const c of changes) {
            const before = this.groups.get(c.group);
            const after = wanted.get(c.group);
            const wrote = c.action === "delete" ? (await this.deleteObject(c.group), undefined)
              : this.objects.has(c.group) ? await this.replaceObject(c.group, withoutName(after!), opts.actor)
              : await this.createObject(c.group, withoutName(after!), opts.actor);
            if (wrote) this.seen(wrote);
            done.push(this.changeOf(c.group, before, after, wrote));
          }
        } catch (e) {
          const status = apiStatus(e);
          if (done.length) {
            // Some groups are already back: that much is a revision; the caller hears what stopped it.
            const n = await this.record("rollback", opts.actor, target, done);
            throw new StoreError(409, [{ path: "", message: `rollback to ${target} stopped after ${done.map((d) => d.group).join(", ")} (recorded as revision ${n}): ${apiMessage(e)}` }]);
          }
          if ((status === 409 || status === 404) && attempt < this.retries) { await this.resync(); continue; }
          throw this.refused(e, "");
        }
        const n = await this.record("rollback", opts.actor, target, done);
        return { revision: n, groups: done.map((d) => d.group) };
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    for (const w of this.watches.values()) w.abort();
    this.watches.clear();
    await this.chain.catch(() => undefined);
  }

  /**
   * The admission webhook tells who submitted `spec` for group `name` (AdmissionReview
   * request.userInfo.username): when the watch then records a change to that very content, the
   * user is its actor instead of the field manager. Hints older than a minute are dropped.
   */
  admitted(name: string, spec: unknown, user: string): void {
    const parsed = parseLaneGroup({ ...(spec as object), name });
    if (!parsed.ok || !user) return;
    const now = Date.now();
    const list = (this.admissions.get(name) ?? []).filter((h) => now - h.at < 60_000);
    list.push({ body: parsed.value, user, at: now });
    this.admissions.set(name, list.slice(-16));
  }

  private admittedBy(name: string, body: LaneGroup): string | undefined {
    const list = this.admissions.get(name);
    const i = list ? list.map((h) => same(h.body, body) && Date.now() - h.at < 60_000).lastIndexOf(true) : -1;
    if (!list || i < 0) return undefined;
    const user = list[i]!.user;
    list.splice(0, i + 1);
    return user;
  }

  // ---- objects ----

  private async createObject(name: string, spec: Record<string, unknown>, actor: string): Promise<KubeObject> {
    return await this.api.createClusterCustomObject({
      group: API_GROUP, version: API_VERSION, plural: LANE_GROUP.plural, fieldManager: FIELD_MANAGER,
      body: { apiVersion: GROUP_VERSION, kind: LANE_GROUP.kind, metadata: { name, annotations: { [ACTOR_ANNOTATION]: actor } }, spec },
    }) as KubeObject;
  }

  /** Replaces the spec, on the condition that the object is still the version the mirror recorded. */
  private async replaceObject(name: string, spec: Record<string, unknown>, actor: string): Promise<KubeObject> {
    const seen = this.objects.get(name);
    const rv = this.reviewedRv.get(name);
    if (!seen || !rv) throw new ApiException(409, "not seen", { message: `lane group ${name}: changed meanwhile` }, {});
    const { managedFields: _mf, ...metadata } = seen.metadata;
    const body = {
      apiVersion: GROUP_VERSION, kind: LANE_GROUP.kind,
      metadata: { ...metadata, resourceVersion: rv, annotations: { ...metadata.annotations, [ACTOR_ANNOTATION]: actor } },
      spec,
    };
    return await this.api.replaceClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural: LANE_GROUP.plural, name, body, fieldManager: FIELD_MANAGER }) as KubeObject;
  }

  /** Takes the object a write answered, unless the watch already brought a later version. */
  private seen(obj: KubeObject): void {
    const had = this.objects.get(obj.metadata.name);
    if (!had || had.metadata.resourceVersion === this.reviewedRv.get(obj.metadata.name)) this.objects.set(obj.metadata.name, obj);
  }

  private async deleteObject(name: string): Promise<void> {
    const rv = this.reviewedRv.get(name);
    await this.api.deleteClusterCustomObject({
      group: API_GROUP, version: API_VERSION, plural: LANE_GROUP.plural, name,
      body: { preconditions: rv ? { resourceVersion: rv } : undefined },
    });
  }

  /** An API server refusal as the store's error (a webhook's denial is a ValidationError). */
  private refused(e: unknown, name: string): Error {
    const status = apiStatus(e);
    if (status === 400 || status === 422 || status === 403 && /admission webhook/.test(apiMessage(e))) return new ValidationError([{ path: "", message: apiMessage(e) }]);
    if (status === 409) return new StoreError(409, [{ path: "", message: `lane group ${name}: kept changing under the write: ${apiMessage(e)}` }]);
    return new StoreError(503, [{ path: "", message: `Kubernetes API: ${apiMessage(e)}` }]);
  }

  private changeOf(name: string, before: StoredGroup | undefined, after: LaneGroup | undefined, obj: KubeObject | undefined): RevisionChange {
    const action = !after ? "delete" : before ? "replace" : "create";
    const patch: PatchOp[] = !after ? [{ op: "remove", path: "", old: before!.lanegroup }] : before ? diff(before.lanegroup, after) : [{ op: "add", path: "", value: after }];
    return {
      group: name, action,
      ...(before ? { before: before.lanegroup as unknown as Record<string, unknown> } : {}),
      beforeRevision: before?.revision ?? 0,
      ...(after ? { after: after as unknown as Record<string, unknown> } : {}),
      resourceVersion: obj?.metadata.resourceVersion ?? "",
      patch: patch as unknown as Array<Record<string, unknown>>,
    };
  }

  // ---- the log ----

  /**
   * Creates revision latest+1 holding `changes`. Losing the number to another writer: catch up with
   * the log; if that revision already recorded these very object versions (another replica's watch
   * saw them first), it is the answer; else record them again at the next number.
   */
  private async record(op: RevisionOp, actor: string, target: number | undefined, changes: RevisionChange[]): Promise<number> {
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      const n = this.latest + 1;
      const spec: LaneGroupRevisionSpec = {
        revision: n, time: this.now().toISOString(), actor, op, groups: changes.map((c) => c.group).join(","), changes,
        ...(op !== "rollback" && changes[0] ? { group: changes[0].group } : {}),
        ...(target !== undefined ? { target } : {}),
      };
      try {
        await this.api.createClusterCustomObject({
          group: API_GROUP, version: API_VERSION, plural: LANE_GROUP_REVISION.plural, fieldManager: FIELD_MANAGER,
          body: { apiVersion: GROUP_VERSION, kind: LANE_GROUP_REVISION.kind, metadata: { name: revName(n), labels: { "app.kubernetes.io/managed-by": "graylane" } }, spec },
        });
      } catch (e) {
        if (apiStatus(e) !== 409) throw new StoreError(503, [{ path: "", message: `Kubernetes API: recording revision ${n}: ${apiMessage(e)}` }]);
        await this.catchUp();
        const covered = op === "discover" ? undefined
          : [...this.revs.values()].find((r) => r.revision >= n && r.op !== "discover" && changes.every((c) => r.changes.some((d) => d.group === c.group && d.resourceVersion === c.resourceVersion)));
        if (covered) return covered.revision;
        continue;
      }
      this.applyRev(this.parseRev(spec), true);
      if (op !== "discover") await this.writeStatus(changes);
      this.prune();
      return n;
    }
    throw new StoreError(503, [{ path: "", message: `kubernetes store: gave up recording a revision after ${this.retries} races` }]);
  }

  recordDiscovery(group: string, patch: PatchOp[], actor: string): Promise<number | undefined> {
    return this.serial(async () => {
      const g = this.groups.get(group);
      if (!g || patch.length === 0) return undefined;
      const change: RevisionChange = {
        group, action: "replace", before: g.lanegroup as unknown as Record<string, unknown>, beforeRevision: g.revision, after: g.lanegroup as unknown as Record<string, unknown>,
        resourceVersion: this.reviewedRv.get(group) ?? "", patch: patch as unknown as Array<Record<string, unknown>>,
      };
      return this.record("discover", actor, undefined, [change]);
    });
  }

  private parseRev(spec: unknown): Rev {
    const r = LaneGroupRevisionSpec.parse(spec) as Rev;
    for (const c of r.changes) {
      if (c.before) c.before = reparse(c.before);
      if (c.after) c.after = reparse(c.after);
    }
    return r;
  }

  /** Applies revisions strictly in order (a later one waits for its predecessors). */
  private applyRev(r: Rev, notify: boolean): void {
    if (r.revision <= this.latest) return;
    this.pendingRevs.push(r);
    this.pendingRevs.sort((a, b) => a.revision - b.revision);
    // The first revision read may follow a pruned stretch: start wherever the log starts.
    if (this.latest === 0 && this.revs.size === 0) this.latest = this.pendingRevs[0]!.revision - 1;
    while (this.pendingRevs.length && this.pendingRevs[0]!.revision === this.latest + 1) {
      const rev = this.pendingRevs.shift()!;
      this.revs.set(rev.revision, rev);
      // A discovery changed what the filters get, not the spec: the group keeps its content and ETag.
      for (const c of rev.op === "discover" ? [] : rev.changes) {
        if (c.after) this.groups.set(c.group, { name: c.group, revision: rev.revision, lanegroup: c.after as LaneGroup });
        else this.groups.delete(c.group);
        if (c.resourceVersion) this.reviewedRv.set(c.group, c.resourceVersion);
        else this.reviewedRv.delete(c.group);
      }
      this.latest = rev.revision;
      if (notify) {
        for (const l of [...this.listeners]) {
          try { l(rev.revision); } catch (e) { console.error("store listener failed:", e); }
        }
      }
    }
  }

  /** Deletes the revisions that fell out of the retention window (best effort; another replica may race). */
  private prune(): void {
    const line = this.latest - this.retain;
    for (const n of [...this.revs.keys()].filter((k) => k <= line)) {
      this.revs.delete(n);
      this.api.deleteClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural: LANE_GROUP_REVISION.plural, name: revName(n) })
        .catch((e) => { if (apiStatus(e) !== 404) console.error(`kubernetes store: pruning revision ${n}: ${apiMessage(e)}`); });
    }
  }

  /** status.revision (the ETag, also what survives pruning), observedGeneration and the printed lists. */
  private async writeStatus(changes: RevisionChange[]): Promise<void> {
    for (const c of changes) {
      const g = this.groups.get(c.group);
      if (!g || this.closed) continue;
      const obj = this.objects.get(c.group);
      const current = obj?.metadata.resourceVersion === c.resourceVersion ? obj : undefined;
      const status: LaneGroupStatus = {
        revision: g.revision,
        ...(current?.metadata.generation !== undefined ? { observedGeneration: current.metadata.generation } : {}),
        services: g.lanegroup.services.map((s) => s.name).join(","),
        lanes: g.lanegroup.lanes.map((l) => l.name).join(","),
        ...(current ? { conditions: this.withReady(current, "True", "Recorded", `revision ${g.revision}`) } : {}),
      };
      try {
        const res = await this.api.patchClusterCustomObjectStatus(
          { group: API_GROUP, version: API_VERSION, plural: LANE_GROUP.plural, name: c.group, body: { status }, fieldManager: FIELD_MANAGER },
          setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
        ) as KubeObject;
        // The status write moved the resourceVersion, not the content: the next write's precondition
        // is the new version, unless someone changed the spec in between (then the watch records it).
        const parsed = parseLaneGroup({ ...res.spec, name: c.group });
        if (parsed.ok && same(parsed.value, g.lanegroup) && this.reviewedRv.get(c.group) === c.resourceVersion) {
          this.seen(res);
          this.reviewedRv.set(c.group, res.metadata.resourceVersion ?? "");
        }
      } catch (e) {
        if (apiStatus(e) !== 404) console.error(`kubernetes store: status of ${c.group}: ${apiMessage(e)}`);
      }
    }
  }

  /** The groups as they were right after revision n: the current ones with later revisions undone. */
  private stateAt(n: number): StoredGroup[] {
    const state = new Map(this.groups);
    for (let k = this.latest; k > n; k--) {
      const r = this.revs.get(k);
      if (!r) break;
      // A discovery changed no content (and its `before` may be older than a revision recorded
      // while it retried): nothing to undo.
      if (r.op === "discover") continue;
      for (const c of [...r.changes].reverse()) {
        if (c.before) state.set(c.group, { name: c.group, revision: c.beforeRevision, lanegroup: c.before as LaneGroup });
        else state.delete(c.group);
      }
    }
    return [...state.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  // ---- loading, watching, reconciling ----

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async loadRevisions(): Promise<string> {
    const list = await this.api.listClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural: LANE_GROUP_REVISION.plural }) as { items: Array<{ spec: unknown }>; metadata: { resourceVersion: string } };
    let revs = list.items.map((i) => this.parseRev(i.spec)).sort((a, b) => a.revision - b.revision);
    if (this.latest === 0) {
      // At start the log is the newest unbroken run: what precedes a hole (a revision deleted by
      // hand) counts as pruned, and the groups it last wrote keep their ETag through status.revision.
      let from = 0;
      for (let i = 1; i < revs.length; i++) if (revs[i]!.revision !== revs[i - 1]!.revision + 1) from = i;
      if (from) console.error(`kubernetes store: revisions ${revs[0]!.revision}-${revs[from - 1]!.revision} are cut off by missing revision ${revs[from - 1]!.revision + 1}; the log starts at ${revs[from]!.revision}`);
      revs = revs.slice(from);
    }
    for (const r of revs) this.applyRev(r, true);
    return list.metadata.resourceVersion;
  }

  private async listObjects(): Promise<string> {
    const list = await this.api.listClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural: LANE_GROUP.plural }) as { items: KubeObject[]; metadata: { resourceVersion: string } };
    this.objects.clear();
    this.terminating.clear();
    for (const o of list.items) this.take(o, false);
    return list.metadata.resourceVersion;
  }

  private async load(): Promise<void> {
    const revRv = await this.loadRevisions();
    const lgRv = await this.listObjects();
    // Groups whose last recorded revision was pruned: their content and ETag come from the object.
    for (const [name, o] of this.objects) {
      if (this.groups.has(name) || [...this.revs.values()].some((r) => r.changes.some((c) => c.group === name))) continue;
      const revision = typeof o.status?.revision === "number" ? o.status.revision : 0;
      const parsed = parseLaneGroup({ ...o.spec, name });
      if (revision > 0 && revision <= this.latest && parsed.ok) {
        this.groups.set(name, { name, revision, lanegroup: parsed.value });
        this.reviewedRv.set(name, o.metadata.resourceVersion ?? "");
      }
    }
    for (const name of this.names()) await this.reconcile(name);
    this.watch(LG_PATH, lgRv, (type, o: KubeObject) => {
      this.take(o, type === "DELETED");
      this.serial(() => this.reconcile(o.metadata.name)).catch((e) => console.error(`kubernetes store: recording LaneGroup ${o.metadata.name}: ${(e as Error).message}`));
    }, () => this.serial(async () => {
      const rv = await this.listObjects();
      for (const name of this.names()) await this.reconcile(name);
      return rv;
    }));
    this.watch(REV_PATH, revRv, (type, o: { spec: unknown }) => {
      if (type === "ADDED" || type === "MODIFIED") this.applyRev(this.parseRev(o.spec), true);
    }, () => this.loadRevisions());
  }

  /** An object as the cluster has it now (gone when deleted or being deleted). */
  private take(o: KubeObject, deleted: boolean): void {
    const name = o.metadata.name;
    if (deleted || o.metadata.deletionTimestamp) {
      this.objects.delete(name);
      if (deleted) this.terminating.delete(name);
      else this.terminating.set(name, (o.metadata.finalizers as string[] | undefined) ?? []);
    } else {
      this.objects.set(name, o);
      this.terminating.delete(name);
    }
  }

  /** A group cannot be created again while its old object waits for its finalizers. */
  private notTerminating(name: string): void {
    const f = this.terminating.get(name);
    if (f) throw new StoreError(409, [{ path: "", message: `lane group ${name} is still being deleted (finalizers: ${f.join(", ") || "none"}); write it again once it is gone` }]);
  }

  /** Every group name the mirror or the cluster knows, in name order. */
  private names(): string[] {
    return [...new Set([...this.groups.keys(), ...this.objects.keys()])].sort();
  }

  /** Reads the revisions after the mirror's latest, one by one, until there is none (cheaper than a list). */
  private async catchUp(): Promise<void> {
    for (;;) {
      try {
        const o = await this.api.getClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural: LANE_GROUP_REVISION.plural, name: revName(this.latest + 1) }) as { spec: unknown };
        const before = this.latest;
        this.applyRev(this.parseRev(o.spec), true);
        if (this.latest === before) return;
      } catch (e) {
        if (apiStatus(e) === 404) return;
        throw e;
      }
    }
  }

  /** Re-reads the objects and records what changed (after a write lost a race). */
  private async resync(): Promise<void> {
    await this.catchUp();
    await this.listObjects();
    for (const name of this.names()) await this.reconcile(name);
  }

  /**
   * Brings the mirror's view of one group in step with its object: a content change made outside
   * this store becomes a revision; a spec the model refuses, or one that clashes with another
   * group, is not recorded (the last recorded content stays in the RuleSet) and is reported on the
   * object as Ready=False.
   */
  private async reconcile(name: string): Promise<void> {
    if (this.closed) return;
    const obj = this.objects.get(name);
    const current = this.groups.get(name);
    if (!obj) {
      if (current) await this.record("delete", "kubectl", undefined, [this.changeOf(name, current, undefined, undefined)]);
      return;
    }
    if (obj.metadata.resourceVersion === this.reviewedRv.get(name)) return;
    const parsed = validateAmong(this.list(), { ...obj.spec, name });
    if (!parsed.ok) {
      await this.notReady(obj, parsed.errors.map((e) => `/spec${e.path}: ${e.message}`).join("; "));
      this.reviewedRv.set(name, obj.metadata.resourceVersion ?? "");
      return;
    }
    if (current && same(current.lanegroup, parsed.value)) {
      this.reviewedRv.set(name, obj.metadata.resourceVersion ?? "");
      return;
    }
    const actor = actorOf(obj);
    // A write of this store's own (REST, another replica) names its actor; else the webhook's user, else the field manager.
    const by = newestManager(obj) === FIELD_MANAGER ? undefined : this.admittedBy(name, parsed.value);
    await this.record(current ? "replace" : "create", by ?? actor, undefined, [this.changeOf(name, current, parsed.value, obj)]);
  }

  /** The object's conditions with Ready set (the transition time kept while the status stays). */
  private withReady(obj: KubeObject, status: "True" | "False", reason: string, message: string): NonNullable<LaneGroupStatus["conditions"]> {
    const conditions = (obj.status?.conditions ?? []) as NonNullable<LaneGroupStatus["conditions"]>;
    const had = conditions.find((c) => c.type === "Ready");
    const lastTransitionTime = had?.status === status ? had.lastTransitionTime : new Date().toISOString().replace(/\.\d+Z$/, "Z");
    const ready = { type: "Ready", status, reason, message: message.slice(0, 32768), lastTransitionTime, ...(obj.metadata.generation !== undefined ? { observedGeneration: obj.metadata.generation } : {}) };
    return [...conditions.filter((c) => c.type !== "Ready"), ready];
  }

  private async notReady(obj: KubeObject, message: string): Promise<void> {
    const had = ((obj.status?.conditions ?? []) as Array<{ type: string; status: string; message?: string }>).find((c) => c.type === "Ready");
    if (had?.status === "False" && had.message === message.slice(0, 32768)) return;
    console.error(`kubernetes store: LaneGroup ${obj.metadata.name} not recorded: ${message}`);
    try {
      await this.api.patchClusterCustomObjectStatus(
        { group: API_GROUP, version: API_VERSION, plural: LANE_GROUP.plural, name: obj.metadata.name, body: { status: { conditions: this.withReady(obj, "False", "Invalid", message) } }, fieldManager: FIELD_MANAGER },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
    } catch (e) {
      if (apiStatus(e) !== 404) console.error(`kubernetes store: status of ${obj.metadata.name}: ${apiMessage(e)}`);
    }
  }

  /** A watch from `rv` that resumes where it stopped, and lists again when the API server says 410 Gone. */
  private watch(path: string, rv: string, onEvent: (type: string, obj: any) => void, relist: () => Promise<string>): void {
    const w = new Watch(this.kubeConfig);
    let last = rv;
    const start = async (): Promise<void> => {
      if (this.closed) return;
      let gone = false;
      const controller = await w.watch(path, { resourceVersion: last, allowWatchBookmarks: true }, (type, obj) => {
        if (type === "ERROR") { if ((obj as { code?: number }).code === 410) gone = true; return; }
        if (obj?.metadata?.resourceVersion) last = obj.metadata.resourceVersion;
        if (type !== "BOOKMARK") onEvent(type, obj);
      }, (err) => {
        if (this.closed) return;
        if (err && (err as Error).name !== "AbortError") console.error(`kubernetes store: watch ${path}: ${(err as Error).message ?? err}`);
        const again = async () => {
          if (gone) last = await relist();
          await start();
        };
        // at once after 410 Gone (relist), soon after a normal close, later after an error
        setTimeout(() => void again().catch((e) => { console.error(`kubernetes store: watch ${path}: ${apiMessage(e)}`); setTimeout(() => void again(), 1000); }), gone ? 0 : err ? 1000 : 200);
      }).catch((e) => {
        if (this.closed) return undefined;
        console.error(`kubernetes store: watch ${path}: ${apiMessage(e)}`);
        setTimeout(() => void start(), 1000);
        return undefined;
      });
      if (controller) {
        if (this.closed) controller.abort();
        else this.watches.set(path, controller);
      }
    };
    void start();
  }
}

function withoutName(g: LaneGroup): Record<string, unknown> {
  const { name: _name, ...rest } = g;
  return rest;
}

/**
 * A revision's diff, worked out again from its bodies as the model reads them now (the API server
 * stores objects with their keys sorted; the model gives every body one key order).
 */
function toDiff(r: Rev): GroupChange[] {
  return r.changes.map((c) => ({
    group: c.group, action: c.action,
    patch: r.op === "discover" ? c.patch as PatchOp[]
      : c.action === "create" ? [{ op: "add", path: "", value: c.after }] : c.action === "delete" ? [{ op: "remove", path: "", old: c.before }] : diff(c.before, c.after),
  }));
}

function summary(r: Rev): RevisionSummary {
  const s: RevisionSummary = { revision: r.revision, time: r.time, actor: r.actor, op: r.op, group: r.op === "rollback" ? null : (r.group ?? null), groups: r.changes.map((c) => c.group) };
  if (r.target !== undefined) s.target = r.target;
  return s;
}
