// Releases on etcd (releases/<name> → JSON), mirrored by a watch so every replica lists the same
// ones. Only the leader's engine writes (see replicas/leader.ts), so a plain put is enough.
import type { Etcd3, IKeyValue } from "etcd3";
import { type Follower, followPrefix } from "../store/etcd-follow.js";
import { selectReleases, type ReleaseStore } from "../rollout/release-store.js";
import type { Release, ReleaseStatus } from "../rollout/state.js";

export class EtcdReleaseStore implements ReleaseStore {
  /** name → the release and the etcd revision that wrote it (an echo of an older write never wins). */
  private readonly mirror = new Map<string, { rev: bigint; r: Release }>();
  private watcher: Follower | undefined;

  private constructor(private readonly client: Etcd3, private readonly prefix: string) {}

  static async open(client: Etcd3, prefix: string): Promise<EtcdReleaseStore> {
    const s = new EtcdReleaseStore(client, `${prefix}releases/`);
    s.watcher = await followPrefix(client, s.prefix, (kv) => s.take(kv), "release store");
    return s;
  }

  private take(kv: IKeyValue): void {
    const r = JSON.parse(kv.value.toString()) as Release;
    const rev = BigInt(kv.mod_revision);
    if ((this.mirror.get(r.name)?.rev ?? -1n) < rev) this.mirror.set(r.name, { rev, r });
  }

  get(name: string): Release | undefined {
    const e = this.mirror.get(name);
    return e && structuredClone(e.r);
  }

  list(filter: { group?: string; status?: ReleaseStatus[] } = {}): Release[] {
    return selectReleases([...this.mirror.values()].map((e) => e.r), filter);
  }

  async save(r: Release): Promise<void> {
    const res = await this.client.put(`${this.prefix}${r.name}`).value(JSON.stringify(r)).exec();
    const rev = BigInt(res.header.revision);
    if ((this.mirror.get(r.name)?.rev ?? -1n) < rev) this.mirror.set(r.name, { rev, r: structuredClone(r) });
  }

  async close(): Promise<void> {
    await this.watcher?.cancel().catch(() => undefined);
  }
}
