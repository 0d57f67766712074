export * from "./types.js";
export { diff, type PatchOp } from "./diff.js";
export { SqliteStore, type SqliteStoreOptions } from "./sqlite.js";
export { openStore, DEFAULT_STORE } from "./open.js";
export { EtcdStore, type EtcdStoreOptions } from "./etcd.js";
export { KubernetesStore, type KubernetesStoreOptions } from "./kubernetes.js";
