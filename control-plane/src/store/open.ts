// `--store` specs → a Store: the embedded SQLite file (default) or etcd for several replicas.
import { EtcdStore } from "./etcd.js";
import { KubernetesStore } from "./kubernetes.js";
import { SqliteStore } from "./sqlite.js";
import type { Store } from "./types.js";

export const DEFAULT_STORE = "sqlite:.data/graylane.db";

/**
 * "sqlite:PATH", "sqlite::memory:", ":memory:", a bare SQLite path, "etcd://HOST:PORT", or
 * "kubernetes" (in-cluster config, else the default kubeconfig) / "kubernetes:KUBECONFIG_FILE".
 */
export async function openStore(spec: string = DEFAULT_STORE): Promise<Store> {
  if (spec === ":memory:") return new SqliteStore(":memory:");
  if (spec.startsWith("sqlite:")) {
    const path = spec.slice("sqlite:".length);
    if (!path) throw new Error(`--store ${spec}: missing file path (sqlite:PATH)`);
    return new SqliteStore(path);
  }
  if (spec.startsWith("etcd://")) return EtcdStore.open(spec);
  if (spec === "kubernetes" || spec.startsWith("kubernetes:")) return KubernetesStore.open({ kubeconfig: spec.slice("kubernetes:".length) || undefined });
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) throw new Error(`--store ${spec}: unsupported store (supported: sqlite:PATH, :memory:, etcd://HOST:PORT, kubernetes[:KUBECONFIG])`);
  return new SqliteStore(spec);
}
