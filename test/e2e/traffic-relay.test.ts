// The etcd traffic relay (replicas/traffic-relay.ts) on a real etcd: two relays (two replicas'
// ingests) end with the same exact totals; what one publishes goes out batched (many reports per
// transaction, only each instance's latest), under a lease, so the key of a filter that stops
// reporting expires; and the history is compacted.
import Database from "better-sqlite3";
import { Etcd3 } from "etcd3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TrafficIngest } from "../../control-plane/src/traffic/index.js";
import { TrafficRelay } from "../../control-plane/src/replicas/traffic-relay.js";
import { countersAt, expectedInbound, reportBytes } from "../../bench/support/traffic-reports.js";
import { startEtcd, type RunningEtcd } from "../support/etcd.js";
import { until } from "../support/wait.js";

let etcd: RunningEtcd;
let client: Etcd3;
beforeAll(async () => {
  etcd = await startEtcd();
  client = new Etcd3({ hosts: etcd.url.replace(/^etcd:/, "http:") });
}, 30_000);
afterAll(async () => {
  client?.close();
  await etcd?.stop();
});

const inbound = (ingest: TrafficIngest, group: string) => ingest.totals(group).filter((t) => t.direction === 1).reduce((a, t) => a + t.requests, 0);

describe("traffic relay on etcd", () => {
  it("batches the latest report per instance, replicas end exact, keys expire with their lease, history is compacted", async () => {
    const opts = { flushMs: 200, txnOps: 50, keyTtlMs: 2_000, compactEveryMs: 500 };
    const ingests = [new TrafficIngest({ db: new Database(":memory:") }), new TrafficIngest({ db: new Database(":memory:") })];
    const [one, two] = await Promise.all(ingests.map((i) => TrafficRelay.start(client, "relay-test/", i, opts)));
    try {
      // 120 filters report 3 times each to replica one, faster than it publishes.
      for (let s = 1; s <= 3; s++) {
        await Promise.all(Array.from({ length: 120 }, (_, f) => one!.submit(reportBytes(`f-${f}`, `n-${f}`, s, countersAt(s)))));
      }
      await one!.flush();
      // A report that does not decode is refused at once (the gRPC handler's INVALID_ARGUMENT), not
      // later as a failed store.
      expect(() => one!.submit(Buffer.from([0x0a, 0x05, 0x61]))).toThrow(/truncated|past the end/);
      // Only each instance's latest went out, in transactions of at most 50 puts.
      expect(one!.stats.published).toBeLessThan(360);
      expect(one!.stats.published).toBeGreaterThanOrEqual(120);
      expect(one!.stats.transactions).toBeLessThanOrEqual(Math.ceil(one!.stats.published / 50) + 3);
      const expected = expectedInbound(120 * 3);
      // Replica two counts exactly the same from the watch.
      await until("replica two exact", () => Object.entries(expected).every(([g, n]) => inbound(ingests[1]!, g) === n));
      for (const [g, n] of Object.entries(expected)) expect(inbound(ingests[0]!, g)).toBe(n);

      // Every key is under a lease: when the filters stop reporting, their keys go (within 2 × keyTtl).
      const lease = await client.get("relay-test/traffic/f-0").exec();
      expect(lease.kvs[0]!.lease).not.toBe("0");
      await until("keys expired", async () => Number(await client.getAll().prefix("relay-test/traffic/").count()) === 0, 15_000);
      // The totals stay (they live in each replica's rollups, not in etcd).
      for (const [g, n] of Object.entries(expected)) expect(inbound(ingests[1]!, g)).toBe(n);

      // History compacted: a read at the first revision is refused.
      await until("compacted", () => one!.stats.compactions + two!.stats.compactions > 0 && BigInt(one!.stats.compactedTo) > 0n);
      await expect(client.kv.range({ key: Buffer.from("relay-test/traffic/f-0"), revision: "1" })).rejects.toThrow(/compacted/);
    } finally {
      await one?.close();
      await two?.close();
    }
  }, 60_000);
});
