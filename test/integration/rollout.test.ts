// The release engine on a real SQLite store and the real traffic ingest, with a manual clock: steps,
// approval gates, analysis verdicts (pass, fail → rollback, inconclusive → deadline), operations,
// webhooks, the Prometheus provider, and a restart that resumes the same step with the same timers.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { DecisionSource, Direction, TrafficReportSchema } from "../../control-plane/src/generated/graylane/v1/traffic_pb.js";
import { ReleaseEngine, SqliteReleaseStore, parseRelease, type Release } from "../../control-plane/src/rollout/index.js";
import { ReleaseSchema } from "../../control-plane/src/rollout/state.js";
import { SqliteStore } from "../../control-plane/src/store/index.js";
import { TrafficIngest } from "../../control-plane/src/traffic/index.js";

const demoGroup = JSON.parse(readFileSync("demo/lanegroup.json", "utf8"));
const BOUNDS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/** Stands in for the mocka filters: cumulative counters per (lane, status class), reported like the filter does. */
class Counters {
  private seq = 0;
  private readonly c = new Map<string, { lane: string; status: number; requests: number; bucket: number }>();
  constructor(private readonly ingest: TrafficIngest) {}
  add(lane: string, requests: number, opts: { errors?: number; bucket?: number } = {}): void {
    const bucket = opts.bucket ?? 2; // 2-5 ms
    const bump = (status: number, n: number) => {
      const k = `${lane}/${status}/${bucket}`;
      const e = this.c.get(k) ?? { lane, status, requests: 0, bucket };
      e.requests += n;
      this.c.set(k, e);
    };
    const errors = opts.errors ?? 0;
    if (requests - errors > 0) bump(2, requests - errors);
    if (errors > 0) bump(5, errors);
    this.report();
  }
  report(): void {
    this.ingest.report(create(TrafficReportSchema, {
      instanceId: "mocka-1", nodeId: "mocka-1", sequence: BigInt(++this.seq), latencyBoundsMs: BOUNDS,
      counters: [...this.c.values()].map((e) => ({
        group: "mock", lane: e.lane, route: e.lane, service: "mocka", direction: Direction.INBOUND, source: DecisionSource.WEIGHT,
        statusClass: e.status, requests: BigInt(e.requests), latencySumUs: BigInt(e.requests * 3000),
        latencyBuckets: Array.from({ length: 14 }, (_, i) => BigInt(i === e.bucket ? e.requests : 0)),
      })),
    }));
  }
}

interface World {
  store: SqliteStore;
  engine: ReleaseEngine;
  traffic: Counters;
  clock: { now: number };
  path: string;
  restart(): World;
}

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

function world(path?: string, clock = { now: Date.parse("2026-11-23T12:00:00Z") }): World {
  if (!path) {
    const dir = mkdtempSync(join(tmpdir(), "graylane-rollout-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    path = join(dir, "graylane.db");
  }
  const store = new SqliteStore(path, { now: () => new Date(clock.now) });
  if (!store.get("mock")) store.put(demoGroup, { actor: "test" });
  const ingest = new TrafficIngest({ db: store.database, rules: store, now: () => clock.now });
  // Every release the engine stores, in every state these tests reach, has the shape the API documents
  // (rollout/state.ts's schema, from which the Release type and the OpenAPI schema derive).
  const releases = new SqliteReleaseStore(store.database);
  const save = releases.save.bind(releases);
  releases.save = (r: Release) => {
    const fits = ReleaseSchema.safeParse(JSON.parse(JSON.stringify(r)));
    if (!fits.success) throw new Error(`release ${r.name} (${r.status}) breaks its schema: ${JSON.stringify(fits.error.issues)}`);
    return save(r);
  };
  const engine = new ReleaseEngine({ store, releases, traffic: ingest, now: () => clock.now });
  let closed = false;
  const close = async () => { if (closed) return; closed = true; await engine.stop(); store.close(); };
  cleanups.push(close);
  const w: World = {
    store, engine, traffic: new Counters(ingest), clock, path,
    restart: () => { void close(); return world(path, clock); },
  };
  return w;
}

const lane = (w: World) => w.store.get("mock")!.lanegroup.lanes.find((l) => l.name === "canary")!;
async function advance(w: World, ms: number): Promise<Release> {
  w.clock.now += ms;
  await w.engine.poll();
  return w.engine.get("r1")!;
}
const analysis = { interval: "10s", count: 2, failureLimit: 1, minRequests: 20, deadline: "60s", metrics: [{ name: "error-rate", max: 0.05 }, { name: "p99-latency", maxMs: 100 }] };

describe("release spec", () => {
  it("defaults: canary 10% → approval → 50% → approval → 100%; blue-green 0 → approval → 100", () => {
    const c = parseRelease({ name: "r1", group: "mock", lane: "canary" });
    expect(c.ok && c.value.steps).toEqual([{ setWeight: 10 }, { pause: {} }, { setWeight: 50 }, { pause: {} }, { setWeight: 100 }]);
    expect(c.ok && c.value.analysis).toMatchObject({ interval: "1m", intervalMs: 60_000, failureLimit: 1, onInconclusive: "abort" });
    const b = parseRelease({ name: "r1", group: "mock", lane: "canary", strategy: "blueGreen" });
    expect(b.ok && b.value.steps).toEqual([{ setWeight: 0 }, { pause: {} }, { setWeight: 100 }]);
  });

  it("bad input is refused whole with JSON paths, and nothing starts", async () => {
    const w = world();
    const bad = { name: "R1", group: "mock", lane: "canary", steps: [{ setWeight: 120 }, { pause: { duration: "soon" } }, { jump: 1 }], analysis: { interval: "x" } };
    await expect(w.engine.create(bad, "t")).rejects.toMatchObject({ status: 400 });
    const errs = await w.engine.create(bad, "t").catch((e) => e.errors.map((x: { path: string }) => x.path));
    expect(errs).toEqual(expect.arrayContaining(["/name", "/steps/0/setWeight", "/steps/1/pause/duration", "/steps/2", "/analysis/interval"]));
    // against the group: an unknown lane, a match the group would refuse, weights over 100
    await expect(w.engine.create({ name: "r1", group: "mock", lane: "nope" }, "t")).rejects.toMatchObject({ status: 400, errors: [{ path: "/lane" }] });
    const m = await w.engine.create({ name: "r1", group: "mock", lane: "canary", steps: [{ setMatch: [{ headers: { "bad header": { exact: "x" } } }] }] }, "t").catch((e) => e.errors);
    expect(m).toEqual([expect.objectContaining({ path: "/steps/0/setMatch/0/headers/bad header" })]);
    w.store.put({ ...demoGroup, lanes: [...demoGroup.lanes, { name: "other", weight: 60 }] }, { actor: "t" });
    const s = await w.engine.create({ name: "r1", group: "mock", lane: "canary", steps: [{ setWeight: 50 }] }, "t").catch((e) => e.errors);
    expect(s).toEqual([expect.objectContaining({ path: "/steps/0/setWeight", message: expect.stringContaining("more than 100") })]);
    expect(w.engine.list()).toEqual([]);
    expect(lane(w).weight).toBe(0);
  });
});

describe("release engine", () => {
  it("canary by default: each step is a revision by the release; approvals gate; finish empties the lane", async () => {
    const w = world();
    let r = await w.engine.create({ name: "r1", group: "mock", lane: "canary" }, "alice");
    expect(r).toMatchObject({ status: "paused", currentStep: 1, weight: 10, pause: { reason: "approval" } });
    expect(lane(w).weight).toBe(10);
    expect(w.store.revisions({ limit: 1 })[0]).toMatchObject({ actor: "release/r1", op: "replace" });
    r = await advance(w, 3_600_000); // an approval pause waits for ever
    expect(r).toMatchObject({ status: "paused", currentStep: 1 });
    r = await w.engine.operate("r1", "approve", "bob");
    expect(r).toMatchObject({ status: "paused", currentStep: 3, weight: 50 });
    await expect(w.engine.operate("r1", "finish", "bob")).rejects.toMatchObject({ status: 409 });
    r = await w.engine.operate("r1", "approve", "bob");
    expect(r).toMatchObject({ status: "promoted", currentStep: 5, weight: 100 });
    expect(lane(w).weight).toBe(100);
    r = await w.engine.operate("r1", "finish", "bob");
    expect(r).toMatchObject({ status: "finished", weight: 0 });
    expect(lane(w)).toMatchObject({ weight: 0, match: [] });
    expect(w.store.revisions().filter((x) => x.actor === "release/r1").length).toBe(4); // 10, 50, 100, 0
    expect(r.events.map((e) => e.type)).toEqual(["created", "step", "paused", "approved", "step", "paused", "approved", "step", "promoted", "finished"]);
    // a second release may now use the lane
    await expect(w.engine.create({ name: "r2", group: "mock", lane: "canary" }, "alice")).resolves.toMatchObject({ weight: 10 });
  });

  it("one active release per lane", async () => {
    const w = world();
    await w.engine.create({ name: "r1", group: "mock", lane: "canary" }, "a");
    await expect(w.engine.create({ name: "r2", group: "mock", lane: "canary" }, "a")).rejects.toMatchObject({ status: 409, errors: [{ path: "/lane" }] });
    await expect(w.engine.create({ name: "r1", group: "mock", lane: "canary" }, "a")).rejects.toMatchObject({ status: 409, errors: [{ path: "/name" }] });
  });

  it("a timed pause runs out; a manual pause holds it until resumed", async () => {
    const w = world();
    let r = await w.engine.create({ name: "r1", group: "mock", lane: "canary", steps: [{ setWeight: 20 }, { pause: { duration: "30s" } }, { setWeight: 40 }, { pause: { duration: "30s" } }, { setWeight: 60 }] }, "a");
    expect(r).toMatchObject({ status: "paused", weight: 20, pause: { reason: "duration" } });
    r = await advance(w, 29_000);
    expect(r.weight).toBe(20);
    r = await advance(w, 1_000);
    expect(r).toMatchObject({ weight: 40, currentStep: 3, pause: { reason: "duration" } });
    r = await w.engine.operate("r1", "pause", "ops");
    expect(r).toMatchObject({ status: "paused", pause: { reason: "manual" } });
    await expect(w.engine.operate("r1", "approve", "ops")).rejects.toMatchObject({ status: 409 });
    r = await advance(w, 120_000);
    expect(r).toMatchObject({ weight: 40, pause: { reason: "manual" } });
    r = await w.engine.operate("r1", "resume", "ops");
    // the interrupted timed pause is back and already over
    expect(r).toMatchObject({ status: "promoted", weight: 100 });
  });

  it("analysis: healthy traffic passes and the release goes on", async () => {
    const w = world();
    let r = await w.engine.create({ name: "r1", group: "mock", lane: "canary", steps: [{ setWeight: 50 }, { analysis: {} }, { setWeight: 80 }], analysis }, "a");
    expect(r).toMatchObject({ status: "progressing", currentStep: 1, analysisRun: { step: 1, successes: 0 } });
    for (let i = 0; i < 2; i++) {
      w.traffic.add("canary", 100);
      w.traffic.add("base", 100);
      r = await advance(w, 10_000);
    }
    expect(r.analysisRun).toMatchObject({ successes: 2, failures: 0 });
    expect(r.analysisRun!.intervals[0]).toMatchObject({ verdict: "pass", requests: 100, baseRequests: 100 });
    expect(r.analysisRun!.intervals[0]!.metrics.map((m) => [m.name, m.value, m.verdict])).toEqual([["error-rate", 0, "pass"], ["p99-latency", 4.97, "pass"]]);
    expect(r).toMatchObject({ status: "promoted", weight: 100 });
  });

  it("analysis: 30% errors roll back to 0% at the second failing interval, and say why", async () => {
    const w = world();
    let r = await w.engine.create({ name: "r1", group: "mock", lane: "canary", steps: [{ setWeight: 50 }, { analysis: {} }, { setWeight: 100 }], analysis }, "a");
    w.traffic.add("canary", 100, { errors: 30 });
    r = await advance(w, 10_000);
    expect(r).toMatchObject({ status: "progressing", weight: 50, analysisRun: { failures: 1 } });
    w.traffic.add("canary", 100, { errors: 30 });
    r = await advance(w, 10_000);
    expect(r).toMatchObject({ status: "failed", weight: 0 });
    expect(r.reason).toContain("error rate 30% > max 5%");
    expect(lane(w)).toMatchObject({ weight: 0, match: demoGroup.lanes[0].match }); // the header rule stays
  });

  it("analysis: slow answers fail on p99; relative to base when asked", async () => {
    const w = world();
    let r = await w.engine.create({ name: "r1", group: "mock", lane: "canary", steps: [{ setWeight: 50 }, { analysis: { failureLimit: 0, metrics: [{ name: "p99-latency", maxMs: 1000, maxAboveBaseMs: 50 }] } }], analysis }, "a");
    w.traffic.add("canary", 100, { bucket: 7 }); // 100-250 ms
    w.traffic.add("base", 100, { bucket: 3 }); //  5-10 ms
    r = await advance(w, 10_000);
    expect(r.status).toBe("failed");
    expect(r.reason).toMatch(/p99 248\.5 ms is 238\.55 ms above base 9\.95 ms \(max 50 ms\)/);
  });

  it("too little traffic is inconclusive, never a pass, until the deadline rolls it back (or pauses it)", async () => {
    const w = world();
    let r = await w.engine.create({ name: "r1", group: "mock", lane: "canary", steps: [{ setWeight: 10 }, { analysis: {} }, { setWeight: 100 }], analysis }, "a");
    for (let t = 0; t < 5; t++) {
      w.traffic.add("canary", 5);
      r = await advance(w, 10_000);
      expect(r).toMatchObject({ status: "progressing", weight: 10 });
    }
    expect(r.analysisRun).toMatchObject({ successes: 0, inconclusive: 5 });
    expect(r.analysisRun!.intervals[0]!.metrics[0]!.reason).toBe("5 lane requests, fewer than 20");
    r = await advance(w, 10_000);
    expect(r).toMatchObject({ status: "failed", weight: 0 });
    expect(r.reason).toContain("deadline 60s");

    const w2 = world();
    await w2.engine.create({ name: "r1", group: "mock", lane: "canary", steps: [{ setWeight: 10 }, { analysis: { onInconclusive: "pause" } }, { setWeight: 30 }], analysis }, "a");
    for (let t = 0; t < 6; t++) r = await advance(w2, 10_000);
    expect(r).toMatchObject({ status: "paused", weight: 10, pause: { reason: "inconclusive" } });
    r = await w2.engine.operate("r1", "approve", "lead");
    expect(r).toMatchObject({ status: "promoted", weight: 100 });
  });

  it("background analysis watches every step (Flagger-style)", async () => {
    const w = world();
    let r = await w.engine.create({ name: "r1", group: "mock", lane: "canary", analysis: { ...analysis, background: true, failureLimit: 0 } }, "a");
    expect(r).toMatchObject({ status: "paused", weight: 10 });
    w.traffic.add("canary", 50, { errors: 10 });
    r = await advance(w, 10_000); // starts the run
    w.traffic.add("canary", 50, { errors: 10 });
    r = await advance(w, 10_000);
    expect(r).toMatchObject({ status: "failed", weight: 0 });
    expect(r.reason).toContain("background analysis failed");
  });

  it("abort, promote and undo end where a user expects", async () => {
    const w = world();
    let r = await w.engine.create({ name: "r1", group: "mock", lane: "canary" }, "a");
    r = await w.engine.operate("r1", "abort", "ops");
    expect(r).toMatchObject({ status: "aborted", weight: 0, reason: "aborted by ops" });
    expect(lane(w).weight).toBe(0);
    await expect(w.engine.operate("r1", "approve", "ops")).rejects.toMatchObject({ status: 409 });

    // promote: straight to 100%, then finish
    await w.engine.create({ name: "r2", group: "mock", lane: "canary", steps: [{ setMatch: [{ headers: { beta: { exact: "1" } } }] }, { setWeight: 5 }, { pause: {} }, { setWeight: 50 }] }, "a");
    expect(lane(w)).toMatchObject({ weight: 5, match: [{ headers: { beta: { exact: "1" } } }] });
    r = await w.engine.operate("r2", "promote", "ops");
    expect(r).toMatchObject({ status: "promoted", weight: 100, currentStep: 4 });
    r = await w.engine.operate("r2", "finish", "ops");
    expect(lane(w)).toMatchObject({ weight: 0, match: [] });

    // undo of a later release: back to how the previous finished release (r2) left the lane
    w.clock.now += 1000;
    await w.engine.create({ name: "r3", group: "mock", lane: "canary", steps: [{ setMatch: [{ headers: { gamma: { present: true } } }] }, { setWeight: 30 }, { pause: {} }] }, "a");
    expect(lane(w)).toMatchObject({ weight: 30, match: [{ headers: { gamma: { present: true } } }] });
    r = await w.engine.operate("r3", "undo", "ops");
    expect(r).toMatchObject({ status: "undone" });
    expect(r.message).toContain("release r2");
    expect(lane(w)).toMatchObject({ weight: 0, match: [] });
    // with no earlier finished release, undo restores the lane as it was before the release
    const w2 = world();
    await w2.engine.create({ name: "r1", group: "mock", lane: "canary", steps: [{ setMatch: [] }, { setWeight: 30 }, { pause: {} }] }, "a");
    expect(lane(w2)).toMatchObject({ weight: 30, match: [] });
    await w2.engine.operate("r1", "undo", "ops");
    expect(lane(w2)).toMatchObject({ weight: 0, match: demoGroup.lanes[0].match });
  });

  it("blue-green: override traffic only, then everything at once, and an instant switch-back", async () => {
    const w = world();
    let r = await w.engine.create({ name: "r1", group: "mock", lane: "canary", strategy: "blueGreen" }, "a");
    expect(r).toMatchObject({ status: "paused", weight: 0, pause: { reason: "approval" } });
    r = await w.engine.operate("r1", "approve", "a");
    expect(r).toMatchObject({ status: "promoted", weight: 100 });
    const before = w.store.revisions({ limit: 1 })[0]!.revision;
    r = await w.engine.operate("r1", "abort", "a");
    expect(r).toMatchObject({ status: "aborted", weight: 0 });
    expect(w.store.revisions({ limit: 1 })[0]!.revision).toBe(before + 1); // one revision: one push
  });

  it("a restart mid-release resumes the same step with the same timers", async () => {
    const w = world();
    await w.engine.create({ name: "r1", group: "mock", lane: "canary", steps: [{ setWeight: 20 }, { pause: { duration: "60s" } }, { setWeight: 40 }, { analysis: {} }, { setWeight: 70 }], analysis }, "a");
    let r = await advance(w, 20_000);
    const until = r.pause!.until;
    let w2 = w.restart();
    r = w2.engine.get("r1")!;
    expect(r).toMatchObject({ status: "paused", currentStep: 1, weight: 20, pause: { reason: "duration", until } });
    r = await advance(w2, 39_000);
    expect(r.weight).toBe(20);
    r = await advance(w2, 1_000);
    expect(r).toMatchObject({ weight: 40, currentStep: 3, analysisRun: { step: 3 } });
    // restart inside the analysis: the interval's counts from before the restart are kept
    w2.traffic.add("canary", 15);
    w2 = w2.restart();
    r = await advance(w2, 10_000);
    expect(r.analysisRun!.intervals.at(-1)).toMatchObject({ verdict: "inconclusive", requests: 15 });
  });

  it("the confirm webhook gates a step until it answers 2xx; events are posted", async () => {
    let answer = 503;
    const seen: Array<{ type: string; step?: number }> = [];
    const server = await listen((body, res) => { seen.push(body); res.writeHead(body.type === "confirm" ? answer : 204).end(); });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const w = world();
    let r = await w.engine.create({ name: "r1", group: "mock", lane: "canary", steps: [{ setWeight: 10 }, { setWeight: 50 }],
      webhooks: { confirm: [{ url: `${url}/confirm`, beforeSteps: [1], retry: "2s" }], events: [`${url}/events`] } }, "a");
    expect(r).toMatchObject({ status: "paused", weight: 10, currentStep: 1, pause: { reason: "confirm" } });
    expect(r.message).toContain("answered 503");
    await expect(w.engine.operate("r1", "approve", "a")).rejects.toMatchObject({ status: 409 });
    r = await advance(w, 1_000);
    expect(r.weight).toBe(10);
    answer = 200;
    r = await advance(w, 1_000);
    expect(r).toMatchObject({ status: "promoted", weight: 100 });
    expect(seen.filter((s) => s.type === "confirm").map((s) => s.step)).toEqual([1, 1]);
    await until(() => seen.some((s) => s.type === "promoted"));
    expect(seen.map((s) => s.type)).toEqual(expect.arrayContaining(["created", "step", "confirm-waiting", "confirmed", "promoted"]));
  });

  it("a Prometheus query can judge an interval", async () => {
    let value = "0.2";
    const server = await listen((_b, res, url) => {
      expect(url.searchParams.get("query")).toBe('sum(rate(errors{lane="canary",group="mock"}[10s]))');
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ status: "success", data: { resultType: "vector", result: [{ metric: {}, value: [0, value] }] } }));
    });
    const address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const w = world();
    const metrics = [{ name: "prometheus", address, query: 'sum(rate(errors{lane="$lane",group="$group"}[$interval]))', max: 0.5 }];
    let r = await w.engine.create({ name: "r1", group: "mock", lane: "canary", steps: [{ setWeight: 10 }, { analysis: { count: 1, failureLimit: 0, minRequests: 1, metrics } }, { setWeight: 20 }, { analysis: { count: 1, failureLimit: 0, minRequests: 1, metrics } }], analysis }, "a");
    w.traffic.add("canary", 5);
    r = await advance(w, 10_000);
    expect(r).toMatchObject({ weight: 20, currentStep: 3 });
    value = "0.9";
    w.traffic.add("canary", 5);
    r = await advance(w, 10_000);
    expect(r).toMatchObject({ status: "failed", weight: 0 });
    expect(r.reason).toContain("0.9 > max 0.5");
  });
});

async function listen(handler: (body: any, res: import("node:http").ServerResponse, url: URL) => void): Promise<Server> {
  const server = createServer((req, res) => {
    let text = "";
    req.on("data", (d) => (text += d));
    req.on("end", () => handler(text ? JSON.parse(text) : {}, res, new URL(req.url ?? "/", "http://x")));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cleanups.push(() => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }));
  return server;
}

async function until(f: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}
