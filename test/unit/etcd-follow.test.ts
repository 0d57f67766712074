// followPrefix's resume logic (store/etcd-follow.ts) on a scripted client: when etcd cancels the
// watch (compacted past where it would resume), the follower reads everything again and watches
// from after that read. The same against a real etcd, without the loss, is every replica test.
import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import type { Etcd3 } from "etcd3";
import { followPrefix } from "../../control-plane/src/store/etcd-follow.js";

class FakeWatcher extends EventEmitter {
  cancelled = false;
  constructor(readonly from: string) { super(); }
  async cancel(): Promise<void> { this.cancelled = true; }
}

function fakeEtcd(reads: Array<{ kvs: string[]; revision: number }>) {
  const watchers: FakeWatcher[] = [];
  let n = 0;
  const client = {
    getAll: () => ({ prefix: () => ({ exec: async () => {
      const r = reads[Math.min(n++, reads.length - 1)]!;
      return { kvs: r.kvs.map((v) => ({ key: Buffer.from(`p/${v}`), value: Buffer.from(v) })), header: { revision: String(r.revision) } };
    } }) }),
    watch: () => ({ prefix: () => ({ startRevision: (rev: string) => ({ create: async () => { const w = new FakeWatcher(rev); watchers.push(w); return w; } }) }) }),
  };
  return { client: client as unknown as Etcd3, watchers };
}

describe("followPrefix", () => {
  it("reads, watches from the next revision, and on a lost watch reads again and watches on", async () => {
    const { client, watchers } = fakeEtcd([{ kvs: ["a", "b"], revision: 10 }, { kvs: ["a", "b", "c"], revision: 20 }]);
    const seen: Array<[string, boolean]> = [];
    const f = await followPrefix(client, "p/", (kv, initial) => seen.push([kv.value.toString(), initial]), "test");
    expect(seen).toEqual([["a", true], ["b", true]]);
    expect(watchers.map((w) => w.from)).toEqual(["11"]);
    watchers[0]!.emit("put", { key: Buffer.from("p/x"), value: Buffer.from("x") });
    expect(seen.at(-1)).toEqual(["x", false]);

    watchers[0]!.emit("error", new Error("Watcher canceled: mvcc: required revision has been compacted"));
    await new Promise((r) => setTimeout(r, 700));
    expect(watchers[0]!.cancelled).toBe(true);
    expect(seen.slice(3)).toEqual([["a", false], ["b", false], ["c", false]]); // read again, as news
    expect(watchers.map((w) => w.from)).toEqual(["11", "21"]);
    await f.cancel();
    expect(watchers[1]!.cancelled).toBe(true);
  });
});
