// `--store etcd://`: two (then three) control-plane replicas on one real etcd (Debian etcd-server,
// own data dir and ports) serve the same revisions, push the same rules (a write on one reaches a
// filter stream on the other), merge traffic counters, and share one release-engine leader that
// hands over when it stops.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { startControlPlane, type ControlPlane } from "../../control-plane/src/server/index.js";
import { DecisionSource, Direction, TrafficReportSchema } from "../../control-plane/src/generated/graylane/v1/traffic_pb.js";
import type { LeaderElection } from "../../control-plane/src/replicas/leader.js";
import { EtcdStore } from "../../control-plane/src/store/index.js";
import { GraylaneClient } from "../../control-plane/src/xds/index.js";
import { RealClock } from "../../control-plane/src/wasmhost/clock.js";
import { grpcBridge } from "../../control-plane/src/wasmhost/index.js";
import { newFilter, routeTo } from "../support/filter.js";
import { startEtcd, type RunningEtcd } from "../support/etcd.js";

const demoGroup = JSON.parse(readFileSync("demo/lanegroup.json", "utf8"));
let etcd: RunningEtcd;
interface Replica { server: ControlPlane; grpcPort: number; leader: LeaderElection; call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; etag: string | null }> }
const replicas: Replica[] = [];

async function replica(): Promise<Replica> {
  const server = await startControlPlane({ port: 0, grpcPort: 0, store: etcd.url, rollout: { tickMs: 20, reportSettleMs: 0 } });
  const r: Replica = {
    server, grpcPort: server.grpcPort, leader: server.leader!,
    call: async (method, path, body, headers = {}) => {
      const res = await fetch(server.url + path, { method, headers: { "content-type": "application/json", ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined, etag: res.headers.get("etag") };
    },
  };
  replicas.push(r);
  return r;
}

async function until<T>(f: () => Promise<T | undefined | false>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(async () => { etcd = await startEtcd(); }, 30_000);
afterAll(async () => {
  for (const r of replicas) await r.server.close().catch(() => undefined);
  await etcd?.stop();
});

describe("etcd store with replicas", () => {
  let a: Replica;
  let b: Replica;

  it("two replicas serve the same revisions; If-Match holds across them; concurrent writes serialize", async () => {
    a = await replica();
    b = await replica();
    const put = await a.call("PUT", "/v1/lanegroups/mock", demoGroup, { "x-graylane-actor": "alice" });
    expect(put.status).toBe(201);
    const seen = await until(async () => { const g = await b.call("GET", "/v1/lanegroups/mock"); return g.status === 200 && g; });
    expect(seen.etag).toBe(put.etag);
    expect(seen.body.lanegroup).toEqual(put.body.lanegroup);

    // B's stale ETag after A's change: 412, nothing written
    const rev = put.body.revision;
    expect((await a.call("PUT", "/v1/lanegroups/mock", { ...demoGroup, traceHeader: "x-request-id" }, { "if-match": `"${rev}"` })).status).toBe(200);
    await until(async () => (await b.call("GET", "/v1/lanegroups/mock")).body.revision === rev + 1);
    const stale = await b.call("PUT", "/v1/lanegroups/mock", demoGroup, { "if-match": `"${rev}"` });
    expect(stale.status).toBe(412);

    // 2 × 8 writes at once on both replicas: every one lands, each with its own revision
    const writes = await Promise.all(Array.from({ length: 16 }, (_, i) =>
      (i % 2 ? a : b).call("PUT", `/v1/lanegroups/g${i}`, { name: `g${i}`, services: [{ name: `svc${i}` }] })));
    expect(writes.map((w) => w.status)).toEqual(new Array(16).fill(201));
    expect(new Set(writes.map((w) => w.body.revision)).size).toBe(16);
    const logA = (await a.call("GET", "/v1/revisions?limit=1000")).body.revisions;
    const logB = await until(async () => { const l = (await b.call("GET", "/v1/revisions?limit=1000")).body.revisions; return l.length === logA.length && l; });
    expect(logB).toEqual(logA);
    expect(logA.map((r: { revision: number }) => r.revision)).toEqual(Array.from({ length: logA.length }, (_, i) => logA.length - i));
    // validation still sees every group: a host taken on A is refused on B
    const dup = await b.call("PUT", "/v1/lanegroups/dup", { name: "dup", services: [{ name: "svc3" }] });
    expect(dup.status).toBe(400);
    expect(dup.body.errors[0].message).toMatch(/svc3/);
  });

  it("a rollback on one replica is one new revision on both, restoring the target's content", async () => {
    const target = (await a.call("GET", "/v1/revisions?limit=1")).body.revisions[0].revision;
    const before = (await a.call("GET", "/v1/lanegroups/mock")).body.lanegroup;
    expect((await a.call("PUT", "/v1/lanegroups/mock", { ...before, traceHeader: "x-b3-traceid" })).status).toBe(200);
    await until(async () => (await b.call("GET", "/v1/lanegroups/mock")).body.lanegroup.traceHeader === "x-b3-traceid");

    const rb = await b.call("POST", "/v1/rollback", { revision: target }, { "x-graylane-actor": "bob" });
    expect(rb.status).toBe(200);
    expect(rb.body).toEqual({ revision: target + 2, target, groups: ["mock"] });
    for (const r of [a, b]) {
      const g = await until(async () => { const x = await r.call("GET", "/v1/lanegroups/mock"); return x.body.revision === target + 2 && x; });
      expect(g.body.lanegroup).toEqual(before);
      const rev = (await r.call("GET", `/v1/revisions/${target + 2}`)).body;
      expect(rev).toMatchObject({ revision: target + 2, op: "rollback", actor: "bob", target, groups: ["mock"] });
    }
    // Every other group is untouched, and a stale rollback target is refused (404) without a write.
    expect((await a.call("GET", "/v1/lanegroups/g3")).status).toBe(200);
    expect((await b.call("POST", "/v1/rollback", { revision: 10_000 })).status).toBe(404);
    expect((await a.call("GET", "/v1/revisions?limit=1")).body.revisions[0].revision).toBe(target + 2);
  });

  it("a write on one replica reaches a filter connected to the other", async () => {
    // The real filter.wasm (in the Node host), subscribed to replica B over gRPC.
    const bridge = grpcBridge({ cp: `127.0.0.1:${b.grpcPort}` });
    try {
      const f = await newFilter({ clock: new RealClock() as never, grpc: bridge, config: { cluster: "cp", node: { id: "mocka-base-0" } } });
      f.vm.tick();
      const served = async (r: Replica) => (await r.call("GET", "/v1/status")).body as { version: string; nodes: Array<{ nodeId: string; version: string }> };
      await until(async () => { const s = await served(b); return s.nodes.some((n) => n.nodeId === "mocka-base-0" && n.version === s.version); });
      expect(f.decide({ "x-user-id": "u1" }, routeTo("mocka")).route).toBe("base"); // weight 0
      const at = performance.now();
      expect((await a.call("PUT", "/v1/lanegroups/mock", { ...demoGroup, lanes: [{ ...demoGroup.lanes[0], weight: 100 }] })).status).toBe(200);
      const version = (await served(a)).version;
      await until(async () => (await served(b)).nodes.some((n) => n.nodeId === "mocka-base-0" && n.version === version));
      console.log(`etcd: PUT on replica A → ACK from a filter on replica B after ${(performance.now() - at).toFixed(1)} ms`);
      expect((await served(b)).version).toBe(version); // both replicas serve the same version
      expect(f.decide({ "x-user-id": "u1" }, routeTo("mocka")).route).toBe("canary"); // and the filter routes by it
    } finally {
      bridge.close();
    }
  });

  it("traffic reported to one replica shows the same on the other", async () => {
    const client = new GraylaneClient(`127.0.0.1:${a.grpcPort}`);
    const report = (seq: number, n: number) => create(TrafficReportSchema, {
      instanceId: "mocka-1", nodeId: "mocka-1", sequence: BigInt(seq), latencyBoundsMs: [1, 10, 100],
      counters: [{ group: "mock", lane: "canary", route: "canary", service: "mocka", direction: Direction.INBOUND, source: DecisionSource.WEIGHT,
        statusClass: 2, requests: BigInt(n), latencySumUs: BigInt(n * 1000), latencyBuckets: [0n, BigInt(n), 0n, 0n] }],
    });
    try {
      await client.report(report(1, 40));
      await client.report(report(2, 100));
      await client.report(report(2, 100)); // a repeat counts once
    } finally {
      client.close();
    }
    const canary = async (r: Replica) => ((await r.call("GET", "/v1/traffic?group=mock&window=1h")).body.services as Array<{ service: string; lane: string; requests: number }>)
      .find((x) => x.service === "mocka" && x.lane === "canary")?.requests;
    expect(await canary(a)).toBe(100);
    expect(await until(async () => (await canary(b)) === 100)).toBe(true);
  });

  it("one replica leads the release engine; the other forwards; the lead hands over when it stops", async () => {
    await until(async () => a.leader.isLeader !== b.leader.isLeader);
    const [lead, follower] = a.leader.isLeader ? [a, b] : [b, a];
    const created = await follower.call("POST", "/v1/releases", { name: "r1", group: "mock", lane: "canary", steps: [{ setWeight: 10 }, { pause: { duration: "1500ms" } }, { setWeight: 50 }, { pause: {} }] }, { "x-graylane-actor": "carol" });
    expect(created.status).toBe(201);
    expect(created.body.release).toMatchObject({ status: "paused", weight: 10, createdBy: "carol" });
    await until(async () => (await follower.call("GET", "/v1/releases/r1")).status === 200);
    // the leader stops in the middle of the timed pause; the other replica takes over and goes on
    await lead.server.close();
    replicas.splice(replicas.indexOf(lead), 1);
    await until(async () => follower.leader.isLeader);
    const r = await until(async () => { const x = (await follower.call("GET", "/v1/releases/r1")).body.release; return x.weight === 50 && x; });
    expect(r).toMatchObject({ status: "paused", currentStep: 3, pause: { reason: "approval" } });
    expect((await follower.call("GET", "/v1/lanegroups/mock")).body.lanegroup.lanes[0].weight).toBe(50);
    expect((await follower.call("POST", "/v1/releases/r1/abort")).body.release).toMatchObject({ status: "aborted", weight: 0 });

    // a replica started later serves the same revisions, follows, and forwards to the leader
    const c = await replica();
    const logC = (await c.call("GET", "/v1/revisions?limit=1000")).body.revisions;
    expect(logC).toEqual((await follower.call("GET", "/v1/revisions?limit=1000")).body.revisions);
    expect(c.leader.isLeader).toBe(false);
    expect((await c.call("GET", "/v1/releases/r1")).body.release.status).toBe("aborted");
    expect((await c.call("POST", "/v1/releases", { name: "r2", group: "mock", lane: "canary" })).status).toBe(201);
  }, 60_000);

  it("refuses what etcd cannot be: a bad address says so", async () => {
    await expect(EtcdStore.open("etcd://")).rejects.toThrow(/want etcd:\/\/HOST:PORT/);
  });
});
