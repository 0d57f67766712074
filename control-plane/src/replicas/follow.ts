// Reads every key under a prefix, then watches it from the revision right after that read, so no
// write in between is missed: how a replica mirrors what the others write to etcd.
import type { Etcd3, IKeyValue, Watcher } from "etcd3";

export async function followPrefix(client: Etcd3, prefix: string, take: (kv: IKeyValue) => void, what: string): Promise<Watcher> {
  const res = await client.getAll().prefix(prefix).exec();
  for (const kv of res.kvs) take(kv);
  const watcher = await client.watch().prefix(prefix).startRevision((BigInt(res.header.revision) + 1n).toString()).create();
  watcher.on("put", take);
  watcher.on("error", (e) => console.error(`graylane ${what}: watch error:`, e.message));
  return watcher;
}
