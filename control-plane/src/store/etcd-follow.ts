// Reads every key under a prefix, then watches it from the revision right after that read, so no
// write in between is missed: how a replica mirrors what the others write to etcd. When the watch
// is lost — etcd compacted past where it would resume (the traffic relay compacts every few
// seconds), or it failed otherwise — it reads everything again and watches on: `take` must be
// idempotent (every caller's is: revisions, releases and reports are applied at most once).
import type { Etcd3, IKeyValue, Watcher } from "etcd3";

export interface Follower {
  cancel(): Promise<void>;
}

/** `take(kv, initial)`: initial is true for the keys of the very first read. */
export async function followPrefix(client: Etcd3, prefix: string, take: (kv: IKeyValue, initial: boolean) => void, what: string): Promise<Follower> {
  let watcher: Watcher | undefined;
  let cancelled = false;
  let retry: NodeJS.Timeout | undefined;
  const follow = async (initial: boolean): Promise<void> => {
    const res = await client.getAll().prefix(prefix).exec();
    for (const kv of res.kvs) take(kv, initial);
    if (cancelled) return;
    const w = await client.watch().prefix(prefix).startRevision((BigInt(res.header.revision) + 1n).toString()).create();
    watcher = w;
    w.on("put", (kv: IKeyValue) => take(kv, false));
    w.on("error", (e: Error) => {
      if (cancelled || watcher !== w) return;
      console.error(`graylane ${what}: watch lost (${e.message}); reading again`);
      void w.cancel().catch(() => undefined);
      const again = () => {
        retry = setTimeout(() => follow(false).catch((err: Error) => {
          console.error(`graylane ${what}: ${err.message}; retrying`);
          again();
        }), 500);
      };
      again();
    });
  };
  await follow(true);
  return {
    cancel: async () => {
      cancelled = true;
      clearTimeout(retry);
      await watcher?.cancel().catch(() => undefined);
    },
  };
}
