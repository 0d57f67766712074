// Releases as Release objects (graylane.io/v1alpha1, cluster-scoped) beside `--store kubernetes`:
// metadata.name is the release's name, spec what it was created with (group, lane, strategy,
// steps, analysis, webhooks), status the engine's state (status, currentStep, weight, pause,
// analysis runs, events, ...), written through the status subresource. Mirrored by list + watch,
// so reads are local; the engine is the only writer. An object without status (not written by the
// engine) is not a release the engine runs, and is left out.
import { ApiException, CustomObjectsApi, PatchStrategy, setHeaderOptions, Watch, type KubeConfig } from "@kubernetes/client-node";
import { selectReleases, type ReleaseStore } from "../rollout/release-store.js";
import { parseRelease } from "../rollout/spec.js";
import type { Release, ReleaseStatus } from "../rollout/state.js";
import { API_GROUP, API_VERSION, FIELD_MANAGER, GROUP_VERSION, RELEASE } from "../store/kube-resources.js";

const SPEC_KEYS = ["group", "lane", "strategy", "steps", "analysis", "webhooks"] as const;
const PATH = `/apis/${API_GROUP}/${API_VERSION}/${RELEASE.plural}`;

interface ReleaseObject {
  metadata: { name: string; resourceVersion?: string; deletionTimestamp?: string };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

/** Who wrote an object: the field manager of its spec (kubectl, argocd-controller, ...), else "kubectl". */
function writer(o: ReleaseObject & { metadata: { managedFields?: Array<{ manager?: string; subresource?: string }> } }): string {
  return o.metadata.managedFields?.find((f) => !f.subresource && f.manager)?.manager ?? "kubectl";
}

/** A resourceVersion as a number for ordering (etcd's revision in practice); -1 when opaque. */
const order = (rv: string | undefined) => (rv && /^\d+$/.test(rv) ? BigInt(rv) : -1n);

function toRelease(o: ReleaseObject): Release | undefined {
  if (!o.status || typeof o.status.status !== "string") return undefined;
  // The spec as written (kubectl leaves out what has defaults) read through the model, so every
  // default applies, those added later too.
  const parsed = parseRelease({ name: o.metadata.name, ...o.spec });
  return { ...(parsed.ok ? parsed.value : { name: o.metadata.name, ...o.spec }), ...o.status } as unknown as Release;
}

export class KubeReleaseStore implements ReleaseStore {
  private readonly api: CustomObjectsApi;
  private readonly mirror = new Map<string, { rv: bigint; r: Release }>();
  /** Names that exist as objects (with or without status). */
  private readonly exists = new Set<string>();
  private readonly listeners = new Set<() => void>();
  private readonly pendingSpecs = new Map<string, { spec: Record<string, unknown>; actor: string }>();
  private controller: AbortController | undefined;
  private closed = false;

  private constructor(private readonly kc: KubeConfig) {
    this.api = kc.makeApiClient(CustomObjectsApi);
  }

  static async open(kc: KubeConfig): Promise<KubeReleaseStore> {
    const s = new KubeReleaseStore(kc);
    const rv = await s.relist();
    s.watch(rv);
    return s;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private take(o: ReleaseObject, deleted = false): void {
    const name = o.metadata.name;
    if (deleted || o.metadata.deletionTimestamp) {
      this.exists.delete(name);
      this.pendingSpecs.delete(name);
      if (this.mirror.delete(name)) this.emit();
      return;
    }
    this.exists.add(name);
    const r = toRelease(o);
    // An object without the engine's status was written by someone else (kubectl, GitOps): a
    // release to start, its spec as written.
    if (!r && o.spec) this.pendingSpecs.set(name, { spec: { name, ...o.spec }, actor: writer(o) });
    else this.pendingSpecs.delete(name);
    const rv = order(o.metadata.resourceVersion);
    if (r && (rv < 0n || (this.mirror.get(name)?.rv ?? -1n) < rv)) {
      this.mirror.set(name, { rv, r });
      this.emit();
    }
  }

  private emit(): void {
    for (const l of this.listeners) l();
  }

  /** Release objects written without the engine's status (by kubectl or GitOps), oldest first: releases to start. */
  pending(): Array<{ spec: Record<string, unknown>; actor: string }> {
    return [...this.pendingSpecs.values()];
  }

  private async relist(): Promise<string> {
    const list = await this.api.listClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural: RELEASE.plural }) as { items: ReleaseObject[]; metadata: { resourceVersion: string } };
    this.mirror.clear();
    this.exists.clear();
    for (const o of list.items) this.take(o);
    return list.metadata.resourceVersion;
  }

  private watch(from: string): void {
    let last = from;
    const start = async (): Promise<void> => {
      if (this.closed) return;
      let gone = false;
      this.controller = await new Watch(this.kc).watch(PATH, { resourceVersion: last, allowWatchBookmarks: true }, (type, o: ReleaseObject & { code?: number }) => {
        if (type === "ERROR") { gone = o.code === 410; return; }
        if (o.metadata?.resourceVersion) last = o.metadata.resourceVersion;
        if (type !== "BOOKMARK") this.take(o, type === "DELETED");
      }, () => {
        if (this.closed) return;
        setTimeout(() => void (async () => { if (gone) last = await this.relist(); await start(); })().catch((e) => {
          console.error(`release store: watch: ${(e as Error).message}`);
          setTimeout(() => void start(), 1000);
        }), gone ? 0 : 200);
      }).catch((e) => {
        console.error(`release store: watch: ${(e as Error).message}`);
        if (!this.closed) setTimeout(() => void start(), 1000);
        return undefined;
      });
      if (this.closed) this.controller?.abort();
    };
    void start();
  }

  get(name: string): Release | undefined {
    const e = this.mirror.get(name);
    return e && structuredClone(e.r);
  }

  list(filter: { group?: string; status?: ReleaseStatus[] } = {}): Release[] {
    return selectReleases([...this.mirror.values()].map((e) => e.r), filter);
  }

  /** Creates the object (spec) if it is not there, then writes the state into its status. */
  async save(r: Release): Promise<void> {
    const { name, ...rest } = structuredClone(r) as unknown as Record<string, unknown> & { name: string };
    const spec: Record<string, unknown> = {};
    for (const k of SPEC_KEYS) { spec[k] = rest[k]; delete rest[k]; }
    const base = { group: API_GROUP, version: API_VERSION, plural: RELEASE.plural, fieldManager: FIELD_MANAGER };
    if (!this.exists.has(name)) {
      try {
        await this.api.createClusterCustomObject({ ...base, body: { apiVersion: GROUP_VERSION, kind: RELEASE.kind, metadata: { name, labels: { "graylane.io/group": r.group } }, spec } });
      } catch (e) {
        if (!(e instanceof ApiException && e.code === 409)) throw e;
      }
      this.exists.add(name);
    }
    // The whole status at once (a JSON Patch add replaces it), so what the state no longer has goes too.
    const res = await this.api.patchClusterCustomObjectStatus({ ...base, name, body: [{ op: "add", path: "/status", value: rest }] }, setHeaderOptions("Content-Type", PatchStrategy.JsonPatch)) as ReleaseObject;
    this.take(res);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.controller?.abort();
  }
}
