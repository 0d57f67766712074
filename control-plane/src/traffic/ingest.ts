// Traffic.Report ingestion: cumulative counters per filter instance → exact deltas (deltas.ts), kept
// in SQLite (sqlite-tables.ts: per instance its last sequence and values, one transaction per report)
// and rolled up per minute there (the minute is the receive time), and per second in memory
// (windows.ts) for windowed summaries (summary.ts). A window reaching further back than this
// process's memory (a restart, or beyond memoryRetentionMs) is completed from the minute rollups,
// at minute granularity for that older part.
import type { Database } from "better-sqlite3";
import type { RuleSource, TrafficSource, TrafficSummary } from "../contracts.js";
import type { TrafficReport } from "../generated/graylane/v1/traffic_pb.js";
import { boundsKey, counterDelta, type Delta, isZero, reportCounters, sequenceVerdict } from "./deltas.js";
import { configuredShares } from "../compile/shares.js";
import { TrafficTables } from "./sqlite-tables.js";
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
}

export type ReportResult =
  | { accepted: true; sequence: bigint; counters: number }
  | { accepted: false; sequence: bigint; reason: "duplicate" | "stale" };

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
  private readonly ingestTx: (r: TrafficReport, now: number) => { result: ReportResult; deltas: Delta[]; bounds: number[] };

  constructor(private readonly opts: TrafficIngestOptions) {
    this.now = opts.now ?? Date.now;
    this.memoryRetentionMs = opts.memoryRetentionMs ?? 15 * MINUTE;
    this.rollupRetentionMs = opts.rollupRetentionMs ?? 30 * 24 * 60 * MINUTE;
    this.instanceTtlMs = opts.instanceTtlMs ?? 7 * 24 * 60 * MINUTE;
    this.startedAt = this.now();
    this.tables = new TrafficTables(opts.db);
    this.windows = new SecondWindows(this.memoryRetentionMs);
    this.ingestTx = this.tables.transaction((r: TrafficReport, now: number) => this.ingestInTx(r, now));
  }

  /** Ingests one report (one SQLite transaction). Throws on a report without instance_id. */
  report(r: TrafficReport): ReportResult {
    if (r.instanceId === "") throw new Error("TrafficReport.instance_id is required");
    const now = this.now();
    const { result, deltas, bounds } = this.ingestTx(r, now);
    if (result.accepted) this.windows.add(now, deltas, bounds);
    if (now - this.lastPrune > MINUTE) this.prune(now);
    return result;
  }

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

  private ingestInTx(r: TrafficReport, now: number): { result: ReportResult; deltas: Delta[]; bounds: number[] } {
    const bounds = r.latencyBoundsMs.map(Number);
    const bk = boundsKey(bounds);
    const seq = Number(r.sequence);
    const last = this.tables.lastSequence(r.instanceId);
    const verdict = sequenceVerdict(seq, last);
    if (verdict !== "new") return { result: { accepted: false, sequence: r.sequence, reason: verdict }, deltas: [], bounds };
    this.tables.saveInstance(r.instanceId, r.nodeId, seq, now);
    if (last === undefined && seq > 1 && this.opts.baselineUnknownInstances) {
      for (const [k, cur] of reportCounters(r)) this.tables.saveLastCounts(r.instanceId, k, { ...cur.counts, boundsKey: bk });
      return { result: { accepted: true, sequence: r.sequence, counters: 0 }, deltas: [], bounds };
    }

    const minute = Math.floor(now / MINUTE);
    const deltas: Delta[] = [];
    for (const [k, cur] of reportCounters(r)) {
      const d = counterDelta(cur.counts, bk, this.tables.lastCounts(r.instanceId, k));
      this.tables.saveLastCounts(r.instanceId, k, { ...cur.counts, boundsKey: bk });
      if (isZero(d)) continue;
      const delta: Delta = { ...cur.key, ...d };
      deltas.push(delta);
      this.tables.addToMinute(minute, delta, bk);
    }
    return { result: { accepted: true, sequence: r.sequence, counters: deltas.length }, deltas, bounds };
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
