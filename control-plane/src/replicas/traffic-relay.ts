// Traffic counters shared by every control-plane replica over etcd. A filter reports to whichever
// replica it is connected to; that replica ingests the report at once and publishes it under
// traffic/<instance id>; every replica (the publisher included, harmlessly: same sequence) ingests
// what its watch delivers. Reports are cumulative with a sequence number, so duplicates and
// reordering are ignored by the ingest, and every replica ends with the same counts.
//
// At 10,000 filters reporting every 5 s that is 2,000 reports (~4 KB each) a second, so etcd must
// not keep all of it:
//   - batched: accepted reports wait up to flushMs, only each instance's latest is kept (a later
//     report covers an earlier one), and go out in transactions of up to txnOps puts;
//   - deleted when no longer needed: every key is put under the newest of rotating leases (a new
//     one every keyTtlMs, each living 2 × keyTtlMs), so the key of a filter gone for longer than
//     that expires with its lease, and a replica that dies leaves nothing behind for long;
//   - compacted: every compactEveryMs (10 s) the history is compacted to the revision of the
//     previous tick, so etcd keeps one or two intervals of history (2,000 reports a second are
//     ~8 MB of it a second); a watcher that falls further behind reads everything again
//     (follow.ts), which ingests each instance's latest report once more: ignored if already seen.
//   - a replica's own publishes come back through its watch; they are recognized by their bytes and
//     not ingested twice.
import type { Etcd3, IKeyValue } from "etcd3";
import { type Follower, followPrefix } from "../store/etcd-follow.js";
import type { ReportResult, TrafficIngest } from "../traffic/ingest.js";

export interface TrafficRelayOptions {
  /** How long an accepted report may wait to be published with others (default 1,000 ms). */
  flushMs?: number;
  /** Puts per etcd transaction (default 100; etcd allows 128). */
  txnOps?: number;
  /** A filter's key lives between this and twice this after its last report (default 10 minutes). */
  keyTtlMs?: number;
  /** Compaction interval (default 10 s; 0: never). */
  compactEveryMs?: number;
}

export interface RelayStats {
  published: number;
  transactions: number;
  compactions: number;
  compactedTo: string;
  failures: number;
}

export class TrafficRelay {
  private watcher: Follower | undefined;
  /** What this relay published and has not seen come back through its own watch yet, by key. */
  private readonly echoes = new Map<string, Buffer>();
  private pending = new Map<string, Uint8Array>();
  private flushTimer: NodeJS.Timeout | undefined;
  private compactTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  /** Lease ids granted, newest last (kept only while they may still be current). */
  private leases: Array<{ id: string; at: number }> = [];
  private lastRevision = "0";
  private compactCandidate = "0";
  private closed = false;
  readonly stats: RelayStats = { published: 0, transactions: 0, compactions: 0, compactedTo: "0", failures: 0 };

  private constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    private readonly ingest: TrafficIngest,
    private readonly opts: Required<TrafficRelayOptions>,
  ) {}

  /** Ingests every instance's latest report already in etcd, then follows new ones. */
  static async start(client: Etcd3, prefix: string, ingest: TrafficIngest, options: TrafficRelayOptions = {}): Promise<TrafficRelay> {
    const relay = new TrafficRelay(client, `${prefix}traffic/`, ingest, {
      flushMs: options.flushMs ?? 1_000,
      txnOps: options.txnOps ?? 100,
      keyTtlMs: options.keyTtlMs ?? 10 * 60_000,
      compactEveryMs: options.compactEveryMs ?? 10_000,
    });
    relay.watcher = await followPrefix(client, relay.prefix, (kv) => relay.take(kv), "traffic relay");
    if (relay.opts.compactEveryMs > 0) {
      relay.compactTimer = setInterval(() => void relay.compact(), relay.opts.compactEveryMs);
      relay.compactTimer.unref();
    }
    return relay;
  }

  /**
   * The gRPC Traffic.Report sink: ingest here, publish for the other replicas. Not async: a report
   * that does not decode throws at once, as the ingest's does (the caller answers INVALID_ARGUMENT).
   */
  submit(r: Uint8Array): Promise<ReportResult> {
    return this.ingest.submit(r).then((result) => {
      if (result.accepted && !this.closed) {
        // A lost publish is covered by the instance's next report (its counters are cumulative).
        this.pending.set(result.instanceId, r);
        this.flushTimer ??= setTimeout(() => void this.flush(), this.opts.flushMs);
      }
      return result;
    });
  }

  /** Publishes what is pending now (tests; close). */
  flush(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const run = async () => {
      const batch = [...this.pending];
      this.pending.clear();
      if (batch.length === 0) return;
      try {
        const lease = await this.currentLease();
        for (let i = 0; i < batch.length; i += this.opts.txnOps) {
          const ops = batch.slice(i, i + this.opts.txnOps).map(([id, value]) => {
            const key = `${this.prefix}${id}`;
            const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
            this.echoes.set(key, bytes);
            return { request_put: { key: Buffer.from(key), value: bytes, lease } };
          });
          // A deadline: one stuck call must not hold every later flush behind it.
          const res = await this.client.kv.txn({ compare: [], success: ops, failure: [] }, { deadline: Date.now() + 10_000 });
          this.lastRevision = res.header.revision;
          this.stats.transactions++;
          this.stats.published += ops.length;
        }
      } catch (e) {
        this.stats.failures++;
        console.error(`graylane traffic relay: publishing ${batch.length} reports: ${(e as Error).message} (their next reports cover them)`);
      }
    };
    // One flush at a time, in order.
    const next = (this.flushing ?? Promise.resolve()).then(run);
    this.flushing = next;
    return next;
  }

  /** The lease new keys go under: a new one every keyTtlMs, each granted for twice that; the expired ones forgotten. */
  private async currentLease(): Promise<string> {
    const now = Date.now();
    const newest = this.leases.at(-1);
    if (newest && now - newest.at < this.opts.keyTtlMs) return newest.id;
    const lease = this.client.lease(Math.ceil((2 * this.opts.keyTtlMs) / 1000), { autoKeepAlive: false });
    lease.on("lost", () => {}); // expiry is the point
    const id = await lease.grant();
    this.leases.push({ id, at: now });
    this.leases = this.leases.filter((l) => now - l.at < 2 * this.opts.keyTtlMs);
    return id;
  }

  /** Compacts etcd's history to the revision seen at the previous tick. */
  private async compact(): Promise<void> {
    const to = this.compactCandidate;
    this.compactCandidate = this.lastRevision;
    if (to === "0" || BigInt(to) <= BigInt(this.stats.compactedTo)) return;
    try {
      await this.client.kv.compact({ revision: to }, { deadline: Date.now() + 10_000 });
      this.stats.compactions++;
      this.stats.compactedTo = to;
    } catch (e) {
      // Another replica compacted past it already: fine.
      if (!/compacted/i.test((e as Error).message)) console.error(`graylane traffic relay: compaction to ${to}: ${(e as Error).message}`);
      else this.stats.compactedTo = to;
    }
  }

  private take(kv: IKeyValue): void {
    // Its own publish coming back: ingested already (the bytes compare; cheaper than decoding).
    const key = kv.key.toString();
    const mine = this.echoes.get(key);
    if (mine) {
      this.echoes.delete(key);
      if (mine.equals(kv.value)) return;
    }
    this.ingest.submit(kv.value).catch((e: Error) => console.error(`graylane traffic relay: ${key}: ${e.message}`));
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.compactTimer);
    await this.flush();
    await this.watcher?.cancel().catch(() => undefined);
  }
}
