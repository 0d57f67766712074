// Where traffic ingestion keeps its state, in SQLite: per filter instance one row with its last
// sequence and the last cumulative values of every counter key (what deltas are taken against) —
// one read and one write per report, not one per counter: 10,000 filters report 2,000 times a
// second —, and per-minute rollups of the deltas (what totals and older windows are read from).
// traffic_last (a row per counter, written by older versions) is still read for an instance whose
// row has no values yet, and emptied for it once its values are in the row. No ingestion logic here.
import type { Database } from "better-sqlite3";
import { addArrays, type Delta, type LastCounts } from "./deltas.js";
import type { RollupRow } from "./summary.js";

const DDL = `
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
    grpc_status    INTEGER NOT NULL DEFAULT -1,
    bounds         TEXT NOT NULL,
    requests       INTEGER NOT NULL,
    latency_sum_us INTEGER NOT NULL,
    buckets        TEXT NOT NULL,
    PRIMARY KEY (grp, minute, service, lane, route, direction, source, status_class, grpc_status, bounds)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS traffic_minutes_by_minute ON traffic_minutes (minute);
`;

// A database written before gRPC statuses were counted has traffic_minutes without grpc_status:
// its rows move, in one transaction, into the table above with grpc_status -1 (not gRPC).
const ADD_GRPC_STATUS = `
  ALTER TABLE traffic_minutes RENAME TO traffic_minutes_before_grpc;
  DROP INDEX IF EXISTS traffic_minutes_by_minute;
  ${DDL}
  INSERT INTO traffic_minutes (grp, minute, service, lane, route, direction, source, status_class, grpc_status, bounds, requests, latency_sum_us, buckets)
    SELECT grp, minute, service, lane, route, direction, source, status_class, -1, bounds, requests, latency_sum_us, buckets FROM traffic_minutes_before_grpc;
  DROP TABLE traffic_minutes_before_grpc;
`;

// Databases written before the values moved into the instance row.
const ADD_LAST_COUNTS = "ALTER TABLE traffic_instances ADD COLUMN last_counts TEXT";

interface MinuteRow {
  service: string;
  lane: string;
  route: string;
  direction: number;
  source: number;
  status_class: number;
  grpc_status: number;
  bounds: string;
  requests: number;
  latency_sum_us: number;
  buckets: string;
}

/** What ingestion keeps per filter instance. */
export interface StoredInstance {
  sequence: number;
  firstSeen: number;
  /** Last cumulative values per counter key (deltas.ts counterKey). */
  last: Map<string, LastCounts>;
  /** Its values still live in traffic_last rows (an older version wrote them). */
  legacy: boolean;
}

/** last_counts: bounds key → counter key → [requests, latency sum, ...buckets] (the bounds written once). */
type PackedCounts = Record<string, Record<string, number[]>>;

export class TrafficTables {
  private readonly stmt;

  /** Creates the tables when missing. */
  constructor(private readonly db: Database) {
    db.exec(DDL);
    const columns = db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('traffic_minutes')").all();
    if (!columns.some((c) => c.name === "grpc_status")) db.transaction(() => db.exec(ADD_GRPC_STATUS))();
    const instanceColumns = db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('traffic_instances')").all();
    if (!instanceColumns.some((c) => c.name === "last_counts")) db.exec(ADD_LAST_COUNTS);
    this.stmt = {
      instance: db.prepare<[string], { last_sequence: number; first_seen: number; last_counts: string | null }>(
        "SELECT last_sequence, first_seen, last_counts FROM traffic_instances WHERE instance_id = ?",
      ),
      upsertInstance: db.prepare(
        `INSERT INTO traffic_instances (instance_id, node_id, last_sequence, first_seen, last_seen, last_counts) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (instance_id) DO UPDATE SET node_id = excluded.node_id, last_sequence = excluded.last_sequence,
           last_seen = excluded.last_seen, last_counts = excluded.last_counts`,
      ),
      legacyLast: db.prepare<[string], { counter_key: string; requests: number; latency_sum_us: number; bounds: string; buckets: string }>(
        "SELECT counter_key, requests, latency_sum_us, bounds, buckets FROM traffic_last WHERE instance_id = ?",
      ),
      dropLegacyLast: db.prepare("DELETE FROM traffic_last WHERE instance_id = ?"),
      minute: db.prepare<unknown[], { requests: number; latency_sum_us: number; buckets: string }>(
        `SELECT requests, latency_sum_us, buckets FROM traffic_minutes WHERE grp = ? AND minute = ? AND service = ? AND lane = ?
           AND route = ? AND direction = ? AND source = ? AND status_class = ? AND grpc_status = ? AND bounds = ?`,
      ),
      upsertMinute: db.prepare(
        `INSERT INTO traffic_minutes (grp, minute, service, lane, route, direction, source, status_class, grpc_status, bounds, requests, latency_sum_us, buckets)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (grp, minute, service, lane, route, direction, source, status_class, grpc_status, bounds) DO UPDATE SET
           requests = excluded.requests, latency_sum_us = excluded.latency_sum_us, buckets = excluded.buckets`,
      ),
      minutesOf: db.prepare<[string, number, number], MinuteRow>(
        `SELECT service, lane, route, direction, source, status_class, grpc_status, bounds, requests, latency_sum_us, buckets
           FROM traffic_minutes WHERE grp = ? AND minute >= ? AND minute < ?`,
      ),
      pruneMinutes: db.prepare("DELETE FROM traffic_minutes WHERE minute < ?"),
      pruneLast: db.prepare(
        "DELETE FROM traffic_last WHERE instance_id IN (SELECT instance_id FROM traffic_instances WHERE last_seen < ?)",
      ),
      pruneInstances: db.prepare("DELETE FROM traffic_instances WHERE last_seen < ?"),
    };
  }

  /** `fn` as one transaction. */
  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
    return this.db.transaction(fn);
  }

  /** An instance's stored state: its last sequence and the last values per counter key. */
  loadInstance(instanceId: string): StoredInstance | undefined {
    const row = this.stmt.instance.get(instanceId);
    if (!row) return undefined;
    const last = new Map<string, LastCounts>();
    if (row.last_counts !== null) {
      for (const [boundsKey, byKey] of Object.entries(JSON.parse(row.last_counts) as PackedCounts)) {
        for (const [k, [requests, sumUs, ...buckets]] of Object.entries(byKey)) last.set(k, { requests, sumUs, boundsKey, buckets });
      }
      return { sequence: row.last_sequence, firstSeen: row.first_seen, last, legacy: false };
    }
    for (const r of this.stmt.legacyLast.all(instanceId)) {
      last.set(r.counter_key, { requests: r.requests, sumUs: r.latency_sum_us, boundsKey: r.bounds, buckets: JSON.parse(r.buckets) as number[] });
    }
    return { sequence: row.last_sequence, firstSeen: row.first_seen, last, legacy: true };
  }

  /** Writes an instance's state (one row); its per-counter rows of an older version go. */
  saveInstance(instanceId: string, nodeId: string, s: StoredInstance, now: number): void {
    const packed: PackedCounts = {};
    for (const [k, v] of s.last) (packed[v.boundsKey] ??= {})[k] = [v.requests, v.sumUs, ...v.buckets];
    this.stmt.upsertInstance.run(instanceId, nodeId, s.sequence, s.firstSeen, now, JSON.stringify(packed));
    if (s.legacy) {
      this.stmt.dropLegacyLast.run(instanceId);
      s.legacy = false;
    }
  }

  /** Adds a delta to its minute's rollup row. */
  addToMinute(minute: number, d: Delta, boundsKey: string): void {
    const params = [d.group, minute, d.service, d.lane, d.route, d.direction, d.source, d.statusClass, d.grpcStatus, boundsKey];
    const row = this.stmt.minute.get(...params);
    const buckets = row ? addArrays(JSON.parse(row.buckets) as number[], d.buckets) : d.buckets;
    this.stmt.upsertMinute.run(...params, (row?.requests ?? 0) + d.requests, (row?.latency_sum_us ?? 0) + d.sumUs, JSON.stringify(buckets));
  }

  /** The rollup rows of `group` in the minutes [fromMinute, toMinute). */
  minutes(group: string, fromMinute: number, toMinute: number): RollupRow[] {
    return this.stmt.minutesOf.all(group, fromMinute, toMinute).map((r) => ({
      service: r.service,
      lane: r.lane,
      route: r.route,
      direction: r.direction,
      source: r.source,
      statusClass: r.status_class,
      grpcStatus: r.grpc_status,
      boundsKey: r.bounds,
      requests: r.requests,
      latencySumUs: r.latency_sum_us,
      buckets: JSON.parse(r.buckets) as number[],
    }));
  }

  /** Deletes rollups before `minute` (undefined: none) and instances last seen before `seenBefore`. */
  prune(minute: number | undefined, seenBefore: number): void {
    if (minute !== undefined) this.stmt.pruneMinutes.run(minute);
    this.stmt.pruneLast.run(seenBefore);
    this.stmt.pruneInstances.run(seenBefore);
  }
}
