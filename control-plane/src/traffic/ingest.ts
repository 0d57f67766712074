// Traffic.Report ingestion: cumulative counters per filter instance → exact deltas (deltas.ts), kept
// in SQLite (sqlite-tables.ts: per instance its last sequence and values) and rolled up per minute
// there (the minute is the receive time), and per second in memory (windows.ts) for windowed
// summaries (summary.ts). Reports arriving together are ingested in one transaction (submit():
// batched for up to batchDelayMs; each report's minute rows summed first), and a report is
// answered only once its batch committed, so an ACKed report is never lost; report() ingests at
// once. Reads see what was answered. A window reaching further back than this
// process's memory (a restart, or beyond memoryRetentionMs) is completed from the minute rollups,
// at minute granularity for that older part.
import type { Database } from "better-sqlite3";
import type { RuleSource, TrafficSource, TrafficSummary } from "../contracts.js";
import type { TrafficReport } from "../generated/graylane/v1/traffic_pb.js";
import { addInto, boundsKey, counterDelta, type Delta, isZero, sequenceVerdict } from "./deltas.js";
import { type ParsedReport, parseReportBytes, parseReportMessage } from "./report-wire.js";
import { configuredShares } from "../compile/shares.js";
import { type StoredInstance, TrafficTables } from "./sqlite-tables.js";
import { aggOfRollup, summarize, totalsOf, type TrafficTotal } from "./summary.js";
import { MINUTE, SecondWindows, windowPlan } from "./windows.js";

export type { TrafficTotal } from "./summary.js";

export interface TrafficIngestOptions {
  db: Database;
  /** Configured lane weights (and the group's services and lanes) come from the current rules. */
  rules?: RuleSource;
  /** Alternatively: configured share per lane (0..1) of a group; overrides `rules` for shares. */
  configuredShares?: (group: string) => Record<string, number> | undefined;
  /** Clock in ms (default Date.now). */
  now?: () => number;
  /** Per-second buckets kept in memory (default 15 minutes). */
  memoryRetentionMs?: number;
  /** Minute rollups older than this are deleted (default 30 days; 0 keeps them forever). */
  rollupRetentionMs?: number;
  /** Per-instance last values unseen for this long are forgotten (default 7 days). */
  instanceTtlMs?: number;
  /**
   * A report from an instance never seen here, other than its first (sequence > 1), sets the
   * instance's starting point and counts nothing: Kubernetes replicas, where the replica that
   * becomes active has not seen the filters that reported to another one, whose cumulative history
   * would otherwise land in the minute of the failover.
   */
  baselineUnknownInstances?: boolean;
  /** submit(): how long a report may wait for others to share its transaction (default 100 ms: a filter reports every few seconds). */
  batchDelayMs?: number;
  /** submit(): a batch this large is ingested at once, and no batch is larger: the event loop is held ~50 ms at most (default 200). */
  maxBatch?: number;
  /**
   * submit(): reports waiting beyond this many are refused (IngestBehindError), so a control plane
   * that cannot keep up sheds load instead of growing without bound; the filter's next cumulative
   * report covers a refused one (default 20,000).
   */
  maxQueue?: number;
}

interface Queued {
  r: ParsedReport;
  now: number;
  done?: { resolve(result: ReportResult): void; reject(e: unknown): void };
}

/** The deltas of one batch per minute row: summed before they are written. */
interface MinuteSum {
  minute: number;
  boundsKey: string;
  delta: Delta;
}

export type ReportResult = { instanceId: string; sequence: bigint } & (
  | { accepted: true; counters: number }
  | { accepted: false; reason: "duplicate" | "stale" }
);

/** submit() refused a report: too many are waiting (the filter's next report covers it). */
export class IngestBehindError extends Error {
  constructor(readonly queued: number) {
    super(`traffic ingestion is behind (${queued} reports waiting); the next report covers this one`);
  }
}

export class TrafficIngest implements TrafficSource {
  private readonly tables: TrafficTables;
  private readonly windows: SecondWindows;
  private readonly now: () => number;
  private readonly memoryRetentionMs: number;
  private readonly rollupRetentionMs: number;
  private readonly instanceTtlMs: number;
  /** Time from which the in-memory seconds are complete. */
  private readonly startedAt: number;
  private lastPrune = 0;
  private queue: Queued[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly ingestTx: (batch: Queued[]) => { results: ReportResult[]; windows: Array<{ now: number; deltas: Delta[]; bounds: number[] }> };

  constructor(private readonly opts: TrafficIngestOptions) {
    this.now = opts.now ?? Date.now;
    this.memoryRetentionMs = opts.memoryRetentionMs ?? 15 * MINUTE;
    this.rollupRetentionMs = opts.rollupRetentionMs ?? 30 * 24 * 60 * MINUTE;
    this.instanceTtlMs = opts.instanceTtlMs ?? 7 * 24 * 60 * MINUTE;
    this.startedAt = this.now();
    this.tables = new TrafficTables(opts.db);
    this.windows = new SecondWindows(this.memoryRetentionMs);
    this.ingestTx = this.tables.transaction((batch: Queued[]) => this.ingestBatch(batch));
  }

  /** Ingests one report now (with whatever is queued, one transaction). Throws on a report without instance_id. */
  report(r: TrafficReport): ReportResult {
    this.queue.push({ r: valid(parseReportMessage(r)), now: this.now() });
    return this.flush().at(-1)!;
  }

  /**
   * Queues a report (a message, or its bytes as a filter sent them); resolves once it is ingested
   * and committed with its batch. Throws on a report that does not decode or has no instance_id.
   */
  submit(report: TrafficReport | Uint8Array): Promise<ReportResult> {
    const r = valid(report instanceof Uint8Array ? parseReportBytes(report) : parseReportMessage(report));
    if (this.queue.length >= (this.opts.maxQueue ?? 20_000)) return Promise.reject(new IngestBehindError(this.queue.length));
    return new Promise((resolve, reject) => {
      this.queue.push({ r, now: this.now(), done: { resolve, reject } });
      if (this.queue.length >= this.maxBatch) this.flushQueued();
      else this.timer ??= setTimeout(() => this.flushQueued(), this.opts.batchDelayMs ?? 100);
    });
  }

  /** What the answered reports counted (one submitted but not answered yet counts once it is). */
  summary(group: string, windowMs: number): TrafficSummary {
    const plan = windowPlan(this.now(), windowMs, this.startedAt, this.memoryRetentionMs);
    const older = plan.fromMinute < plan.toMinute ? this.tables.minutes(group, plan.fromMinute, plan.toMinute) : [];
    const aggs = [...older.map((row) => aggOfRollup(group, row)), ...this.windows.since(group, plan.memoryFrom)];
    return summarize(group, windowMs, aggs, this.configured(group));
  }

  /** Exact totals per counter key of a group over every retained minute rollup (survives restarts). */
  totals(group: string): TrafficTotal[] {
    return totalsOf(group, this.tables.minutes(group, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER));
  }

  private get maxBatch(): number {
    return this.opts.maxBatch ?? 200;
  }

  /** One batch of submitted reports; more waiting go in the next turn of the event loop (pushes and reads get theirs in between). */
  private flushQueued(): void {
    try {
      this.flush(this.maxBatch);
      if (this.queue.length > 0) this.timer ??= setTimeout(() => this.flushQueued(), 0);
    } catch (e) {
      console.error(`graylane traffic: a batch of reports was not ingested (each caller is told): ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Ingests the queue (or its first `max`) in one transaction; each report learns its result (or the error). */
  private flush(max = Infinity): ReportResult[] {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.queue.length === 0) return [];
    const batch = this.queue.length <= max ? this.queue : this.queue.slice(0, max);
    this.queue = this.queue.length <= max ? [] : this.queue.slice(max);
    let out: ReturnType<typeof this.ingestTx>;
    try {
      out = this.ingestTx(batch);
    } catch (e) {
      for (const q of batch) q.done?.reject(e);
      throw e;
    }
    for (const w of out.windows) this.windows.add(w.now, w.deltas, w.bounds);
    batch.forEach((q, i) => q.done?.resolve(out.results[i]!));
    const now = this.now();
    if (now - this.lastPrune > MINUTE) this.prune(now);
    return out.results;
  }

  private ingestBatch(batch: Queued[]) {
    const touched = new Map<string, { nodeId: string; state: StoredInstance; now: number }>();
    // minute and bounds → counter storage key → sum (storage keys are interned strings: cheap keys).
    const minutes = new Map<string, Map<string, MinuteSum>>();
    const windows: Array<{ now: number; deltas: Delta[]; bounds: number[] }> = [];
    const results = batch.map(({ r, now }): ReportResult => {
      const sequence = BigInt(r.sequence);
      const bk = boundsKey(r.bounds);
      const state = touched.get(r.instanceId)?.state ?? this.tables.loadInstance(r.instanceId);
      const verdict = sequenceVerdict(r.sequence, state?.sequence);
      const instanceId = r.instanceId;
      if (verdict !== "new") return { instanceId, accepted: false, sequence, reason: verdict };
      const s: StoredInstance = state ?? { sequence: r.sequence, firstSeen: now, last: new Map(), legacy: false };
      s.sequence = r.sequence;
      touched.set(r.instanceId, { nodeId: r.nodeId, state: s, now });
      if (state === undefined && r.sequence > 1 && this.opts.baselineUnknownInstances) {
        for (const [k, c] of r.counters) s.last.set(k, { requests: c.requests, sumUs: c.sumUs, buckets: c.buckets, boundsKey: bk });
        return { instanceId, accepted: true, sequence, counters: 0 };
      }
      const minute = Math.floor(now / MINUTE);
      const at = `${minute}\0${bk}`;
      let sums = minutes.get(at);
      if (!sums) minutes.set(at, (sums = new Map()));
      const deltas: Delta[] = [];
      for (const [k, c] of r.counters) {
        const d = counterDelta(c, bk, s.last.get(k));
        s.last.set(k, { requests: c.requests, sumUs: c.sumUs, buckets: c.buckets, boundsKey: bk });
        if (isZero(d)) continue;
        const key = c.key;
        const delta: Delta = {
          group: key.group, lane: key.lane, route: key.route, service: key.service, direction: key.direction, source: key.source,
          statusClass: key.statusClass, grpcStatus: key.grpcStatus, requests: d.requests, sumUs: d.sumUs, buckets: d.buckets, storageKey: k,
        };
        deltas.push(delta);
        const sum = sums.get(k);
        if (sum) {
          sum.delta.requests += delta.requests;
          sum.delta.sumUs += delta.sumUs;
          addInto(sum.delta.buckets, delta.buckets);
        } else sums.set(k, { minute, boundsKey: bk, delta: { ...delta, buckets: [...delta.buckets] } });
      }
      windows.push({ now, deltas, bounds: r.bounds });
      return { instanceId, accepted: true, sequence, counters: deltas.length };
    });
    for (const [id, t] of touched) this.tables.saveInstance(id, t.nodeId, t.state, t.now);
    for (const sums of minutes.values()) for (const m of sums.values()) this.tables.addToMinute(m.minute, m.delta, m.boundsKey);
    return { results, windows };
  }

  private prune(now: number): void {
    this.lastPrune = now;
    this.tables.prune(this.rollupRetentionMs > 0 ? Math.floor((now - this.rollupRetentionMs) / MINUTE) : undefined, now - this.instanceTtlMs);
  }

  /** Services, lanes (base first) and configured shares of a group from the current rules. */
  private configured(group: string): { services: string[]; lanes: string[]; shares: Record<string, number> } {
    const g = this.opts.rules?.current().groups.find((x) => x.name === group);
    let shares: Record<string, number> = {};
    let services: string[] = [];
    let lanes: string[] = [];
    if (g) {
      services = g.services.map((s) => s.name);
      lanes = [g.baseLane, ...g.lanes.map((l) => l.name)];
      shares = configuredShares(g);
    }
    const override = this.opts.configuredShares?.(group);
    if (override) {
      shares = { ...override };
      for (const l of Object.keys(override)) if (!lanes.includes(l)) lanes.push(l);
    }
    return { services, lanes, shares };
  }
}

function valid(r: ParsedReport): ParsedReport {
  if (r.instanceId === "") throw new Error("TrafficReport.instance_id is required");
  return r;
}
