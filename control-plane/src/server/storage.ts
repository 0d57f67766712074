// Where the control plane keeps what is not lane groups, by the kind of store: traffic rollups in
// the store's SQLite file (one transaction per report) or, beside any other store, a SQLite file of
// their own (`trafficDb`: the per-instance last values make the counts exact across a restart) or
// else an in-memory database; releases in that database, on etcd, where the replicas share them, or as Release
// objects beside a Kubernetes store.
import Database from "better-sqlite3";
import { KubeReleaseStore } from "../replicas/kube-release-store.js";
import { EtcdReleaseStore } from "../replicas/release-store.js";
import { SqliteReleaseStore, type ReleaseStore } from "../rollout/release-store.js";
import { EtcdStore, KubernetesStore, SqliteStore, type Store } from "../store/index.js";

export interface SideStores {
  /** Traffic rollups. */
  db: Database.Database;
  releases: ReleaseStore;
  /** Set when the store is etcd: the replicas share traffic reports, releases and one leader. */
  etcd?: EtcdStore;
  close(): Promise<void>;
}

export async function openSideStores(store: Store, opts: { trafficDb?: string } = {}): Promise<SideStores> {
  if (opts.trafficDb && store instanceof SqliteStore) throw new Error("--traffic-db goes with a store that is not SQLite (the SQLite store keeps traffic in its own file)");
  const own = store instanceof SqliteStore ? undefined : new Database(opts.trafficDb ?? ":memory:");
  if (opts.trafficDb) own!.pragma("journal_mode = WAL");
  const db = store instanceof SqliteStore ? store.database : own!;
  const etcd = store instanceof EtcdStore ? store : undefined;
  try {
    const releases = etcd ? await EtcdReleaseStore.open(etcd.client, etcd.prefix)
      : store instanceof KubernetesStore ? await KubeReleaseStore.open(store.kubeConfig)
      : new SqliteReleaseStore(db);
    return {
      db, releases, etcd,
      close: async () => {
        if (releases instanceof EtcdReleaseStore || releases instanceof KubeReleaseStore) await releases.close();
        own?.close();
      },
    };
  } catch (e) {
    own?.close();
    throw e;
  }
}
