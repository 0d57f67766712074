// bench/relay-soak: the etcd traffic relay (replicas/traffic-relay.ts) under 10,000 filters
// reporting every 5 s (2,000 reports a second of 60 counters each) for 10 minutes, on a real etcd:
// etcd's database size (and the part in use) sampled every 10 s against its default 2 GiB quota, the
// keys under traffic/, the relay's transactions and compactions, and at the end the totals the
// ingest counted against what the filters sent. Filters churn as pods do: every minute a tenth of
// them start over under new instance ids, so keys of gone filters must expire (the lease
// generations are 2 minutes here, 10 in production, so the run shows it). The relay and its ingest
// run in this process; the reports are handed to relay.submit() as the gRPC server would.
import Database from "better-sqlite3";
import { Etcd3 } from "etcd3";
import { TrafficIngest } from "../control-plane/src/traffic/index.js";
import { TrafficRelay } from "../control-plane/src/replicas/traffic-relay.js";
import { isMain, QUICK, round, sleep, writeResult } from "./support/common.js";
import { countersAt, expectedInbound, reportBytes } from "./support/traffic-reports.js";
import { startEtcd } from "../test/support/etcd.js";

export interface RelaySoakOptions { filters: number; everyMs: number; seconds: number; keyTtlMs: number; compactEveryMs: number; churnEveryMs: number; log?: (l: string) => void }

export const DEFAULTS: RelaySoakOptions = QUICK
  ? { filters: 500, everyMs: 1000, seconds: 20, keyTtlMs: 5_000, compactEveryMs: 5_000, churnEveryMs: 5_000 }
  : { filters: 10_000, everyMs: 5000, seconds: 600, keyTtlMs: 120_000, compactEveryMs: 10_000, churnEveryMs: 60_000 };

const QUOTA = 2 * 1024 ** 3;

export async function runRelaySoak(opts: RelaySoakOptions = DEFAULTS) {
  const log = opts.log ?? ((l: string) => console.log(l));
  const etcd = await startEtcd();
  const client = new Etcd3({ hosts: etcd.url.replace(/^etcd:/, "http:") });
  const db = new Database(":memory:");
  const ingest = new TrafficIngest({ db });
  const relay = await TrafficRelay.start(client, "bench/", ingest, { keyTtlMs: opts.keyTtlMs, compactEveryMs: opts.compactEveryMs });
  try {
    // Filter f reports as instance `f.gen`; churn bumps a tenth of the generations.
    const gen = new Array<number>(opts.filters).fill(0);
    const seq = new Array<number>(opts.filters).fill(0);
    /** Per instance: its last accepted report number (its counters' total is that × (k + 1)). */
    const lastOf = new Map<string, number>();
    let accepted = 0;
    let refused = 0;
    const samples: Array<{ s: number; dbMB: number; inUseMB: number; keys: number; transactions: number; compactions: number }> = [];
    const t0 = Date.now();
    let nextSample = t0;
    let nextChurn = t0 + opts.churnEveryMs;
    let churned = 0;
    const counters = new Map<number, Uint8Array>();
    const cpu0 = process.cpuUsage();
    // Each tick sends the reports due in it (filters spread evenly over the interval).
    const tickMs = 50;
    let due = 0;
    for (let t = t0; t < t0 + opts.seconds * 1000; t += tickMs) {
      const perTick = (opts.filters * tickMs) / opts.everyMs;
      for (let k = 0; k < perTick; k++, due++) {
        const f = due % opts.filters;
        const s = ++seq[f]!;
        let c = counters.get(s);
        if (!c) { counters.set(s, (c = countersAt(s))); counters.delete(s - 3); }
        const id = `filter-${f}.${gen[f]}`;
        relay.submit(reportBytes(id, `node-${f}`, s, c)).then((r) => {
          if (!r.accepted) return;
          accepted++;
          lastOf.set(id, Math.max(lastOf.get(id) ?? 0, s));
        }, () => { refused++; });
      }
      if (Date.now() >= nextChurn) {
        nextChurn += opts.churnEveryMs;
        // A tenth of the filters start over (a pod replaced): new instance ids, counters from 0.
        for (let f = churned % 10; f < opts.filters; f += 10) { gen[f]!++; seq[f] = 0; }
        churned++;
      }
      if (Date.now() >= nextSample) {
        nextSample += 10_000;
        const st = await client.maintenance.status();
        const keys = Number(await client.getAll().prefix("bench/traffic/").count());
        const sample = { s: round((Date.now() - t0) / 1000, 0), dbMB: round(Number(st.dbSize) / 2 ** 20, 1), inUseMB: round(Number(st.dbSizeInUse) / 2 ** 20, 1), keys, accepted, refused, published: relay.stats.published, transactions: relay.stats.transactions, compactions: relay.stats.compactions };
        samples.push(sample);
        if (process.env.SOAK_DEBUG) log(`debug: pending ${(relay as unknown as { pending: Map<string, unknown> }).pending.size}, queue ${(ingest as unknown as { queue: unknown[] }).queue.length}, echoes ${(relay as unknown as { echoes: Map<string, unknown> }).echoes.size}`);
        log(`relay-soak: ${sample.s} s: etcd ${sample.dbMB} MB (${sample.inUseMB} MB in use), ${keys} keys; reports accepted ${accepted}, refused ${refused}; ${sample.published} published in ${sample.transactions} transactions, ${sample.compactions} compactions`);
      }
      const wait = t + tickMs - Date.now();
      if (wait > 0) await sleep(wait);
    }
    const seconds = (Date.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    await sleep(500);
    await relay.flush();
    // Every report counted once: the inbound totals are what the filters' reports sum to. Each
    // instance's counters are cumulative from its own start, so the sum over instances of their
    // last report number is what the counters add up to.
    const expected = expectedInbound([...lastOf.values()].reduce((a, b) => a + b, 0));
    const got: Record<string, number> = {};
    for (const g of Object.keys(expected)) got[g] = ingest.totals(g).filter((t) => t.direction === 1).reduce((a, t) => a + t.requests, 0);
    const maxDb = Math.max(...samples.map((s) => s.dbMB));
    const result = {
      setup: { filters: opts.filters, everyMs: opts.everyMs, keyTtlMs: opts.keyTtlMs, compactEveryMs: opts.compactEveryMs, churn: `a tenth of the filters new every ${opts.churnEveryMs / 1000} s` },
      seconds: round(seconds, 1), reportsPerSecond: round(accepted / seconds, 1), refused, instances: lastOf.size,
      cpuMsPerSecond: round((cpu.user + cpu.system) / 1000 / seconds),
      relay: { ...relay.stats },
      samples,
      maxDbMB: maxDb, quotaMB: QUOTA / 2 ** 20, maxDbShareOfQuota: round((maxDb * 2 ** 20) / QUOTA, 3),
      keysAtEnd: samples.at(-1)?.keys,
      exact: Object.keys(expected).every((g) => got[g] === expected[g]),
      inboundExpected: expected, inboundCounted: got,
    };
    return result;
  } finally {
    await relay.close();
    client.close();
    db.close();
    await etcd.stop();
  }
}

if (isMain(import.meta.url)) {
  runRelaySoak().then((r) => {
    console.log(`  etcd at most ${r.maxDbMB} MB of a ${r.quotaMB} MB quota (${r.maxDbShareOfQuota * 100}%), ${r.keysAtEnd} keys at the end; totals ${r.exact ? "exact" : "NOT exact"}`);
    console.log(`  wrote ${writeResult("relay-soak", r)}`);
    process.exit(0);
  }).catch((e) => { console.error(e); process.exit(1); });
}
