// Traffic.Report ingestion: cumulative counters per filter instance → exact deltas.
//
// A report holds everything an instance counted since it started. Per instance we persist (SQLite,
// one transaction per report) the last sequence and the last cumulative value of every counter key;
// a report's delta is current − last (a key not seen before counts from 0). Hence:
//   - lost report:       the next one's cumulative values cover it;
//   - repeated report:   sequence == last → ignored;
//   - reordered report:  sequence <  last → ignored (the newer one already covered it);
//   - filter restart:    a new instance_id, whose counters start from 0;
//   - control-plane restart: the last values are in the db file, so the next report's delta is exact.
// A counter lower than its last value within one instance (which a filter does not do) is taken as a
// counter reset, Prometheus-style: the delta is the current value.
//
// Deltas go to per-minute rollups in SQLite (same transaction; the minute is the receive time) and
// to per-second buckets in memory for windowed summaries. A window reaching further back than this
// process's memory (a restart, or beyond memoryRetentionMs) is completed from the minute rollups,
// at minute granularity for that older part.
import type { Database } from "better-sqlite3";
import type { RuleSource, TrafficRow, TrafficSource, TrafficSummary } from "../contracts.js";
import { Direction, type TrafficReport } from "../generated/graylane/v1/traffic_pb.js";
import { configuredShares } from "../compile/shares.js";
import { quantile, type Histogram } from "./histogram.js";

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
}

export type ReportResult =
  | { accepted: true; sequence: bigint; counters: number }
  | { accepted: false; sequence: bigint; reason: "duplicate" | "stale" };

/** Total of one counter key over every retained minute rollup. */
export interface TrafficTotal {
  group: string;
  lane: string;
  route: string;
  service: string;
  direction: number;
  source: number;
  statusClass: number;
  requests: number;
  latencySumUs: number;
  /** Latency bucket counts, with the bounds they belong to. */
  bounds: number[];
  buckets: number[];
}

interface CounterKey {
  group: string;
  lane: string;
  route: string;
  service: string;
  direction: number;
  source: number;
  statusClass: number;
}

interface Delta extends CounterKey {
  requests: number;
  sumUs: number;
  buckets: number[];
}

/** In-memory aggregate for summaries (route and source are not needed there). */
interface Agg {
  group: string;
  service: string;
  lane: string;
  direction: number;
  statusClass: number;
  boundsKey: string;
  requests: number;
  buckets: number[];
}

const SECOND = 1000;
const MINUTE = 60_000;

const keyOf = (k: CounterKey): string =>
  JSON.stringify([k.group, k.lane, k.route, k.service, k.direction, k.source, k.statusClass]);

export class TrafficIngest implements TrafficSource {
  private readonly db: Database;
  private readonly now: () => number;
  private readonly memoryRetentionMs: number;
  private readonly rollupRetentionMs: number;
  private readonly instanceTtlMs: number;
  /** Time from which the in-memory seconds are complete. */
  private readonly startedAt: number;
  /** second (epoch s) → agg key → aggregate */
  private readonly seconds = new Map<number, Map<string, Agg>>();
  private lastPrune = 0;
  private readonly stmt;
  private readonly ingestTx: (r: TrafficReport, now: number) => { result: ReportResult; deltas: Delta[]; bounds: number[] };

  constructor(private readonly opts: TrafficIngestOptions) {
    this.db = opts.db;
    this.now = opts.now ?? Date.now;
    this.memoryRetentionMs = opts.memoryRetentionMs ?? 15 * MINUTE;
    this.rollupRetentionMs = opts.rollupRetentionMs ?? 30 * 24 * 60 * MINUTE;
    this.instanceTtlMs = opts.instanceTtlMs ?? 7 * 24 * 60 * MINUTE;
    this.startedAt = this.now();
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS traffic_instances (
        instance_id   TEXT PRIMARY KEY,
        node_id       TEXT NOT NULL,
        last_sequence INTEGER NOT NULL,
        first_seen    INTEGER NOT NULL,
        last_seen     INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS traffic_last (
        instance_id    TEXT NOT NULL,
        counter_key    TEXT NOT NULL,
        requests       INTEGER NOT NULL,
        latency_sum_us INTEGER NOT NULL,
        bounds         TEXT NOT NULL,
        buckets        TEXT NOT NULL,
        PRIMARY KEY (instance_id, counter_key)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS traffic_minutes (
        grp            TEXT NOT NULL,
        minute         INTEGER NOT NULL,
        service        TEXT NOT NULL,
        lane           TEXT NOT NULL,
        route          TEXT NOT NULL,
        direction      INTEGER NOT NULL,
        source         INTEGER NOT NULL,
        status_class   INTEGER NOT NULL,
        bounds         TEXT NOT NULL,
        requests       INTEGER NOT NULL,
        latency_sum_us INTEGER NOT NULL,
        buckets        TEXT NOT NULL,
        PRIMARY KEY (grp, minute, service, lane, route, direction, source, status_class, bounds)
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS traffic_minutes_by_minute ON traffic_minutes (minute);
    `);
    this.stmt = {
      instance: this.db.prepare<[string], { last_sequence: number }>(
        "SELECT last_sequence FROM traffic_instances WHERE instance_id = ?",
      ),
      upsertInstance: this.db.prepare(
        `INSERT INTO traffic_instances (instance_id, node_id, last_sequence, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (instance_id) DO UPDATE SET node_id = excluded.node_id, last_sequence = excluded.last_sequence, last_seen = excluded.last_seen`,
      ),
      last: this.db.prepare<[string, string], { requests: number; latency_sum_us: number; bounds: string; buckets: string }>(
        "SELECT requests, latency_sum_us, bounds, buckets FROM traffic_last WHERE instance_id = ? AND counter_key = ?",
      ),
      upsertLast: this.db.prepare(
        `INSERT INTO traffic_last (instance_id, counter_key, requests, latency_sum_us, bounds, buckets) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (instance_id, counter_key) DO UPDATE SET requests = excluded.requests,
           latency_sum_us = excluded.latency_sum_us, bounds = excluded.bounds, buckets = excluded.buckets`,
      ),
      minute: this.db.prepare<unknown[], { requests: number; latency_sum_us: number; buckets: string }>(
        `SELECT requests, latency_sum_us, buckets FROM traffic_minutes WHERE grp = ? AND minute = ? AND service = ? AND lane = ?
           AND route = ? AND direction = ? AND source = ? AND status_class = ? AND bounds = ?`,
      ),
      upsertMinute: this.db.prepare(
        `INSERT INTO traffic_minutes (grp, minute, service, lane, route, direction, source, status_class, bounds, requests, latency_sum_us, buckets)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (grp, minute, service, lane, route, direction, source, status_class, bounds) DO UPDATE SET
           requests = excluded.requests, latency_sum_us = excluded.latency_sum_us, buckets = excluded.buckets`,
      ),
      minutesOf: this.db.prepare<[string, number, number], MinuteRow>(
        `SELECT service, lane, route, direction, source, status_class, bounds, requests, latency_sum_us, buckets
           FROM traffic_minutes WHERE grp = ? AND minute >= ? AND minute < ?`,
      ),
      pruneMinutes: this.db.prepare("DELETE FROM traffic_minutes WHERE minute < ?"),
      pruneLast: this.db.prepare(
        "DELETE FROM traffic_last WHERE instance_id IN (SELECT instance_id FROM traffic_instances WHERE last_seen < ?)",
      ),
      pruneInstances: this.db.prepare("DELETE FROM traffic_instances WHERE last_seen < ?"),
    };
    this.ingestTx = this.db.transaction((r: TrafficReport, now: number) => this.ingestInTx(r, now));
  }

  /** Ingests one report (one SQLite transaction). Throws on a report without instance_id. */
  report(r: TrafficReport): ReportResult {
    if (r.instanceId === "") throw new Error("TrafficReport.instance_id is required");
    const now = this.now();
    const { result, deltas, bounds } = this.ingestTx(r, now);
    if (result.accepted) this.remember(now, deltas, bounds);
    if (now - this.lastPrune > MINUTE) this.prune(now);
    return result;
  }

  summary(group: string, windowMs: number): TrafficSummary {
    const now = this.now();
    const from = now - Math.max(0, windowMs);
    const aggs = new Map<string, Agg>();
    const add = (a: Omit<Agg, "buckets" | "requests">, requests: number, buckets: readonly number[]) => {
      const k = JSON.stringify([a.service, a.lane, a.direction, a.statusClass, a.boundsKey]);
      let t = aggs.get(k);
      if (!t) aggs.set(k, (t = { ...a, requests: 0, buckets: buckets.map(() => 0) }));
      t.requests += requests;
      for (let i = 0; i < buckets.length && i < t.buckets.length; i++) t.buckets[i]! += buckets[i]!;
    };

    // Memory is complete from `boundary` on (a minute edge); older parts come from the rollups.
    const memoryFrom = Math.max(this.startedAt, now - this.memoryRetentionMs);
    const boundary = Math.ceil(memoryFrom / MINUTE) * MINUTE;
    if (from < boundary) {
      for (const row of this.stmt.minutesOf.all(group, Math.floor(from / MINUTE), boundary / MINUTE)) {
        if (row.direction !== Direction.INBOUND && row.direction !== Direction.EDGE) continue;
        add(
          { group, service: row.service, lane: row.lane, direction: row.direction, statusClass: row.status_class, boundsKey: row.bounds },
          row.requests,
          JSON.parse(row.buckets) as number[],
        );
      }
    }
    const firstSecond = Math.floor(Math.max(from, boundary) / SECOND);
    for (const [sec, m] of this.seconds) {
      if (sec < firstSecond) continue;
      for (const a of m.values()) if (a.group === group) add(a, a.requests, a.buckets);
    }

    const config = this.configured(group);
    const inbound = [...aggs.values()].filter((a) => a.direction === Direction.INBOUND);
    const cells = new Map<string, { service: string; lane: string; aggs: Agg[] }>();
    const cell = (service: string, lane: string) => {
      const k = JSON.stringify([service, lane]);
      let c = cells.get(k);
      if (!c) cells.set(k, (c = { service, lane, aggs: [] }));
      return c;
    };
    for (const s of config.services) for (const l of config.lanes) cell(s, l);
    for (const a of inbound) cell(a.service, a.lane).aggs.push(a);

    const serviceTotals = new Map<string, number>();
    for (const a of inbound) serviceTotals.set(a.service, (serviceTotals.get(a.service) ?? 0) + a.requests);

    const laneOrder = new Map(config.lanes.map((l, i) => [l, i]));
    const serviceOrder = new Map(config.services.map((s, i) => [s, i]));
    const order = (m: Map<string, number>, k: string) => m.get(k) ?? Number.MAX_SAFE_INTEGER;
    const rows: TrafficRow[] = [...cells.values()]
      .sort(
        (a, b) =>
          order(serviceOrder, a.service) - order(serviceOrder, b.service) ||
          cmp(a.service, b.service) ||
          order(laneOrder, a.lane) - order(laneOrder, b.lane) ||
          cmp(a.lane, b.lane),
      )
      .map((c) => {
        const requests = c.aggs.reduce((n, a) => n + a.requests, 0);
        const errors = c.aggs.filter((a) => a.statusClass === 5).reduce((n, a) => n + a.requests, 0);
        const total = serviceTotals.get(c.service) ?? 0;
        const hists: Histogram[] = c.aggs.map((a) => ({ bounds: JSON.parse(a.boundsKey) as number[], counts: a.buckets }));
        return {
          service: c.service,
          lane: c.lane,
          requests,
          observedShare: total > 0 ? requests / total : 0,
          configuredShare: config.shares[c.lane] ?? 0,
          errorRate: requests > 0 ? errors / requests : 0,
          p50Ms: round3(quantile(hists, 0.5)),
          p99Ms: round3(quantile(hists, 0.99)),
        };
      });

    const edge = new Map<string, number>();
    for (const a of aggs.values()) if (a.direction === Direction.EDGE) edge.set(a.lane, (edge.get(a.lane) ?? 0) + a.requests);
    return {
      group,
      windowMs,
      services: rows,
      edge: [...edge.entries()]
        .sort(([a], [b]) => order(laneOrder, a) - order(laneOrder, b) || cmp(a, b))
        .map(([lane, requests]) => ({ lane, requests })),
    };
  }

  /** Exact totals per counter key of a group over every retained minute rollup (survives restarts). */
  totals(group: string): TrafficTotal[] {
    const out = new Map<string, TrafficTotal>();
    for (const row of this.stmt.minutesOf.all(group, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)) {
      const k = JSON.stringify([row.service, row.lane, row.route, row.direction, row.source, row.status_class, row.bounds]);
      const buckets = JSON.parse(row.buckets) as number[];
      let t = out.get(k);
      if (!t) {
        out.set(
          k,
          (t = {
            group,
            lane: row.lane,
            route: row.route,
            service: row.service,
            direction: row.direction,
            source: row.source,
            statusClass: row.status_class,
            requests: 0,
            latencySumUs: 0,
            bounds: JSON.parse(row.bounds) as number[],
            buckets: buckets.map(() => 0),
          }),
        );
      }
      t.requests += row.requests;
      t.latencySumUs += row.latency_sum_us;
      buckets.forEach((n, i) => (t.buckets[i]! += n));
    }
    return [...out.values()].sort(
      (a, b) =>
        cmp(a.service, b.service) || cmp(a.lane, b.lane) || cmp(a.route, b.route) ||
        a.direction - b.direction || a.source - b.source || a.statusClass - b.statusClass,
    );
  }

  private ingestInTx(r: TrafficReport, now: number): { result: ReportResult; deltas: Delta[]; bounds: number[] } {
    const bounds = r.latencyBoundsMs.map(Number);
    const boundsKey = JSON.stringify(bounds);
    const prev = this.stmt.instance.get(r.instanceId);
    const seq = Number(r.sequence);
    if (prev && seq <= prev.last_sequence) {
      return { result: { accepted: false, sequence: r.sequence, reason: seq === prev.last_sequence ? "duplicate" : "stale" }, deltas: [], bounds };
    }
    this.stmt.upsertInstance.run(r.instanceId, r.nodeId, seq, now, now);

    // One entry per key (a key repeated within a report: the later one wins).
    const latest = new Map<string, { key: CounterKey; requests: number; sumUs: number; buckets: number[] }>();
    for (const c of r.counters) {
      const key: CounterKey = {
        group: c.group,
        lane: c.lane,
        route: c.route,
        service: c.service,
        direction: c.direction,
        source: c.source,
        statusClass: c.statusClass,
      };
      latest.set(keyOf(key), { key, requests: Number(c.requests), sumUs: Number(c.latencySumUs), buckets: normalize(c.latencyBuckets.map(Number), bounds.length + 1) });
    }

    const minute = Math.floor(now / MINUTE);
    const deltas: Delta[] = [];
    for (const [k, cur] of latest) {
      const last = this.stmt.last.get(r.instanceId, k);
      let dRequests = cur.requests;
      let dSum = cur.sumUs;
      let dBuckets = cur.buckets;
      if (last) {
        const lastBuckets = JSON.parse(last.buckets) as number[];
        const reset = cur.requests < last.requests || cur.sumUs < last.latency_sum_us;
        if (!reset) {
          dRequests = cur.requests - last.requests;
          dSum = cur.sumUs - last.latency_sum_us;
        }
        // Buckets are diffed on their own: same bounds and no bucket went down, else counted afresh.
        if (!reset && last.bounds === boundsKey && lastBuckets.length === cur.buckets.length && cur.buckets.every((n, i) => n >= lastBuckets[i]!)) {
          dBuckets = cur.buckets.map((n, i) => n - lastBuckets[i]!);
        }
      }
      this.stmt.upsertLast.run(r.instanceId, k, cur.requests, cur.sumUs, boundsKey, JSON.stringify(cur.buckets));
      if (dRequests === 0 && dSum === 0 && dBuckets.every((n) => n === 0)) continue;

      const d: Delta = { ...cur.key, requests: dRequests, sumUs: dSum, buckets: dBuckets };
      deltas.push(d);
      const params = [d.group, minute, d.service, d.lane, d.route, d.direction, d.source, d.statusClass, boundsKey];
      const row = this.stmt.minute.get(...params);
      const buckets = row ? addArrays(JSON.parse(row.buckets) as number[], dBuckets) : dBuckets;
      this.stmt.upsertMinute.run(...params, (row?.requests ?? 0) + dRequests, (row?.latency_sum_us ?? 0) + dSum, JSON.stringify(buckets));
    }
    return { result: { accepted: true, sequence: r.sequence, counters: deltas.length }, deltas, bounds };
  }

  private remember(now: number, deltas: Delta[], bounds: number[]): void {
    const sec = Math.floor(now / SECOND);
    let m = this.seconds.get(sec);
    if (!m) this.seconds.set(sec, (m = new Map()));
    const boundsKey = JSON.stringify(bounds);
    for (const d of deltas) {
      if (d.direction !== Direction.INBOUND && d.direction !== Direction.EDGE) continue; // summaries read only these
      const k = JSON.stringify([d.group, d.service, d.lane, d.direction, d.statusClass, boundsKey]);
      let a = m.get(k);
      if (!a) {
        m.set(
          k,
          (a = { group: d.group, service: d.service, lane: d.lane, direction: d.direction, statusClass: d.statusClass, boundsKey, requests: 0, buckets: d.buckets.map(() => 0) }),
        );
      }
      a.requests += d.requests;
      addInto(a.buckets, d.buckets);
    }
    const oldest = Math.floor((now - this.memoryRetentionMs) / SECOND);
    for (const s of this.seconds.keys()) if (s < oldest) this.seconds.delete(s);
  }

  private prune(now: number): void {
    this.lastPrune = now;
    if (this.rollupRetentionMs > 0) this.stmt.pruneMinutes.run(Math.floor((now - this.rollupRetentionMs) / MINUTE));
    this.stmt.pruneLast.run(now - this.instanceTtlMs);
    this.stmt.pruneInstances.run(now - this.instanceTtlMs);
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

interface MinuteRow {
  service: string;
  lane: string;
  route: string;
  direction: number;
  source: number;
  status_class: number;
  bounds: string;
  requests: number;
  latency_sum_us: number;
  buckets: string;
}

/** Exactly n buckets: missing ones are 0, extra ones go to the last (unbounded) bucket. */
function normalize(b: number[], n: number): number[] {
  const out = new Array<number>(n).fill(0);
  b.forEach((x, i) => (out[Math.min(i, n - 1)]! += x));
  return out;
}

function addArrays(a: number[], b: number[]): number[] {
  const out = a.length >= b.length ? [...a] : [...b];
  const other = a.length >= b.length ? b : a;
  other.forEach((x, i) => (out[i]! += x));
  return out;
}

function addInto(into: number[], b: readonly number[]): void {
  for (let i = 0; i < b.length; i++) into[i] = (into[i] ?? 0) + b[i]!;
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const round3 = (x: number | null): number | null => (x === null ? null : Math.round(x * 1000) / 1000);
