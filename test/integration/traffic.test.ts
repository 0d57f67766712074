// Traffic.Report ingestion: cumulative counters → exact totals, windows, shares, percentiles.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import * as grpc from "@grpc/grpc-js";
import { create, toBinary } from "@bufbuild/protobuf";
import { Registry } from "prom-client";
import {
  Direction,
  DecisionSource,
  TrafficReportSchema,
  type TrafficReport,
} from "../../control-plane/src/generated/graylane/v1/traffic_pb.js";
import { IngestBehindError, TrafficIngest, quantile } from "../../control-plane/src/traffic/index.js";
import { GraylaneClient, startGrpcServer } from "../../control-plane/src/xds/index.js";
import { MemoryRuleSource, mockGroup } from "../support/rulesource.js";

const BOUNDS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

interface C {
  lane: string;
  service: string;
  direction?: Direction;
  route?: string;
  source?: DecisionSource;
  status?: number;
  requests: number;
  /** Bucket counts (padded with zeros to 14). */
  buckets?: number[];
  sumUs?: number;
}

function report(instanceId: string, sequence: number, counters: C[], group = "mock"): TrafficReport {
  return create(TrafficReportSchema, {
    instanceId,
    sequence: BigInt(sequence),
    nodeId: `node-of-${instanceId}`,
    latencyBoundsMs: BOUNDS,
    counters: counters.map((c) => {
      const buckets = [...(c.buckets ?? [c.requests]), ...new Array(14).fill(0)].slice(0, 14);
      return {
        group,
        lane: c.lane,
        route: c.route ?? c.lane,
        service: c.service,
        direction: c.direction ?? Direction.INBOUND,
        source: c.source ?? DecisionSource.WEIGHT,
        statusClass: c.status ?? 2,
        requests: BigInt(c.requests),
        latencyBuckets: buckets.map(BigInt),
        latencySumUs: BigInt(c.sumUs ?? c.requests * 700),
      };
    }),
  });
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function dbFile(): string {
  const d = mkdtempSync(join(tmpdir(), "graylane-traffic-"));
  dirs.push(d);
  return join(d, "traffic.db");
}
function open(file: string, now?: () => number, rules?: MemoryRuleSource) {
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  return { db, ingest: new TrafficIngest({ db, now, rules }) };
}

/** requests per "service/lane/status" of the totals. */
function byKey(ingest: TrafficIngest, group = "mock"): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of ingest.totals(group)) out[`${t.service}/${t.lane}/${t.statusClass}`] = (out[`${t.service}/${t.lane}/${t.statusClass}`] ?? 0) + t.requests;
  return out;
}

describe("TrafficIngest: cumulative reports to exact totals", () => {
  it("duplicated, lost, reordered reports, a filter restart and a control-plane restart", () => {
    const file = dbFile();
    let { db, ingest } = open(file);
    const A = "filter-a-1";

    // seq 1..5 of instance A (cumulative): the truth at seq 5 is what must be counted.
    const a = (seq: number, base: number, canary: number, errors: number, extra?: C) =>
      report(A, seq, [
        { lane: "base", service: "mocka", requests: base, buckets: [0, base], sumUs: base * 1500 },
        { lane: "canary", service: "mocka", requests: canary, buckets: [0, 0, canary] },
        { lane: "canary", service: "mocka", status: 5, requests: errors },
        ...(extra ? [extra] : []),
      ]);
    expect(ingest.report(a(1, 10, 1, 0))).toMatchObject({ accepted: true });
    expect(ingest.report(a(2, 25, 3, 1))).toMatchObject({ accepted: true });
    expect(ingest.report(a(2, 25, 3, 1))).toMatchObject({ accepted: false, reason: "duplicate" });
    // seq 3 is lost for now; seq 4 covers it.
    expect(ingest.report(a(4, 60, 7, 2))).toMatchObject({ accepted: true });
    // ... and arrives late: reordered, ignored entirely.
    expect(ingest.report(a(3, 40, 5, 1))).toMatchObject({ accepted: false, reason: "stale" });
    expect(byKey(ingest)).toEqual({ "mocka/base/2": 60, "mocka/canary/2": 7, "mocka/canary/5": 2 });

    // Control-plane restart between reports: the same db file, a new process state.
    db.close();
    ({ db, ingest } = open(file));
    expect(byKey(ingest)).toEqual({ "mocka/base/2": 60, "mocka/canary/2": 7, "mocka/canary/5": 2 });
    // A counter key first seen now counts from 0.
    expect(ingest.report(a(5, 70, 9, 2, { lane: "base", service: "mockb", requests: 4 }))).toMatchObject({ accepted: true });
    expect(ingest.report(a(4, 60, 7, 2))).toMatchObject({ accepted: false }); // repeated after restart
    expect(byKey(ingest)).toEqual({ "mocka/base/2": 70, "mocka/canary/2": 9, "mocka/canary/5": 2, "mockb/base/2": 4 });

    // Filter restart: a new instance id counting from zero (and a sequence restarting at 1).
    const B = "filter-a-2";
    expect(ingest.report(report(B, 1, [{ lane: "base", service: "mocka", requests: 3, buckets: [0, 3], sumUs: 4500 }]))).toMatchObject({ accepted: true });
    // The old instance's last report arrives after the restart: still counted exactly once.
    expect(ingest.report(a(6, 71, 9, 2, { lane: "base", service: "mockb", requests: 4 }))).toMatchObject({ accepted: true });
    expect(ingest.report(report(B, 2, [{ lane: "base", service: "mocka", requests: 8, buckets: [0, 8], sumUs: 12000 }]))).toMatchObject({ accepted: true });
    expect(ingest.report(report(B, 2, [{ lane: "base", service: "mocka", requests: 8, buckets: [0, 8], sumUs: 12000 }]))).toMatchObject({ accepted: false });

    const totals = ingest.totals("mock");
    expect(byKey(ingest)).toEqual({ "mocka/base/2": 71 + 8, "mocka/canary/2": 9, "mocka/canary/5": 2, "mockb/base/2": 4 });
    const base = totals.find((t) => t.service === "mocka" && t.lane === "base")!;
    expect(base.buckets.slice(0, 3)).toEqual([0, 79, 0]);
    expect(base.latencySumUs).toBe(71 * 1500 + 12000);
    expect(base.bounds).toEqual(BOUNDS);
    db.close();

    // And once more after another restart, nothing moved.
    ({ db, ingest } = open(file));
    expect(byKey(ingest)).toEqual({ "mocka/base/2": 79, "mocka/canary/2": 9, "mocka/canary/5": 2, "mockb/base/2": 4 });
    db.close();
  });

  it("gRPC statuses: counted per status, kept over a restart; a database from before them (and from before one row per instance) is upgraded with its counts and last values", () => {
    const file = dbFile();
    // The tables as a control plane before gRPC statuses wrote them, with one report's state.
    const old = new Database(file);
    old.exec(`
      CREATE TABLE traffic_instances (instance_id TEXT PRIMARY KEY, node_id TEXT NOT NULL, last_sequence INTEGER NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL);
      CREATE TABLE traffic_last (instance_id TEXT NOT NULL, counter_key TEXT NOT NULL, requests INTEGER NOT NULL, latency_sum_us INTEGER NOT NULL,
        bounds TEXT NOT NULL, buckets TEXT NOT NULL, PRIMARY KEY (instance_id, counter_key)) WITHOUT ROWID;
      CREATE TABLE traffic_minutes (grp TEXT NOT NULL, minute INTEGER NOT NULL, service TEXT NOT NULL, lane TEXT NOT NULL, route TEXT NOT NULL,
        direction INTEGER NOT NULL, source INTEGER NOT NULL, status_class INTEGER NOT NULL, bounds TEXT NOT NULL, requests INTEGER NOT NULL,
        latency_sum_us INTEGER NOT NULL, buckets TEXT NOT NULL,
        PRIMARY KEY (grp, minute, service, lane, route, direction, source, status_class, bounds)) WITHOUT ROWID;
      CREATE INDEX traffic_minutes_by_minute ON traffic_minutes (minute);`);
    const bk = JSON.stringify(BOUNDS);
    const buckets = JSON.stringify([5, ...new Array(13).fill(0)]);
    old.prepare("INSERT INTO traffic_instances VALUES ('filter-g', 'n', 1, 0, ?)").run(Date.now());
    old.prepare("INSERT INTO traffic_last VALUES ('filter-g', ?, 5, 3500, ?, ?)").run(JSON.stringify(["mock", "base", "base", "mocka", 1, 6, 2]), bk, buckets);
    old.prepare("INSERT INTO traffic_minutes VALUES ('mock', ?, 'mocka', 'base', 'base', 1, 6, 2, ?, 5, 3500, ?)").run(Math.floor(Date.now() / 60_000) - 1, bk, buckets);
    old.close();

    let { db, ingest } = open(file);
    expect(byKey(ingest)).toEqual({ "mocka/base/2": 5 });
    // The instance's next cumulative report: the HTTP counter's delta is taken against the old row.
    const grpcReport = (seq: number, ok: number, unavailable: number) => {
      const r = report("filter-g", seq, [{ lane: "base", service: "mocka", requests: 8 }, { lane: "canary", service: "mocka", requests: ok }, { lane: "canary", service: "mocka", status: 5, requests: unavailable }]);
      r.counters[1]!.grpcStatus = 0;
      r.counters[2]!.grpcStatus = 14;
      return r;
    };
    expect(ingest.report(grpcReport(2, 7, 3))).toMatchObject({ accepted: true });
    // Its last values moved into its instance row (one row per report, not one per counter).
    expect(db.prepare("SELECT count(*) AS n FROM traffic_last WHERE instance_id = 'filter-g'").get()).toEqual({ n: 0 });
    expect(Object.keys(Object.values(JSON.parse((db.prepare("SELECT last_counts FROM traffic_instances WHERE instance_id = 'filter-g'").get() as { last_counts: string }).last_counts))[0] as object)).toHaveLength(3);
    const grpcOf = (i: TrafficIngest) => i.totals("mock").filter((t) => t.lane === "canary").map((t) => [t.grpcStatus, t.statusClass, t.requests]);
    expect(byKey(ingest)).toEqual({ "mocka/base/2": 8, "mocka/canary/2": 7, "mocka/canary/5": 3 });
    expect(grpcOf(ingest)).toEqual([[0, 2, 7], [14, 5, 3]]);
    expect(ingest.totals("mock").find((t) => t.lane === "base")!.grpcStatus).toBe(-1);
    db.close();
    ({ db, ingest } = open(file));
    expect(ingest.report(grpcReport(3, 9, 4))).toMatchObject({ accepted: true });
    expect(grpcOf(ingest)).toEqual([[0, 2, 9], [14, 5, 4]]);
    db.close();
  });

  it("submit(): reports arriving together share one transaction and are answered once it committed; beyond maxQueue they are refused, and the next report covers them", async () => {
    const file = dbFile();
    const db = new Database(file);
    db.pragma("journal_mode = WAL");
    const ingest = new TrafficIngest({ db, batchDelayMs: 50, maxQueue: 3 });
    const seen = () => (db.prepare("SELECT count(*) AS n FROM traffic_instances").get() as { n: number }).n;
    const bytes = (id: string, seq: number, n: number) => toBinary(TrafficReportSchema, report(id, seq, [{ lane: "canary", service: "mocka", requests: n }]));
    const answers = [ingest.submit(bytes("f-1", 1, 10)), ingest.submit(bytes("f-2", 1, 20)), ingest.submit(bytes("f-3", 1, 30))];
    expect(seen()).toBe(0); // queued, not yet written
    await expect(ingest.submit(bytes("f-4", 1, 40))).rejects.toThrow(IngestBehindError);
    expect((await Promise.all(answers)).map((r) => [r.instanceId, r.accepted])).toEqual([["f-1", true], ["f-2", true], ["f-3", true]]);
    expect(seen()).toBe(3);
    // f-4's refused report is covered by its next one (cumulative): nothing is lost.
    expect(await ingest.submit(bytes("f-4", 2, 45))).toMatchObject({ accepted: true });
    expect(byKey(ingest)).toEqual({ "mocka/canary/2": 105 });
    // A report that does not decode is refused at once, and changes nothing.
    expect(() => ingest.submit(Buffer.from([0x0a, 0x05, 0x61]))).toThrow(/truncated|past the end/);
    expect(byKey(ingest)).toEqual({ "mocka/canary/2": 105 });
    db.close();
  });

  it("baselineUnknownInstances: a later report of an instance never seen here sets its starting point; its first report counts", () => {
    const db = new Database(dbFile());
    const ingest = new TrafficIngest({ db, baselineUnknownInstances: true });
    // A filter that reported to another replica for a while: its history is not this minute's traffic.
    expect(ingest.report(report("old-filter", 40, [{ lane: "base", service: "mocka", requests: 5000 }]))).toMatchObject({ accepted: true, counters: 0 });
    expect(ingest.report(report("old-filter", 41, [{ lane: "base", service: "mocka", requests: 5012 }]))).toMatchObject({ accepted: true });
    // A filter that starts now: its first report is counted whole.
    expect(ingest.report(report("new-filter", 1, [{ lane: "base", service: "mocka", requests: 7 }]))).toMatchObject({ accepted: true });
    expect(byKey(ingest)).toEqual({ "mocka/base/2": 12 + 7 });
    db.close();
  });

  it("random delivery (drops, duplicates, reordering, restarts of both sides) gives exact totals", () => {
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const file = dbFile();
    let { db, ingest } = open(file);
    const keys: Array<Omit<C, "requests">> = [
      { lane: "base", service: "mocka" },
      { lane: "canary", service: "mocka" },
      { lane: "canary", service: "mocka", status: 5 },
      { lane: "canary", service: "mockb", route: "base" },
      { lane: "base", service: "mockb", direction: Direction.EDGE, source: DecisionSource.BASE },
    ];
    // 3 filter lives (instance ids), each with 30 cumulative reports.
    const sent: TrafficReport[] = [];
    const truth: Record<string, number> = {};
    for (const inst of ["x-1", "x-2", "y-1"]) {
      const cum = keys.map(() => 0);
      for (let seq = 1; seq <= 30; seq++) {
        keys.forEach((_, i) => {
          if (rand() < 0.7) cum[i]! += Math.floor(rand() * 20);
        });
        sent.push(report(inst, seq, keys.map((k, i) => ({ ...k, requests: cum[i]! })).filter((c) => c.requests > 0)));
      }
      keys.forEach((k, i) => {
        const key = `${k.service}/${k.lane}/${k.status ?? 2}`;
        if (cum[i]! > 0) truth[key] = (truth[key] ?? 0) + cum[i]!;
      });
    }
    // Deliver: each report 0-3 times (the last of each instance at least once), shuffled locally.
    const deliveries: TrafficReport[] = [];
    for (const r of sent) {
      const last = r.sequence === 30n;
      const times = last ? 1 + Math.floor(rand() * 2) : Math.floor(rand() * 4);
      for (let t = 0; t < times; t++) deliveries.push(r);
    }
    for (let i = deliveries.length - 1; i > 0; i--) {
      const j = Math.max(0, i - Math.floor(rand() * 8));
      [deliveries[i], deliveries[j]] = [deliveries[j]!, deliveries[i]!];
    }
    let restarts = 0;
    for (const r of deliveries) {
      if (rand() < 0.05) {
        db.close();
        ({ db, ingest } = open(file));
        restarts++;
      }
      ingest.report(r);
    }
    expect(restarts).toBeGreaterThan(2);
    expect(byKey(ingest)).toEqual(truth);
    db.close();
  });
});

describe("TrafficIngest.summary", () => {
  it("per service and lane, inbound: observed vs configured share, error rate, p50/p99, edge decisions, windows", () => {
    const file = dbFile();
    let t = Date.UTC(2025, 0, 1, 12, 0, 0);
    const now = () => t;
    const rules = new MemoryRuleSource([mockGroup(10)]);
    let { db, ingest } = open(file, now, rules);

    // Two minutes ago: 1000 base requests at mocka (outside a 60 s window).
    ingest.report(report("f-1", 1, [{ lane: "base", service: "mocka", requests: 1000, buckets: [1000] }]));
    t += 120_000;
    // Now: cumulative values add 900 base (1-2 ms and 2-5 ms), 100 canary (10-25 ms) of which 10 5xx.
    ingest.report(
      report("f-1", 2, [
        { lane: "base", service: "mocka", requests: 1900, buckets: [1000, 450, 450] },
        { lane: "canary", service: "mocka", requests: 90, buckets: [0, 0, 0, 0, 90] },
        { lane: "canary", service: "mocka", status: 5, requests: 10, buckets: [0, 0, 0, 0, 10] },
        // The outbound side and other directions are not counted as the service's traffic.
        { lane: "canary", service: "mocka", direction: Direction.OUTBOUND, requests: 5000 },
        { lane: "base", service: "mocka", direction: Direction.EDGE, source: DecisionSource.WEIGHT, requests: 900 },
        { lane: "canary", service: "mocka", direction: Direction.EDGE, source: DecisionSource.WEIGHT, requests: 100 },
      ]),
    );

    const s = ingest.summary("mock", 60_000);
    expect(s.group).toBe("mock");
    expect(s.windowMs).toBe(60_000);
    const row = (service: string, lane: string) => s.services.find((r) => r.service === service && r.lane === lane)!;
    expect(row("mocka", "base")).toEqual({
      service: "mocka",
      lane: "base",
      requests: 900,
      observedShare: 0.9,
      configuredShare: 0.9,
      errorRate: 0,
      grpcStatuses: {},
      p50Ms: 2, // 450th of 900: the top of the 1-2 ms bucket
      p99Ms: 4.94, // 891st: 441 of 450 into 2-5 ms → 2 + 3 × 0.98
    });
    expect(row("mocka", "canary")).toEqual({
      service: "mocka",
      lane: "canary",
      requests: 100,
      observedShare: 0.1,
      configuredShare: 0.1,
      errorRate: 0.1,
      grpcStatuses: {},
      p50Ms: 17.5, // 10 + 15 × 0.5
      p99Ms: 24.85, // 10 + 15 × 0.99
    });
    // Every configured service × lane has a row, with no traffic.
    expect(row("mockb", "canary")).toMatchObject({ requests: 0, observedShare: 0, configuredShare: 0.1, p50Ms: null, p99Ms: null });
    expect(s.services.map((r) => `${r.service}/${r.lane}`)).toEqual([
      "mocka/base", "mocka/canary", "mockb/base", "mockb/canary", "mockc/base", "mockc/canary",
    ]);
    expect(s.edge).toEqual([{ lane: "base", requests: 900 }, { lane: "canary", requests: 100 }]);

    // A 5-minute window includes the older report; configured shares follow the rules.
    rules.put(mockGroup(25.5));
    const wide = ingest.summary("mock", 300_000);
    const base = wide.services.find((r) => r.service === "mocka" && r.lane === "base")!;
    expect(base.requests).toBe(1900);
    expect(base.configuredShare).toBeCloseTo(0.745, 10);
    expect(base.observedShare).toBeCloseTo(1900 / 2000, 10);

    // The window moves on.
    t += 61_000;
    expect(ingest.summary("mock", 60_000).services.every((r) => r.requests === 0)).toBe(true);

    // Control-plane restart: older windows come from the minute rollups.
    db.close();
    ({ db, ingest } = open(file, now, rules));
    const after = ingest.summary("mock", 600_000);
    expect(after.services.find((r) => r.service === "mocka" && r.lane === "base")!.requests).toBe(1900);
    expect(after.services.find((r) => r.service === "mocka" && r.lane === "canary")).toMatchObject({ requests: 100, errorRate: 0.1, p50Ms: 17.5 });
    expect(after.edge).toEqual([{ lane: "base", requests: 900 }, { lane: "canary", requests: 100 }]);
    // A report after the restart lands in memory and adds up with the rollups without double counting.
    ingest.report(report("f-1", 3, [{ lane: "base", service: "mocka", requests: 1950, buckets: [1000, 500, 450] }]));
    expect(ingest.summary("mock", 600_000).services.find((r) => r.service === "mocka" && r.lane === "base")!.requests).toBe(1950);
    t += 90_000; // now the memory covers a whole minute since the restart as well
    ingest.report(report("f-1", 4, [{ lane: "base", service: "mocka", requests: 1960, buckets: [1000, 510, 450] }]));
    expect(ingest.summary("mock", 900_000).services.find((r) => r.service === "mocka" && r.lane === "base")!.requests).toBe(1960);
    expect(ingest.summary("mock", 30_000).services.find((r) => r.service === "mocka" && r.lane === "base")!.requests).toBe(10);
    db.close();
  });

  it("quantiles interpolate within buckets; the unbounded bucket reports the largest bound", () => {
    expect(quantile([{ bounds: [10, 20], counts: [0, 0, 0] }], 0.5)).toBeNull();
    expect(quantile([{ bounds: [10, 20], counts: [10, 0, 0] }], 0.5)).toBe(5);
    expect(quantile([{ bounds: [10, 20], counts: [0, 10, 0] }], 0.1)).toBe(11);
    expect(quantile([{ bounds: [10, 20], counts: [0, 0, 10] }], 0.99)).toBe(20);
    expect(quantile([{ bounds: [10, 20], counts: [50, 0, 50] }], 0.99)).toBe(20);
    // Histograms with different bounds merge.
    expect(quantile([{ bounds: [10], counts: [10, 0] }, { bounds: [5, 10], counts: [10, 0, 0] }], 0.5)).toBeCloseTo(10 / 3, 10);
  });
});

describe("Traffic.Report over gRPC", () => {
  it("answers with the sequence, ingests, and refuses a report without instance id", async () => {
    const db = new Database(dbFile());
    const ingest = new TrafficIngest({ db });
    const rules = new MemoryRuleSource([mockGroup(10)]);
    const registry = new Registry();
    const server = await startGrpcServer({ port: 0, rules, traffic: ingest, registry });
    const client = new GraylaneClient(`127.0.0.1:${server.port}`);
    try {
      const ack = await client.report(report("g-1", 7, [{ lane: "canary", service: "mocka", requests: 12 }]));
      expect(ack.sequence).toBe(7n);
      await client.report(report("g-1", 7, [{ lane: "canary", service: "mocka", requests: 12 }])); // duplicate: acked, ignored
      expect(ingest.totals("mock").map((x) => x.requests)).toEqual([12]);
      const err = await client.report(report("", 1, [])).catch((e: grpc.ServiceError) => e);
      expect((err as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(await registry.getSingleMetricAsString("graylane_traffic_reports_total")).toContain('result="ok"} 2');
    } finally {
      client.close();
      await server.close();
      db.close();
    }
  });
});
