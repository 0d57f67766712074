// The shared Store contract (test/support/store-conformance.ts) on the etcd store against a real
// etcd, each case under a key prefix of its own: the cases SQLite and the Kubernetes store run too.
import { afterAll, beforeAll } from "vitest";
import { EtcdStore } from "../../control-plane/src/store/index.js";
import { startEtcd, type RunningEtcd } from "../support/etcd.js";
import { storeConformance } from "../support/store-conformance.js";

let etcd: RunningEtcd;
let prefix = "/conformance-0/";
let n = 0;
beforeAll(async () => { etcd = await startEtcd(); }, 30_000);
afterAll(async () => { await etcd?.stop(); });

storeConformance("EtcdStore", {
  reset: async () => { prefix = `/conformance-${++n}/`; },
  open: ({ now }) => EtcdStore.open(etcd.url, { prefix, now }),
});
